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
from dataclasses import dataclass, field, fields

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoints
from .denoisers import Denoiser
from .guidance import drop_labels
from .losses import _draw, denoising_loss, weighted_loss
from .models import MLP
from .train_config import TrainConfig, sigma_dist_from_config

__all__ = ["TrainConfig", "TrainResult", "TrainingDivergedError", "train", "sigma_dist_from_config",
           "save_checkpoint", "load_checkpoint", "default_2d"]


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
    else:
        out = data(n, generator=generator)
        x0, y = out if isinstance(out, tuple) else (out, None)
    return x0.to(device), None if y is None else y.to(device)


def _check_data(data, labels, config: TrainConfig, dtype: torch.dtype) -> None:
    """Validate what train() is given, once, with errors that name the fix."""
    if isinstance(data, torch.Tensor):
        if data.ndim < 2 or data.shape[0] == 0:
            raise ValueError(f"data must be a tensor of shape (N, ...) with N >= 1, got "
                             f"{tuple(data.shape)}")
        x0 = data
        if labels is not None:
            if not isinstance(labels, torch.Tensor) or labels.shape != (data.shape[0],):
                got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
                raise ValueError(f"labels must be a tensor of shape (N,) = ({data.shape[0]},), one "
                                 f"per row of data, got {got}")
    elif callable(data):
        if labels is not None:
            raise ValueError("labels go with a tensor dataset; a sampler returns its own labels "
                             "as data(n, generator=...) -> (x0, labels)")
        return  # a sampler's draws are checked at the first step (_check_batch)
    else:
        raise TypeError("data must be a tensor (N, ...) or a function sampler(n, generator=...)")
    _check_batch(x0, labels, config, dtype)


def _check_batch(x0, labels, config: TrainConfig, dtype: torch.dtype) -> None:
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"data(n, generator=...) must return a tensor or (x0, labels), got "
                        f"{type(x0).__name__}")
    if x0.dtype != dtype:
        raise TypeError(f"data is {x0.dtype} but the network's weights are {dtype}; convert one "
                        f"of them, e.g. data.to({dtype}) or net.to({x0.dtype})")
    # Labels are class indices when they are dropped for guidance; otherwise any per-sample
    # condition the network takes as its third argument (chapter 12's cascade passes an image).
    if (labels is not None and config.label_dropout > 0
            and labels.dtype not in (torch.int32, torch.int64)):
        raise TypeError(f"labels must be integer class indices to be dropped for guidance, got "
                        f"{labels.dtype}; use labels.long()")
    if labels is not None and labels.shape[:1] != x0.shape[:1]:
        raise ValueError(f"labels hold {labels.shape[0]} rows but the batch has {x0.shape[0]}; "
                         "return one label (or condition) per sample")
    if config.label_dropout > 0 and labels is None:
        raise ValueError("label_dropout > 0 but no labels were given; pass labels=... or set "
                         "label_dropout=0")


def _new_state(net: nn.Module, config: TrainConfig) -> TrainResult:
    denoiser = Denoiser(net, config.prediction, config.sigma_data)
    ema = copy.deepcopy(denoiser).requires_grad_(False)
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=config.lr)
    return TrainResult(denoiser, ema, optimizer, torch.Generator().manual_seed(config.seed), config)


def _interactive() -> bool:
    return sys.stderr.isatty() or "ipykernel" in sys.modules


