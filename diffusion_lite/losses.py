"""Denoising objectives: which noise levels we train on, and how much each one counts.

The one objective behind ε-, x₀- and v-prediction {cite}`karras2022`:

    L = E_{σ ~ p_train} E_{x₀, ε} [ λ(σ) · ‖D(x₀ + σε, σ) − x₀‖² / d ]

p_train (the noise-level distribution) is always an explicit argument; λ(σ) = 1/c_out(σ)² is the
weighting that training the network F on a given target implies (see :mod:`denoisers`). Losses
are per dimension (divided by d), so 2D points and images read on the same scale.

Notation (code → symbol): ``x0`` x₀ · ``eps`` ε · ``sigma`` σ · ``sigma_dist`` p_train(σ) ·
``weighting`` λ(σ) · ``sigma_data`` σ_d · ``denoiser`` D(x, σ) · ``p_mean``/``p_std`` the mean and
standard deviation of ln σ under EDM's log-normal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .denoisers import coefficients
from .utils import append_dims

__all__ = ["LogNormalSigma", "LogUniformSigma", "DiscreteSigma", "WEIGHTINGS", "weighting",
           "weighted_loss", "denoising_loss", "loss_per_sigma", "compare_to_oracle"]


def _draw(sigma_dist, x0: torch.Tensor, generator: torch.Generator | None):
    """σ ~ p_train and ε ~ N(0, I) for a batch, drawn on the generator's device, moved to x0's."""
    dev = generator.device if generator is not None else x0.device
    sigma = sigma_dist.sample(x0.shape[0], generator=generator, dtype=x0.dtype, device=dev)  # (B,)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=dev)  # (B, ...)
    return sigma.to(x0.device), eps.to(x0.device)


@dataclass(frozen=True)
class LogNormalSigma:
    """ln σ ~ N(p_mean, p_std²), EDM's training distribution {cite}`karras2022`."""

    p_mean: float = -1.2
    p_std: float = 1.2

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
        z = torch.randn(n, generator=generator, dtype=dtype, device=device)  # (n,)
        return (self.p_mean + self.p_std * z).exp()


@dataclass(frozen=True)
class LogUniformSigma:
    """ln σ uniform on [ln σ_min, ln σ_max]: every octave of noise counts the same."""

    sigma_min: float = 0.002
    sigma_max: float = 80.0

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        u = torch.rand(n, generator=generator, dtype=dtype, device=device)  # (n,)
        lo, hi = math.log(self.sigma_min), math.log(self.sigma_max)
        return (lo + (hi - lo) * u).exp()


@dataclass(frozen=True)
class DiscreteSigma:
    """σ uniform over a fixed ladder, e.g. the σ_t = √((1 − ᾱ_t)/ᾱ_t) of a VP schedule {cite}`ho2020`."""

    sigmas: tuple[float, ...]

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
        if not self.sigmas or min(self.sigmas) <= 0:
            raise ValueError("DiscreteSigma needs a non-empty ladder of positive sigmas")
        ladder = torch.tensor(self.sigmas, dtype=dtype, device=device)  # (T,)
        idx = torch.randint(len(self.sigmas), (n,), generator=generator, device=device)  # (n,)
        return ladder[idx]


WEIGHTINGS = ("x0", "eps", "v", "edm")


def weighting(name: str, sigma: torch.Tensor, sigma_data: float = 0.5) -> torch.Tensor:
    """λ(σ) = 1/c_out(σ)²: the weight on ‖D − x₀‖² that regressing F on ``name``'s target implies.

    "x0": 1 · "eps": 1/σ² (= SNR) · "v" and "edm": (σ² + σ_d²)/(σ σ_d)² {cite}`karras2022`.
    """
    if name not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {name!r}; choose one of {WEIGHTINGS}")
    _, c_out, _, _ = coefficients(name, sigma, sigma_data)
    return 1 / c_out**2


