"""Run folders: one training run on your data, ready to resume, sample, evaluate and export.

A run folder holds ``run.json`` (the model architecture, the data summary and how to undo the
data's preparation, the held-out split), ``checkpoint.safetensors`` + ``checkpoint.json`` (weights,
EMA, Adam, generator, loss history and :class:`~diffusion_lite.training.TrainConfig`, written by
:func:`training.save_checkpoint`) and, after ``evaluate``, ``evaluation.json``/``.md``. Everything
is JSON or safetensors: nothing is pickled.

The architecture is chosen from the data (step 2 of the workflow): an MLP for points
(:class:`models.MLP`), the U-Net for images (:class:`unet.UNet`, channels from the data).
Sampling (steps 4 and 5) runs a sampler of :mod:`samplers` on a Karras σ ladder and maps the
result back to the data's units: raw = μ + s·x for points, pixels p = 255·(clip(x, −1, 1) + 1)/2.

Notation (code → symbol): ``spec`` the architecture · ``normalisation`` (μ, s) or the pixel range
· ``D`` the denoiser D(x, σ) with EMA weights θ̄ · ``sigmas`` the σ ladder σ_0 > … > σ_N = 0 ·
``guidance`` w of classifier-free guidance · ``null_label`` K, the "no class" label.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile

import torch
from torch import nn

from . import checkpoints, samplers, schedules, training
from .datasets_io import DataError
from .denoisers import Denoiser, GuidedDenoiser
from .models import MLP
from .unet import UNet, UNetConfig

__all__ = ["RUN_FILE", "CHECKPOINT", "default_spec", "build_net", "check_writable", "write_json",
           "read_run", "checkpoint_path", "load_denoiser", "sample", "postprocess", "count_parameters"]

RUN_FILE = "run.json"
CHECKPOINT = "checkpoint"  # stem: checkpoint.safetensors + checkpoint.json
FORMAT = "diffusion-lite-run/1"


def default_spec(kind: str, shape: list[int], n_classes: int, **overrides) -> dict:
    """The architecture for data of ``kind`` and per-sample ``shape``; ``overrides`` win."""
    if kind == "points":
        spec = {"net": "mlp", "dim": int(shape[0]), "hidden": 128, "depth": 3, "emb_dim": 32}
    elif kind == "images":
        spec = {"net": "unet", "in_channels": int(shape[0]), "image_size": list(shape[1:]),
                "base_channels": 16, "channel_mults": [1, 2, 2], "emb_dim": 64, "attention": True}
    else:
        raise ValueError(f"unknown data kind {kind!r}; choose 'points' or 'images'")
    spec |= {k: v for k, v in overrides.items() if v is not None and k in spec}
    spec["n_classes"] = int(n_classes)
    return spec


def build_net(spec: dict, *, seed: int = 0) -> nn.Module:
    """The network ``net(x, c_noise, labels)`` a spec describes, initialised from ``seed``."""
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(seed)
        if spec["net"] == "mlp":
            return MLP(spec["dim"], spec["hidden"], spec["depth"], spec["emb_dim"],
                       n_classes=spec["n_classes"] or None,
                       generator=torch.Generator().manual_seed(seed))
        if spec["net"] == "unet":
            mults = tuple(spec["channel_mults"])
            h, w = spec["image_size"]
            if h % 2 ** (len(mults) - 1) or w % 2 ** (len(mults) - 1):
                raise DataError(f"images of {h}×{w} cannot be halved {len(mults) - 1} times by "
                                f"the U-Net; pass --image-size with a multiple of "
                                f"{2 ** (len(mults) - 1)} (e.g. 8, 16 or 32)")
            cfg = UNetConfig(in_channels=spec["in_channels"], base_channels=spec["base_channels"],
                             channel_mults=mults, emb_dim=spec["emb_dim"],
                             num_classes=spec["n_classes"], attention=spec["attention"])
            return UNet(cfg)
    raise ValueError(f"unknown network {spec.get('net')!r} in the run; choose 'mlp' or 'unet'")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_writable(folder: str | os.PathLike) -> pathlib.Path:
    """Create ``folder`` if needed and prove a file can be written there, before any work."""
    folder = pathlib.Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise DataError(f"cannot write to {folder} ({exc.strerror or exc}); choose an output "
                        "folder you can write to (e.g. --out ./runs/mine)") from exc
    return folder


def write_json(path: str | os.PathLike, obj: dict) -> None:
    """Write JSON atomically (temporary file, then rename): no half-written file is ever seen."""
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False))
    os.replace(tmp, path)


def read_run(folder: str | os.PathLike) -> dict:
    """The ``run.json`` of a run folder, with errors that say what the folder lacks."""
    folder = pathlib.Path(folder)
    if not (folder / RUN_FILE).is_file():
        raise DataError(f"{folder} is not a run folder (no {RUN_FILE}); give the --out folder of "
                        "`diffusion-lite train`")
    meta = json.loads((folder / RUN_FILE).read_text())
    if meta.get("format") != FORMAT:
        raise DataError(f"{folder / RUN_FILE} has format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def checkpoint_path(folder: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(folder) / CHECKPOINT


def load_denoiser(folder: str | os.PathLike, *, ema: bool = True,
                  device: torch.device | str = "cpu") -> tuple[Denoiser, dict]:
    """The trained denoiser D(x, σ) of a run (EMA weights θ̄ by default) and its ``run.json``."""
    meta = read_run(folder)
    ckpt = checkpoint_path(folder)
    saved = checkpoints.read_json(ckpt)
    config = training.TrainConfig(**saved["config"])
    net = build_net(meta["model"])
    tensors = checkpoints.read_tensors(ckpt, step=saved["step"])
    den = Denoiser(net, config.prediction, config.sigma_data)
    checkpoints.load_module(den, tensors, "ema." if ema else "model.", ckpt)
    meta["step"], meta["train"] = saved["step"], saved["config"]
    return den.to(device).eval(), meta


def _labels(meta: dict, n: int, class_name: str | None, device) -> torch.Tensor | None:
    classes = meta["data"]["classes"]
    if not classes:
        if class_name is not None:
            raise DataError("this model was trained without classes; drop --class")
        return None
    if class_name is None:  # an even spread over the classes
        return torch.arange(n, device=device) % len(classes)
    if class_name in classes:
        return torch.full((n,), classes.index(class_name), device=device)
    raise DataError(f"unknown class {class_name!r}; this model knows {classes}")


@torch.no_grad()
def sample(den: Denoiser, meta: dict, n: int, *, sampler: str = "heun", steps: int = 32,
           seed: int = 0, class_name: str | None = None, guidance: float = 1.0,
           sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """n samples x₀ ~ p_θ in the model's space: x_N = σ_0 ε, then ``sampler`` down the ladder.

    Conditional models get labels (``class_name`` or every class in turn) and classifier-free
    guidance D_w = D(x, σ, ∅) + w (D(x, σ, y) − D(x, σ, ∅)) {cite}`ho2022cfg`.
    """
    if n < 1:
        raise DataError(f"number of samples must be >= 1, got {n}")
    device = next(den.parameters()).device
    labels = _labels(meta, n, class_name, device)
    if labels is None and guidance != 1.0:
        raise DataError("guidance needs a conditional model (trained with classes); drop --guidance")
    if labels is None:
        model = den
    elif guidance == 1.0:  # plain conditional: one evaluation per step, not two
        model = lambda x, sigma: den(x, sigma, labels)  # noqa: E731
    else:
        model = GuidedDenoiser(den, labels, guidance, len(meta["data"]["classes"]))
    sigmas = schedules.karras_sigmas(steps, sigma_min, sigma_max, rho).to(device=device, dtype=torch.float32)
    g = torch.Generator(device=device).manual_seed(seed)
    shape = (n, *meta["data"]["shape"])
    x = torch.randn(shape, generator=g, device=device) * sigmas[0]  # x_N = σ_0 ε
    return samplers.sample(sampler, model, x, sigmas, generator=g)


def postprocess(x: torch.Tensor, normalisation: dict) -> torch.Tensor:
    """Map samples back to the data's units: raw = μ + s·x (points), pixels in [0, 255] (images)."""
    if normalisation["kind"] == "standardise":
        mean = torch.tensor(normalisation["mean"], dtype=x.dtype, device=x.device)
        scale = torch.tensor(normalisation["scale"], dtype=x.dtype, device=x.device)
        return mean + scale * x
    if normalisation["kind"] == "pixels":
        return ((x.clamp(-1, 1) + 1) * 127.5).round()  # the valid pixel range, as integers
    raise ValueError(f"unknown normalisation {normalisation['kind']!r}")
