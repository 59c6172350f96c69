"""Training a denoiser: one config dataclass, one ``train`` function, EMA, safetensors checkpoints.

``train(net, data, config)`` wraps the network into a :class:`~diffusion_lite.denoisers.Denoiser`
with ``config.prediction`` and minimises the denoising objective of :mod:`losses` with Adam,
keeping a Polyak (exponential moving) average of the weights {cite}`polyak1992`. One
``torch.Generator`` seeded with ``config.seed`` draws every batch, σ, ε and label drop, so a run
is reproducible; a checkpoint holds weights, EMA, Adam state, the generator state and the loss
history (safetensors) plus the config (JSON), so a resumed run is *bitwise* the uninterrupted one.

Notation (code → symbol): ``theta`` θ the weights · ``ema`` θ̄ ← β θ̄ + (1 − β) θ ·
``ema_decay`` β · ``lr`` the learning rate η · ``sigma_dist`` p_train(σ) · ``weighting`` λ(σ).
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoints
from .denoisers import Denoiser
from .models import MLP
from .losses import LogNormalSigma, LogUniformSigma, _draw, denoising_loss, weighted_loss

__all__ = ["TrainConfig", "TrainResult", "TrainingDivergedError", "train", "sigma_dist_from_config",
           "save_checkpoint", "load_checkpoint", "default_2d"]


@dataclass
class TrainConfig:
    steps: int = 2000                 # optimiser steps of the whole run (a resume continues to here)
    batch_size: int = 512             # samples per step, drawn with replacement
    lr: float = 3e-3                  # peak Adam learning rate η
    lr_warmup: int = 100              # steps of linear warm-up from 0 to η
    lr_decay: str = "cosine"          # "cosine" (to 0 at `steps`) or "constant"
    ema_decay: float = 0.995          # β of the EMA θ̄ ← β θ̄ + (1−β) θ (warmed up: min(β, (1+t)/(10+t)))
    grad_clip: float | None = 1.0     # clip the gradient norm to this (None: no clipping)
    prediction: str = "edm"           # what the network predicts: "x0", "eps", "v" or "edm"
    weighting: str | None = None      # λ(σ) on ‖D − x₀‖²; None: the prediction's own, 1/c_out²
    sigma_data: float = 0.5           # σ_d, the data's standard deviation (preconditioning)
    sigma_dist: str = "lognormal"     # p_train(σ): "lognormal" (p_mean, p_std) or "loguniform"
    p_mean: float = -1.2              # mean of ln σ for "lognormal"
    p_std: float = 1.2                # std of ln σ for "lognormal"
    sigma_min: float = 0.002          # lower end for "loguniform"
    sigma_max: float = 80.0           # upper end for "loguniform"
    label_dropout: float = 0.0        # probability a label is replaced by `null_label` (guidance)
    null_label: int | None = None     # the "no class" label; required when label_dropout > 0
    seed: int = 0                     # seeds the one generator behind batches, σ, ε and drops
    checkpoint_every: int = 0         # save every this many steps (0: only at the end)
    progress: bool | None = None      # progress bar: None shows it only when interactive
    # Fields a resumed run may change without changing what was computed so far.
    RESUMABLE: ClassVar[tuple] = ("steps", "checkpoint_every", "progress")

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size <= 0 or self.lr <= 0:
            raise ValueError("steps must be >= 0, batch_size and lr > 0")
        if self.lr_decay not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_decay {self.lr_decay!r}; choose 'cosine' or 'constant'")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.label_dropout > 0 and self.null_label is None:
            raise ValueError("label_dropout > 0 needs null_label (the class index meaning 'none')")
        sigma_dist_from_config(self)  # fail now, not at step 1

    def to_dict(self) -> dict:
        return asdict(self)


def sigma_dist_from_config(config: TrainConfig):
    """The noise-level distribution p_train(σ) a config names."""
    if config.sigma_dist == "lognormal":
        return LogNormalSigma(config.p_mean, config.p_std)
    if config.sigma_dist == "loguniform":
        return LogUniformSigma(config.sigma_min, config.sigma_max)
    raise ValueError(f"unknown sigma_dist {config.sigma_dist!r}; choose 'lognormal' or "
                     "'loguniform' (or pass sigma_dist=... to train)")


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and what to try."""


@dataclass
class TrainResult:
    denoiser: Denoiser                # the trained weights θ
    ema: Denoiser                     # the averaged weights θ̄ (usually the better denoiser)
    optimizer: torch.optim.Optimizer  # Adam, with its moment estimates (needed to resume)
    generator: torch.Generator        # the run's generator, in its current state
    config: TrainConfig
    step: int = 0                     # optimiser steps taken so far
    history: dict = field(default_factory=lambda: {"loss": [], "lr": []})  # one entry per step