@torch.enable_grad()  # trains even when called inside torch.no_grad() (e.g. a sampling cell)
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
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if checkpoint:
        checkpoints.check_writable(checkpoint)  # now, not after the work is done
    state = load_checkpoint(resume, net, config) if resume else _new_state(net, config)
    device = next(state.denoiser.parameters()).device
    x0_dtype = next(state.denoiser.parameters()).dtype
    _check_data(data, labels, config, x0_dtype)
    sigma_dist = sigma_dist or sigma_dist_from_config(config)
    weighting = config.weighting or config.prediction
    last = min(config.steps, until if until is not None else config.steps)
    show = config.progress if config.progress is not None else _interactive()
    bar = tqdm(range(state.step, last), initial=state.step, total=last, disable=not show,
               desc=f"training ({config.prediction})", mininterval=1.0)  # few redraws: cheap
    state.denoiser.train()
    model = state.denoiser if parallel is None else parallel.wrap(state.denoiser)
    first = state.step
    for step in bar:
        lr = _lr_at(step, config)
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        x0, y = _batch(data, labels, config.batch_size, state.generator, device)
        if step == first and not isinstance(data, torch.Tensor):
            _check_batch(x0, y, config, x0_dtype)  # a sampler's first draw, checked once
        if y is not None and config.label_dropout > 0:
            y = drop_labels(y, config.label_dropout, config.null_label, generator=state.generator)
        loss = (_shard_loss(model, x0, y, sigma_dist, weighting, config, state.generator, parallel)
                if parallel else denoising_loss(state.denoiser, x0, sigma_dist, weighting, labels=y,
                                                sigma_data=config.sigma_data, generator=state.generator))
        _check_loss(loss.item(), step, lr, state.history["loss"], checkpoint)
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


EXPLODE_FACTOR = 1e4  # a loss this many times the mean of the first 10 steps' stops training


def _check_loss(loss: float, step: int, lr: float, history: list[float], checkpoint) -> None:
    """Stop on a NaN/inf loss, and on a finite one that has exploded (divergence in progress)."""
    start = history[:10]
    exploded = len(start) == 10 and loss > EXPLODE_FACTOR * (sum(start) / 10)
    if math.isfinite(loss) and not exploded:
        return
    kept = f"the last good checkpoint is {checkpoint!r} (step {_saved_step(checkpoint)})" \
        if checkpoint else "no checkpoint was kept (pass checkpoint=... to keep one)"
    what = f"is {loss}" if not exploded else \
        f"exploded to {loss:.3g}, {EXPLODE_FACTOR:.0e} times its start ({sum(start) / 10:.3g})"
    raise TrainingDivergedError(
        f"loss {what} at step {step + 1}: training stopped; {kept}. Try a lower lr (now "
        f"{lr:.3g}), grad_clip, or check the data for NaN/inf values.")


def _saved_step(path: str) -> int | str:
    try:
        return checkpoints.read_json(path)["step"]
    except ValueError:
        return "none saved yet"


def save_checkpoint(path: str, state: TrainResult) -> None:
    """Write ``path.safetensors``: θ, θ̄, Adam moments, generator state and loss history, with the
    config, step and Adam hyper-parameters (and a checksum) in its header; one atomic write, so a
    kill at any instant keeps the previous checkpoint. ``path.json`` is a readable copy."""
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
    tensors, meta = checkpoints.read(path)
    saved, groups = meta.get("config"), meta.get("optimizer_param_groups")
    if not isinstance(saved, dict) or not isinstance(groups, list):
        raise ValueError(f"checkpoint {path!r} is not a training checkpoint: its metadata lacks "
                         "'config' or 'optimizer_param_groups' (was it written by "
                         "training.save_checkpoint?)")
    missing = [k for k in ("rng.state", "history.loss", "history.lr") if k not in tensors]
    if missing:
        raise ValueError(f"checkpoint {path!r} is not a training checkpoint: it lacks {missing}")
    if config is not None:
        diff = [f.name for f in fields(config) if f.name not in config.RESUMABLE
                and f.name in saved and saved[f.name] != getattr(config, f.name)]
        if diff:
            raise ValueError(f"cannot resume {path!r}: config differs in {diff}; resume with the "
                             "saved config (TrainConfig(**saved) from its .json) or start afresh")
    try:
        state = _new_state(net, config or TrainConfig(**saved))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint config in {path!r} is not a valid TrainConfig: {exc}") from exc
    checkpoints.load_module(state.denoiser, tensors, "model.", path)
    checkpoints.load_module(state.ema, tensors, "ema.", path)
    opt_state = {}
    for name, t in tensors.items():
        if name.startswith("optim."):
            _, i, k = name.split(".", 2)
            opt_state.setdefault(int(i), {})[k] = t
    try:
        state.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"checkpoint {path!r} has optimizer state that does not fit this "
                         f"network ({exc}); resume with the network it was saved with") from exc
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
