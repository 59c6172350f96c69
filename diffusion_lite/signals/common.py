"""What the chapter's three cached models share: a seeded SignalNet denoiser and its training.

Notation (code → symbol): ``seed`` the run's seed (initialisation here; batches, σ and ε in
:func:`~diffusion_lite.training.train`) · ``final_loss`` the mean loss of the last 50 steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import training
from ..denoisers import Denoiser
from ..nets.signal_net import SignalNet, SignalNetConfig

__all__ = ["build_denoiser", "train_denoiser", "edm_recipe"]


def edm_recipe(**fields) -> training.TrainConfig:
    """The chapter's training recipe: EDM preconditioning, 50 warm-up steps, EMA β = 0.99, no
    progress bar; ``fields`` set the rest (steps, batch size, lr, σ_d, p_train)."""
    return training.TrainConfig(**{"lr_warmup": 50, "ema_decay": 0.99, "prediction": "edm",
                                   "progress": False, **fields})


def build_denoiser(net: SignalNetConfig, seed: int, prediction: str, sigma_data: float
                   ) -> Denoiser:
    """A SignalNet initialised from ``seed`` (global random state untouched), wrapped as D(x, σ)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = SignalNet(net)
    return Denoiser(module, prediction, sigma_data)


def train_denoiser(net: nn.Module, data: torch.Tensor | Callable, config: training.TrainConfig,
                   seed: int, **overrides) -> tuple[training.TrainResult, dict]:
    """:func:`training.train` with the config's seed (and any field) replaced; returns the run and
    ``{"final_loss": …}``."""
    tc = config.__class__(**{**config.to_dict(), "seed": seed, **overrides})
    state = training.train(net, data, tc)
    tail = state.history["loss"][-50:]
    return state, {"final_loss": sum(tail) / len(tail)}