def _lr_at(step: int, config: TrainConfig) -> float:
    """η_t: linear warm-up, then constant or cosine decay to 0 at config.steps."""
    warm = min(1.0, (step + 1) / config.lr_warmup) if config.lr_warmup > 0 else 1.0
    if config.lr_decay == "constant":
        return config.lr * warm
    return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step / max(config.steps, 1), 1)))


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, step: int, decay: float) -> None:
    beta = min(decay, (1 + step) / (10 + step))
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1 - beta)  # θ̄ ← β θ̄ + (1 − β) θ


def _batch(data, labels, n, generator, device):
    """x₀ (and labels) for one step: rows of a tensor dataset, or a sampler's fresh draw."""
    if isinstance(data, torch.Tensor):
        idx = torch.randint(data.shape[0], (n,), generator=generator)  # (n,)
        x0, y = data[idx], None if labels is None else labels[idx]
    elif callable(data):
        out = data(n, generator=generator)
        x0, y = out if isinstance(out, tuple) else (out, None)
    else:
        raise TypeError("data must be a tensor (N, ...) or a function sampler(n, generator=...)")
    return x0.to(device), None if y is None else y.to(device)


def _new_state(net: nn.Module, config: TrainConfig) -> TrainResult:
    denoiser = Denoiser(net, config.prediction, config.sigma_data)
    ema = copy.deepcopy(denoiser).requires_grad_(False)
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=config.lr)
    return TrainResult(denoiser, ema, optimizer, torch.Generator().manual_seed(config.seed), config)


def _interactive() -> bool:
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def train(net: nn.Module, data: torch.Tensor | Callable, config: TrainConfig, *,
          labels: torch.Tensor | None = None, sigma_dist=None, checkpoint: str | None = None,
          resume: str | None = None, until: int | None = None, parallel=None) -> TrainResult:
    """Minimise E_σ E_{x₀,ε} λ(σ)‖D(x₀ + σε, σ) − x₀‖²/d over θ with Adam and an EMA of θ.

    ``data``: a tensor dataset ``(N, ...)`` (with ``labels`` ``(N,)``) or a sampler
    ``data(n, generator=...) -> x0`` or ``(x0, labels)``. ``sigma_dist`` overrides the config's
    p_train(σ). ``checkpoint``: a path (``.safetensors`` and ``.json`` are written next to it)
    saved every ``config.checkpoint_every`` steps and at the end. ``resume``: a checkpoint to
    continue from. ``until``: stop after this many steps in total (an interruption; the learning
    rate schedule still aims at ``config.steps``) {cite}`karras2022`. ``parallel``: a
    :class:`~diffusion_lite.distributed.Parallel` for data-parallel training (each process draws
    the same global batch and trains on its shard; see :mod:`diffusion_lite.distributed`).
    """
    state = load_checkpoint(resume, net, config) if resume else _new_state(net, config)
    sigma_dist = sigma_dist or sigma_dist_from_config(config)
    weighting = config.weighting or config.prediction
    device = next(state.denoiser.parameters()).device
    last = min(config.steps, until if until is not None else config.steps)
    show = config.progress if config.progress is not None else _interactive()
    bar = tqdm(range(state.step, last), initial=state.step, total=last, disable=not show,
               desc=f"training ({config.prediction})", mininterval=1.0)  # few redraws: cheap
    state.denoiser.train()
    model = state.denoiser if parallel is None else parallel.wrap(state.denoiser)
    for step in bar:
        lr = _lr_at(step, config)
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        x0, y = _batch(data, labels, config.batch_size, state.generator, device)
        if y is not None and config.label_dropout > 0:
            drop = torch.rand(y.shape, generator=state.generator).to(device) < config.label_dropout
            y = torch.where(drop, torch.full_like(y, config.null_label), y)
        loss = (_shard_loss(model, x0, y, sigma_dist, weighting, config, state.generator, parallel)
                if parallel else denoising_loss(state.denoiser, x0, sigma_dist, weighting, labels=y,
                                                sigma_data=config.sigma_data, generator=state.generator))
        if not torch.isfinite(loss):
            kept = f"the last good checkpoint is {checkpoint!r} (step {_saved_step(checkpoint)})" \
                if checkpoint else "no checkpoint was kept (pass checkpoint=... to keep one)"
            raise TrainingDivergedError(
                f"loss is {loss.item()} at step {step + 1}: training stopped; {kept}. Try a lower "
                f"lr (now {lr:.3g}), grad_clip, or check the data for NaN/inf values.")
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(state.denoiser.parameters(), config.grad_clip)
        state.optimizer.step()
        _update_ema(state.ema, state.denoiser, step, config.ema_decay)
        state.step = step + 1
        state.history["loss"].append(loss.item())
        state.history["lr"].append(lr)
        if step % 200 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if checkpoint and config.checkpoint_every and state.step % config.checkpoint_every == 0:
            save_checkpoint(checkpoint, state)
    bar.close()
    state.denoiser.eval()
    if checkpoint:
        save_checkpoint(checkpoint, state)
    return state


