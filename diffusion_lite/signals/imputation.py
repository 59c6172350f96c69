"""A CSDI-style conditional diffusion model for imputing and forecasting seasonal series.

The network (:class:`~diffusion_lite.nets.signal_net.SignalNet`, dilated convolutions) receives the
condition c = (x ⊙ m, m) as two extra channels {cite}`tashiro2021`. Training is the ordinary
denoising regression (:func:`~diffusion_lite.training.train`) on a sampler that draws fresh series
and a fresh mask per example: half scattered gaps (a missing rate uniform in [0.1, 0.6]), half a
missing tail of ``horizon`` points. Sampling runs the unchanged samplers on the contract
D(x, σ) = D_θ(x, σ | c) and puts the observed values back at the end.

Notation (code → symbol): ``mask`` m · ``cond`` c = (x ⊙ m, m) · ``n_samples`` S draws per series.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import pretrained, samplers, training
from ..denoisers import Denoiser
from ..nets.signal_net import SignalNetConfig
from ..schedules import karras_sigmas
from ..utils import check_generator, check_int
from .common import build_denoiser, edm_recipe, train_denoiser
from .series import condition, forecast_mask, seasonal_series

__all__ = ["ImputerConfig", "build", "train_imputer", "training_batch", "impute", "COURSE_MODELS",
           "imputer_configs"]


def _net() -> SignalNetConfig:
    return SignalNetConfig(channels=32, blocks=5, dilation_cycle=5, cond_channels=2)


def _train() -> training.TrainConfig:
    return edm_recipe(steps=600, batch_size=64, lr=2e-3, sigma_data=1.0, p_mean=-1.0, p_std=1.4)


@dataclass(frozen=True)
class ImputerConfig:
    seed: int = 0  # initialisation, series, masks, σ and ε
    length: int = 48  # points per series (four seasons)
    period: int = 12  # P
    horizon: int = 12  # forecast tail masked in half of the training examples
    net: SignalNetConfig = field(default_factory=_net)
    train: training.TrainConfig = field(default_factory=_train)

    def __post_init__(self) -> None:
        check_int(self.length, "length", minimum=4)
        if self.net.cond_channels != 2 or self.net.mixer != "conv":
            raise ValueError("the imputer needs SignalNetConfig(mixer='conv', cond_channels=2)")
        if not 0 < self.horizon < self.length:
            raise ValueError(f"horizon must lie in (0, length), got {self.horizon}")


def training_batch(cfg: ImputerConfig, n: int, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(x₀, c): n fresh series and conditions, half scattered gaps and half a missing tail."""
    x0 = seasonal_series(n, cfg.length, period=cfg.period, generator=generator)  # (n, 1, T)
    rate = 0.1 + 0.5 * torch.rand(n, 1, 1, generator=generator)  # missing rate per series
    scattered = (torch.rand(n, 1, cfg.length, generator=generator) >= rate).float()
    tail = forecast_mask(n, cfg.length, cfg.horizon)
    pick = torch.rand(n, 1, 1, generator=generator) < 0.5
    return x0, condition(x0, torch.where(pick, tail, scattered))


def build(cfg: ImputerConfig) -> Denoiser:
    return build_denoiser(cfg.net, cfg.seed, cfg.train.prediction, cfg.train.sigma_data)


def train_imputer(cfg: ImputerConfig) -> tuple[nn.Module, dict]:
    """Train with :func:`training.train` on :func:`training_batch` draws (labels = c)."""
    state, info = train_denoiser(build(cfg).net, lambda n, generator: training_batch(cfg, n, generator),
                                 cfg.train, cfg.seed)
    return state.ema, info


@torch.no_grad()
def impute(denoiser: Denoiser, x: torch.Tensor, mask: torch.Tensor, n_samples: int, *,
           steps: int = 16, sigma_max: float = 20.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """S draws of the series given its observed points: (S, B, T), observed values exact.

    ``x`` (B, 1, T) may hold anything where ``mask`` is 0: those values are never read.
    """
    check_int(n_samples, "n_samples", minimum=1)
    check_generator(generator)
    B, _, T = x.shape
    cond = condition(x, mask).repeat(n_samples, 1, 1)  # (S·B, 2, T)
    sigmas = karras_sigmas(steps, 0.002, sigma_max).to(x.dtype)
    z = sigmas[0] * torch.randn(n_samples * B, 1, T, generator=generator, dtype=x.dtype)

    def den(xt, sigma):
        return denoiser(xt, sigma, labels=cond)

    den.accepts_float_sigma = True
    out = samplers.sample("dpmpp_2m", den, z, sigmas, generator=generator)  # (S·B, 1, T)
    m = mask.repeat(n_samples, 1, 1)
    out = m * x.repeat(n_samples, 1, 1) + (1 - m) * out
    return out.reshape(n_samples, B, T)


def imputer_configs(seeds=(0, 1, 2)) -> list[ImputerConfig]:
    return [ImputerConfig(seed=s) for s in seeds]


def _fingerprint() -> str:
    return hashlib.sha256(b"seasonal_series draws; no stored data").hexdigest()


pretrained.register("series_imputer", pretrained.Entry(ImputerConfig(), build, train_imputer,
                                                       _fingerprint))
COURSE_MODELS = [("series_imputer", cfg) for cfg in imputer_configs()]
