"""Deploying a run (step 7): weights, a model card, and a denoiser that runs without this package.

``export(run, out)`` writes three things into ``out``:

- ``model.safetensors`` — the EMA weights θ̄ of the network F (no pickle), and ``model.json`` —
  the **model card**: architecture, preconditioning (prediction, σ_d), training configuration,
  a data summary with its fingerprint, how to map samples back to data units, the evaluation
  report if the run has one, and how the exported denoiser was checked {cite}`mitchell2019`;
- ``denoiser.torchscript`` — D(x, σ) [, labels] traced to TorchScript, loadable from Python
  (``torch.jit.load``) or C++ without the course's code.

The TorchScript file is reloaded and compared with the original on fresh inputs at σ from 0.002
to 80 and a batch size other than the traced one; the export fails (and removes the file) if
they disagree by more than ``atol``. TorchScript is deprecated in favour of ``torch.export`` in
recent PyTorch releases; ``torch.export`` cannot yet trace the denoiser's input checks (data-dependent
branches), so TorchScript it is, with the deprecation warning silenced here. ONNX export needs the
``onnx`` package, which the course does not install.

Notation (code → symbol): ``den`` D(x, σ) with weights θ̄ · ``sigmas`` the σ values checked ·
``max_abs_diff`` max |D_exported − D| over the check batch.
"""

from __future__ import annotations

import json
import os
import pathlib
import warnings

import torch
from torch import nn

from . import checkpoints, runs

__all__ = ["export", "load_exported", "TORCHSCRIPT", "CHECK_SIGMAS"]

TORCHSCRIPT = "denoiser.torchscript"
CHECK_SIGMAS = (0.002, 0.05, 0.5, 5.0, 80.0)


class _Conditional(nn.Module):
    """D(x, σ, labels) with labels always given: TorchScript traces one fixed signature."""

    def __init__(self, den: nn.Module):
        super().__init__()
        self.den = den

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.den(x, sigma, labels)


def _inputs(meta: dict, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """A check batch: x = x₀-like noise at each σ of CHECK_SIGMAS in turn, (labels)."""
    g = torch.Generator().manual_seed(seed)
    sigma = torch.tensor(CHECK_SIGMAS).repeat((n + len(CHECK_SIGMAS) - 1) // len(CHECK_SIGMAS))[:n]
    x = torch.randn((n, *meta["data"]["shape"]), generator=g)
    x = x * (1 + sigma.reshape(-1, *[1] * (x.ndim - 1)) ** 2).sqrt()  # x₀ + σε has scale √(1 + σ²)
    k = len(meta["data"]["classes"])
    return (x, sigma) if k == 0 else (x, sigma, torch.randint(k + 1, (n,), generator=g))


def _quiet_jit(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return fn(*args)


def load_exported(folder: str | os.PathLike) -> torch.jit.ScriptModule:
    """The exported TorchScript denoiser of ``folder`` (``torch.jit.load``, CPU)."""
    path = pathlib.Path(folder) / TORCHSCRIPT
    if not path.is_file():
        raise ValueError(f"no {TORCHSCRIPT} in {folder}; run `diffusion-lite export RUN --out {folder}`")
    return _quiet_jit(torch.jit.load, str(path), "cpu")


@torch.no_grad()
def export(run: str | os.PathLike, out: str | os.PathLike, *, atol: float = 1e-5,
           seed: int = 0, evaluation: str | os.PathLike | None = None) -> dict:
    """Export ``run`` to ``out`` (weights, model card, checked TorchScript); return the card.

    ``evaluation``: the ``evaluation.json`` to put in the card (default: the run's own, if any).
    """
    den, meta = runs.load_denoiser(run, ema=True)
    card_eval = pathlib.Path(evaluation) if evaluation else pathlib.Path(run) / "evaluation.json"
    if evaluation and not card_eval.is_file():
        raise ValueError(f"no evaluation report {card_eval}; run `diffusion-lite evaluate` first")
    out = runs.check_writable(out)
    traced_mod = den if not meta["data"]["classes"] else _Conditional(den)
    example = _inputs(meta, 4, seed)
    traced = _quiet_jit(torch.jit.trace, traced_mod, example)
    ts_path = out / TORCHSCRIPT
    tmp = out / (TORCHSCRIPT + ".tmp")
    _quiet_jit(torch.jit.save, traced, str(tmp))
    reloaded = _quiet_jit(torch.jit.load, str(tmp), "cpu")
    check = _inputs(meta, 2 * len(CHECK_SIGMAS) + 1, seed + 1)  # another batch size than traced
    diff = float((reloaded(*check) - traced_mod(*check)).abs().max())
    if not diff <= atol:
        tmp.unlink()
        raise ValueError(f"the exported denoiser differs from the original by {diff:.3g} "
                           f"(> {atol}); nothing was exported. Please report this with the run folder.")
    os.replace(tmp, ts_path)
    card = {
        "format": "diffusion-lite-model-card/1",
        "step": meta["step"],  # the training step of these weights (every checkpoint names one)
        "model": meta["model"], "parameters": runs.count_parameters(den),
        "preconditioning": {"prediction": den.prediction, "sigma_data": den.sigma_data,
                            "contract": "D(x, sigma[, labels]) -> x0_hat, x = x0 + sigma*eps"},
        "training": {"step": meta["step"], "config": meta["train"], "split": meta["split"],
                     "init_from": meta.get("init_from")},
        "data": meta["data"], "normalisation": meta["normalisation"],
        "evaluation": (json.loads(card_eval.read_text()) if card_eval.is_file() else None),
        "torchscript": {"file": TORCHSCRIPT, "inputs": ["x", "sigma"] + (["labels"] if
                        meta["data"]["classes"] else []), "checked_sigmas": list(CHECK_SIGMAS),
                        "max_abs_diff": diff, "atol": atol},
        "intended_use": "a small course model trained on the data described here; not for "
                        "decisions about people, and not beyond the data's domain",
    }
    tensors = {k: v for k, v in den.net.state_dict().items()}
    checkpoints.write(out / "model", tensors, card)
    return card
