"""Training a flow-matching model: one config dataclass and one short training function.

Minimises E_{t, (x₀, ε)} ‖u_θ(x_t, t) − u_cond‖²/d with Adam and an EMA of the weights
{cite}`lipman2023` {cite}`liu2023`. The pairs (x₀, ε) come from a coupling: independent draws
(plain flow matching), minibatch optimal transport, or a fixed set of pairs (reflow). The
learning-rate schedule and the EMA are the ones of :mod:`training` (one copy of each idea).

Notation (code → symbol): ``t`` t ~ p_train(t) · ``x0`` x₀ · ``eps`` ε · ``u`` u_θ ·
``coupling`` the joint law of (x₀, ε) · ``ema_decay`` β of θ̄ ← β θ̄ + (1 − β) θ.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from .couplings import ot_pair
from .guidance import drop_labels
from .flow_matching import PATHS, VelocityDenoiser, flow_matching_loss
from .training import _interactive, _lr_at, _update_ema

__all__ = ["FlowMatchingConfig", "FlowMatchingResult", "COUPLINGS", "T_DISTS", "sample_t",
           "train_flow_matching"]

COUPLINGS = ("independent", "ot")
T_DISTS = ("uniform", "logit_normal")


@dataclass(frozen=True)
class FlowMatchingConfig:
    steps: int = 2000                 # optimiser steps
    batch_size: int = 512             # pairs (x₀, ε) per step
    lr: float = 3e-3                  # peak Adam learning rate η
    lr_warmup: int = 100              # steps of linear warm-up from 0 to η
    lr_decay: str = "cosine"          # "cosine" (to 0 at `steps`) or "constant"
    ema_decay: float = 0.995          # β of the weight average θ̄ ← β θ̄ + (1 − β) θ
    grad_clip: float | None = 1.0     # clip the gradient norm to this (None: no clipping)
    path: str = "rectified"           # interpolant: "rectified" (a = 1 − t, b = t) or "cosine"
    t_dist: str = "uniform"           # p_train(t): "uniform" on (0, 1) or "logit_normal"
    t_mean: float = 0.0               # mean of logit t for "logit_normal"
    t_std: float = 1.0                # std of logit t for "logit_normal"
    coupling: str = "independent"     # "independent" or "ot" (minibatch OT; ignored for pairs)
    label_dropout: float = 0.0        # probability a label becomes `null_label` (for guidance)
    null_label: int | None = None     # the "no class" label; required when label_dropout > 0
    seed: int = 0                     # seeds the one generator behind batches, t and ε
    progress: bool | None = None      # progress bar: None shows it only when interactive

    def __post_init__(self) -> None:
        if not (isinstance(self.steps, int) and self.steps >= 0):
            raise ValueError(f"steps must be an integer >= 0, got {self.steps!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 2):
            raise ValueError(f"batch_size must be an integer >= 2, got {self.batch_size!r}")
        if not self.lr > 0 or self.lr_warmup < 0:
            raise ValueError(f"lr must be > 0 and lr_warmup >= 0, got {self.lr}, {self.lr_warmup}")
        if self.lr_decay not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_decay {self.lr_decay!r}; choose 'cosine' or 'constant'")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        for value, options, name in ((self.path, PATHS, "path"), (self.t_dist, T_DISTS, "t_dist"),
                                     (self.coupling, COUPLINGS, "coupling")):
            if value not in options:
                raise ValueError(f"unknown {name} {value!r}; choose one of {options}")
        if not 0 <= self.label_dropout <= 1:
            raise ValueError(f"label_dropout must lie in [0, 1], got {self.label_dropout}")
        if self.label_dropout > 0 and self.null_label is None:
            raise ValueError("label_dropout > 0 needs null_label (the class index meaning 'none')")
        if not self.t_std > 0:
            raise ValueError(f"t_std must be > 0, got {self.t_std}")


@dataclass
class FlowMatchingResult:
    model: VelocityDenoiser           # the trained weights θ (a denoiser and a velocity field)
    ema: VelocityDenoiser             # the averaged weights θ̄ (usually the better model)
    config: FlowMatchingConfig
    history: dict = field(default_factory=lambda: {"loss": [], "lr": []})  # one entry per step


def sample_t(n: int, config: FlowMatchingConfig, generator: torch.Generator | None = None,
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """t ~ p_train(t), shape (n,): uniform on (0, 1), or logit t ~ N(t_mean, t_std²) {cite}`esser2024`."""
    if config.t_dist == "uniform":
        return torch.rand(n, generator=generator, dtype=dtype).clamp(1e-5, 1 - 1e-5)
    z = config.t_mean + config.t_std * torch.randn(n, generator=generator, dtype=dtype)
    return torch.sigmoid(z)


def _pairs(data, labels, n: int, generator: torch.Generator, config: FlowMatchingConfig):
    """One batch (x₀, ε, labels) from a tensor, a sampler, or fixed reflow pairs (x₀, ε)."""
    y = None
    if isinstance(data, tuple):  # reflow: rows of fixed pairs
        idx = torch.randint(data[0].shape[0], (n,), generator=generator)
        return data[0][idx], data[1][idx], None if labels is None else labels[idx]
    if isinstance(data, torch.Tensor):
        idx = torch.randint(data.shape[0], (n,), generator=generator)
        x0, y = data[idx], None if labels is None else labels[idx]
    else:
        x0 = data(n, generator=generator)
    if y is not None and config.label_dropout > 0:
        y = drop_labels(y, config.label_dropout, config.null_label, generator=generator)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    if config.coupling == "ot":
        eps = ot_pair(x0, eps)
    return x0, eps, y


def train_flow_matching(net: nn.Module, data, config: FlowMatchingConfig, *,
                        labels: torch.Tensor | None = None) -> FlowMatchingResult:
    """Train ``net(x_t, c_noise, labels)`` as a velocity field; returns raw and EMA models.

    ``data``: a tensor ``(N, ...)`` (with optional ``labels``), a sampler ``data(n, generator=...)``,
    or a tuple ``(x0, eps)`` of fixed pairs (reflow). ``net`` is trained in place, so a copy of a
    trained model's net starts 2-rectified flow from 1-rectified flow, as Liu et al. do
    {cite}`liu2023`. Everything random comes from one generator seeded with ``config.seed``.
    """
    if isinstance(data, tuple) and (len(data) != 2 or data[0].shape != data[1].shape):
        raise ValueError("reflow data must be a pair (x0, eps) of tensors with equal shapes")
    if not (isinstance(data, (tuple, torch.Tensor)) or callable(data)):
        raise TypeError("data must be a tensor (N, ...), a sampler data(n, generator=...) or a "
                        "tuple (x0, eps) of reflow pairs")
    model = VelocityDenoiser(net, config.path)
    ema = copy.deepcopy(model).requires_grad_(False)
    result = FlowMatchingResult(model, ema, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    device = next(model.parameters()).device
    show = config.progress if config.progress is not None else _interactive()
    model.train()
    with torch.enable_grad():  # also when called under torch.no_grad() (e.g. a cold cache)
        for step in tqdm(range(config.steps), disable=not show, desc="flow matching",
                         mininterval=1.0):
            _step(model, ema, optimizer, data, labels, config, gen, device, step, result.history)
    model.eval()
    return result


def _step(model, ema, optimizer, data, labels, config, gen, device, step, history) -> None:
    """One Adam step on a fresh batch of pairs, then the EMA update."""
    lr = _lr_at(step, config)
    for group in optimizer.param_groups:
        group["lr"] = lr
    x0, eps, y = _pairs(data, labels, config.batch_size, gen, config)
    t = sample_t(config.batch_size, config, gen, x0.dtype)
    loss = flow_matching_loss(model, x0.to(device), eps.to(device), t.to(device),
                              None if y is None else y.to(device)).mean()
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at step {step + 1}; lower lr "
                                 f"(now {lr:.3g}) or check the data for NaN/inf values")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    _update_ema(ema, model, step, config.ema_decay)
    history["loss"].append(loss.item())
    history["lr"].append(lr)
