"""Training the chapter-15 models: one config, one short function per objective.

``train_masked`` minimises the masked-diffusion bound (:func:`masked.diffusion_loss`);
``train_autoregressive`` the next-token cross-entropy (:func:`autoregressive.loss`). Both use
AdamW with linear warm-up then cosine decay, draw every batch and mask from one
``torch.Generator`` seeded with ``config.seed``, and report the loss in bits per token.

Notation (code → symbol): ``lr`` η · ``steps`` optimiser steps · loss per token = L(x) / (L ln 2).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from . import autoregressive, masked

__all__ = ["TextTrainConfig", "train_masked", "train_autoregressive"]


@dataclass(frozen=True)
class TextTrainConfig:
    steps: int = 1500              # optimiser steps
    batch_size: int = 128          # sequences per step, drawn with replacement from the corpus
    lr: float = 6e-3               # peak AdamW learning rate η
    warmup: int = 75               # steps of linear warm-up to η, then cosine decay to 0
    weight_decay: float = 0.0      # AdamW decoupled weight decay
    grad_clip: float = 1.0         # clip the gradient norm to this
    estimator: str = "count"       # masked model only: "count" (k ~ U{1..L}) or "time" (t ~ U(0,1))
    schedule: str = "linear"       # masked model only, with estimator="time": α_t
    seed: int = 0                  # seeds the initialisation and the one generator behind batches and masks
    progress: bool | None = None   # progress bar: None shows it only when interactive

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not self.lr > 0 or self.grad_clip <= 0 or self.weight_decay < 0:
            raise ValueError("lr and grad_clip must be > 0 and weight_decay >= 0")
        if not 0 <= self.warmup < self.steps:
            raise ValueError(f"warmup must be in [0, steps={self.steps}), got {self.warmup}")
        if self.estimator not in masked.ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; choose one of {masked.ESTIMATORS}")
        if self.schedule not in masked.SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {masked.SCHEDULES}")


def _lr(step: int, c: TextTrainConfig) -> float:
    if step < c.warmup:
        return c.lr * (step + 1) / c.warmup
    return c.lr * 0.5 * (1 + math.cos(math.pi * (step - c.warmup) / (c.steps - c.warmup)))


def _fit(net: nn.Module, data: torch.Tensor, config: TextTrainConfig, desc: str,
         loss_fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> list[float]:
    """The shared loop: batch, per-sequence loss (nats) → mean, AdamW step; returns bits/token."""
    if data.ndim != 2 or data.dtype != torch.long:
        raise ValueError(f"data must be (N, L) int64 token ids, got {tuple(data.shape)} {data.dtype}")
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    show = config.progress if config.progress is not None else (
        sys.stderr.isatty() or "ipykernel" in sys.modules)
    history, scale = [], 1 / (data.shape[1] * math.log(2))  # nats per sequence → bits per token
    net.train()
    for step in tqdm(range(config.steps), desc=desc, disable=not show, mininterval=1.0):
        for group in opt.param_groups:
            group["lr"] = _lr(step, config)
        x = data[torch.randint(len(data), (config.batch_size,), generator=g)]  # (B, L)
        loss = loss_fn(x, g).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step + 1}; lower lr "
                                     f"(now {config.lr}) or check the data")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        opt.step()
        history.append(loss.item() * scale)
    return history


def train_masked(net: nn.Module, data: torch.Tensor, config: TextTrainConfig) -> list[float]:
    """Minimise the masked-diffusion bound E_x L(x) on ``data`` (N, L); [M] = net's extra id.

    Returns the loss history in bits per token {cite}`sahoo2024,shi2024`.
    """
    mask_id = net.config.vocab_size
    if net.config.causal:
        raise ValueError("the masked model needs a bidirectional net: TokenTransformerConfig(causal=False)")
    return _fit(net, data, config, "masked diffusion", lambda x, g: masked.diffusion_loss(
        net, x, mask_id, estimator=config.estimator, schedule=config.schedule, generator=g))


def train_autoregressive(net: nn.Module, data: torch.Tensor, config: TextTrainConfig) -> list[float]:
    """Minimise −log p_θ(x) = Σ_l −log p_θ(x_l | x_<l) on ``data`` (N, L); BOS = net's extra id."""
    if not net.config.causal:
        raise ValueError("the AR model needs a causal net: TokenTransformerConfig(causal=True)")
    bos_id = net.config.vocab_size
    return _fit(net, data, config, "autoregressive",
                lambda x, g: autoregressive.loss(net, x, bos_id))