def _shard_loss(model, x0, y, sigma_dist, weighting, config, generator, parallel):
    """This process's share of the loss under data parallelism. σ and ε are drawn for the whole
    global batch (the same draws as one process), only the rows ``parallel.shard`` picks are
    evaluated; the value returned is the global batch's mean loss, the gradient this shard's."""
    sigma, eps = _draw(sigma_dist, x0, generator)  # (B,), (B, ...)
    part = parallel.shard(x0.shape[0])
    local = weighted_loss(model, x0[part], sigma[part], eps[part], weighting, config.sigma_data,
                          None if y is None else y[part]).mean()
    return local + (parallel.mean(local) - local).detach()


def _saved_step(path: str) -> int | str:
    try:
        return checkpoints.read_json(path)["step"]
    except (ValueError, KeyError):
        return "none saved yet"


def save_checkpoint(path: str, state: TrainResult) -> None:
    """Write ``path.safetensors`` (θ, θ̄, Adam moments, generator state, loss history) and
    ``path.json`` (config, step, Adam hyper-parameters); atomic, so a crash keeps the old files."""
    tensors = {f"model.{k}": v for k, v in state.denoiser.state_dict().items()}
    tensors |= {f"ema.{k}": v for k, v in state.ema.state_dict().items()}
    opt = state.optimizer.state_dict()
    for i, s in opt["state"].items():
        tensors |= {f"optim.{i}.{k}": torch.as_tensor(v) for k, v in s.items()}
    tensors["rng.state"] = state.generator.get_state()
    tensors["history.loss"] = torch.tensor(state.history["loss"], dtype=torch.float64)
    tensors["history.lr"] = torch.tensor(state.history["lr"], dtype=torch.float64)
    meta = {"step": state.step, "config": state.config.to_dict(),
            "optimizer_param_groups": opt["param_groups"]}
    checkpoints.write(path, tensors, meta)


def load_checkpoint(path: str, net: nn.Module, config: TrainConfig | None = None) -> TrainResult:
    """Rebuild a run from ``save_checkpoint``'s files around ``net`` (same architecture).

    Refuses pickle files, names mismatched parameters, and (given ``config``) refuses a config
    that differs from the saved one in anything but ``steps``, ``checkpoint_every``, ``progress``.
    """
    meta = checkpoints.read_json(path)
    tensors = checkpoints.read_tensors(path, step=meta["step"])
    saved = meta["config"]
    if config is not None:
        diff = [f.name for f in fields(config) if f.name not in config.RESUMABLE
                and f.name in saved and saved[f.name] != getattr(config, f.name)]
        if diff:
            raise ValueError(f"cannot resume {path!r}: config differs in {diff}; resume with the "
                             "saved config (TrainConfig(**saved) from its .json) or start afresh")
    try:
        state = _new_state(net, config or TrainConfig(**saved))
    except TypeError as exc:
        raise ValueError(f"checkpoint config in {path!r} is not a TrainConfig: {exc}") from exc
    checkpoints.load_module(state.denoiser, tensors, "model.", path)
    checkpoints.load_module(state.ema, tensors, "ema.", path)
    opt_state = {}
    for name, t in tensors.items():
        if name.startswith("optim."):
            _, i, k = name.split(".", 2)
            opt_state.setdefault(int(i), {})[k] = t
    state.optimizer.load_state_dict({"state": opt_state, "param_groups": meta["optimizer_param_groups"]})
    state.generator.set_state(tensors["rng.state"])
    state.step = meta["step"]
    state.history = {"loss": tensors["history.loss"].tolist(), "lr": tensors["history.lr"].tolist()}
    state.denoiser.eval()
    return state


def default_2d(data_std: float, *, prediction: str = "edm", seed: int = 0,
               **overrides) -> tuple[MLP, TrainConfig]:
    """The course's default 2D run: a 64-wide, 3-block MLP and a config scaled to the data.

    ``data_std`` is σ_d, the per-coordinate standard deviation of x₀ (for a mixture
    ``(m.total_variance / m.dim) ** 0.5``). 2000 steps of batch 512 with a cosine learning rate;
    ln σ ~ N(−0.5, 1.5²) covers σ from about 0.03 to 12 (±2 standard deviations).
    Chapters 5 and 6 and benchmark 1 train this; ``overrides`` change any config field.
    """
    net = MLP(dim=2, hidden=64, depth=3, generator=torch.Generator().manual_seed(seed))
    config = TrainConfig(**{"steps": 2000, "batch_size": 512, "lr": 3e-3, "p_mean": -0.5,
                            "p_std": 1.5, "sigma_data": float(data_std), "prediction": prediction,
                            "seed": seed} | overrides)
    return net, config