def weighted_loss(denoiser: Callable, x0: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor,
                  weighting_name: str, sigma_data: float = 0.5,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample λ(σ) ‖D(x₀ + σε, σ) − x₀‖² / d, shape ``(B,)`` (given σ and ε: no randomness)."""
    if eps.shape != x0.shape or sigma.shape != (x0.shape[0],):
        raise ValueError(f"eps must have x0's shape {tuple(x0.shape)} and sigma shape "
                         f"({x0.shape[0]},); got {tuple(eps.shape)} and {tuple(sigma.shape)}")
    x = x0 + append_dims(sigma, x0.ndim) * eps  # (B, ...)
    x0_hat = denoiser(x, sigma) if labels is None else denoiser(x, sigma, labels)
    mse = ((x0_hat - x0) ** 2).flatten(1).mean(1)  # (B,)
    return weighting(weighting_name, sigma, sigma_data) * mse


def denoising_loss(denoiser: Callable, x0: torch.Tensor, sigma_dist, weighting_name: str, *,
                   sigma_data: float = 0.5, generator: torch.Generator | None = None,
                   labels: torch.Tensor | None = None) -> torch.Tensor:
    """The training objective on one batch: mean over the batch of λ(σ) ‖D(x₀ + σε, σ) − x₀‖²/d.

    σ ~ ``sigma_dist`` (anything with ``.sample(n, generator=, dtype=, device=)``), ε ~ N(0, I).
    """
    sigma, eps = _draw(sigma_dist, x0, generator)
    return weighted_loss(denoiser, x0, sigma, eps, weighting_name, sigma_data, labels).mean()


@torch.no_grad()
def loss_per_sigma(denoiser: Callable, x0: torch.Tensor, sigmas: Sequence[float] | torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Unweighted E‖D(x₀ + σε, σ) − x₀‖²/d at each σ, shape ``(S,)``, over the batch ``x0``.

    With the exact posterior mean as ``denoiser`` this is the Bayes-optimal floor at each σ.
    Two denoisers given generators with the same seed see the same ε (a paired comparison).
    """
    out = []
    for s in torch.as_tensor(sigmas, dtype=x0.dtype).tolist():
        dev = generator.device if generator is not None else x0.device
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=dev).to(x0.device)
        sigma = torch.full((x0.shape[0],), s, dtype=x0.dtype, device=x0.device)
        out.append(weighted_loss(denoiser, x0, sigma, eps, "x0").mean())
    return torch.stack(out)  # (S,)


@torch.no_grad()
def compare_to_oracle(denoiser: Callable, oracle: Callable, x0: torch.Tensor, sigma_dist,
                      weighting_name: str, *, edges: Sequence[float] = (), sigma_data: float = 0.5,
                      generator: torch.Generator | None = None) -> list[dict]:
    """Held-out loss of ``denoiser`` over the Bayes-optimal loss, on the same x₀, σ and ε.

    Returns one row per σ band [edges[i], edges[i+1]) and a last row "all" (the full training
    distribution), each {"band", "n", "loss", "floor", "ratio"}. ratio = L(D)/L(D*) ≥ 1 up to noise.
    """
    sigma, eps = _draw(sigma_dist, x0, generator)
    ours = weighted_loss(denoiser, x0, sigma, eps, weighting_name, sigma_data)  # (B,)
    best = weighted_loss(oracle, x0, sigma, eps, weighting_name, sigma_data)  # (B,)
    bounds = [0.0, *edges, math.inf]
    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        m = (sigma >= lo) & (sigma < hi)
        if m.any():
            rows.append({"band": (lo, hi), "n": int(m.sum()), "loss": ours[m].mean().item(),
                         "floor": best[m].mean().item(), "ratio": (ours[m].mean() / best[m].mean()).item()})
    rows.append({"band": "all", "n": x0.shape[0], "loss": ours.mean().item(),
                 "floor": best.mean().item(), "ratio": (ours.mean() / best.mean()).item()})
    return rows
