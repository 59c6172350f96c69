"""Wrappers that turn a network into the one contract ``denoiser(x, sigma) -> x0_hat``.

Every parametrisation is the same formula with different coefficients {cite}`karras2022`:

    D(x, σ) = c_skip(σ) · x + c_out(σ) · F(c_in(σ) · x, c_noise(σ))

| prediction | c_skip            | c_out                  | F learns (its target F*)               |
|------------|-------------------|------------------------|----------------------------------------|
| ``"x0"``   | 0                 | 1                      | x₀                                     |
| ``"eps"``  | 1                 | −σ                     | ε                 (Ho et al. 2020)     |
| ``"v"``    | σ_d²/(σ²+σ_d²)    | −σσ_d/√(σ²+σ_d²)       | (σ_d ε − σ x₀/σ_d)/√(σ²+σ_d²)          |
| ``"edm"``  | σ_d²/(σ²+σ_d²)    | +σσ_d/√(σ²+σ_d²)       | −v                (Karras et al. 2022) |

with c_in = 1/√(σ² + σ_d²) and c_noise = ¼ log σ for all four. With σ_d = 1, ``"v"`` is the
v-prediction of Salimans & Ho (2022), v = α ε − σ_VP x₀ in the VP view (α = 1/√(1+σ²)); EDM's
preconditioning is the same target with the opposite sign and a data scale σ_d.

Since D − x₀ = c_out · (F − F*), the regression ‖F − F*‖² on any target is the x₀ regression
‖D − x₀‖² weighted by λ(σ) = 1/c_out(σ)²: the parametrisations differ only in weighting over σ.

Notation (code → symbol): ``x`` x_σ = x₀ + σε · ``sigma`` σ · ``sigma_data`` σ_d · ``F`` the
network output · ``x0_hat`` D(x, σ) · ``labels`` y (class, with a null class for guidance).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .utils import append_dims, as_sigma

__all__ = ["PREDICTIONS", "coefficients", "to_x0", "from_x0", "target", "Denoiser",
           "GuidedDenoiser"]

PREDICTIONS = ("x0", "eps", "v", "edm")


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; choose one of {PREDICTIONS}")


def coefficients(prediction: str, sigma: torch.Tensor, sigma_data: float = 0.5
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in, c_noise) of a parametrisation, each with the shape of ``sigma``.

    D = c_skip x + c_out F(c_in x, c_noise); see the module table {cite}`karras2022`.
    """
    _check_prediction(prediction)
    if sigma_data <= 0:
        raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
    norm = (sigma**2 + sigma_data**2).sqrt()  # √(σ² + σ_d²)
    c_in = 1 / norm
    c_noise = sigma.clamp_min(1e-20).log() / 4
    if prediction == "x0":
        c_skip, c_out = torch.zeros_like(sigma), torch.ones_like(sigma)
    elif prediction == "eps":
        c_skip, c_out = torch.ones_like(sigma), -sigma
    else:
        c_skip = sigma_data**2 / norm**2
        c_out = sigma * sigma_data / norm * (-1 if prediction == "v" else 1)
    return c_skip, c_out, c_in, c_noise


def to_x0(F: torch.Tensor, x: torch.Tensor, sigma: float | torch.Tensor, prediction: str,
          sigma_data: float = 0.5) -> torch.Tensor:
    """Turn a network prediction F into x̂₀ = c_skip x + c_out F."""
    c_skip, c_out, _, _ = coefficients(prediction, as_sigma(sigma, x), sigma_data)
    return append_dims(c_skip, x.ndim) * x + append_dims(c_out, x.ndim) * F


def from_x0(x0_hat: torch.Tensor, x: torch.Tensor, sigma: float | torch.Tensor, prediction: str,
            sigma_data: float = 0.5) -> torch.Tensor:
    """The inverse of :func:`to_x0`: the F that gives x̂₀, F = (x̂₀ − c_skip x) / c_out (σ > 0)."""
    c_skip, c_out, _, _ = coefficients(prediction, as_sigma(sigma, x), sigma_data)
    if torch.any(c_out == 0):
        raise ValueError(f"{prediction!r} cannot be recovered at sigma = 0; use sigma > 0")
    return (x0_hat - append_dims(c_skip, x.ndim) * x) / append_dims(c_out, x.ndim)


def target(x0: torch.Tensor, eps: torch.Tensor, sigma: float | torch.Tensor, prediction: str,
           sigma_data: float = 0.5) -> torch.Tensor:
    """The regression target F* of a parametrisation for x_σ = x₀ + σ ε (ε for "eps", x₀ for "x0")."""
    sigma = as_sigma(sigma, x0)
    return from_x0(x0, x0 + append_dims(sigma, x0.ndim) * eps, sigma, prediction, sigma_data)


class Denoiser(nn.Module):
    """Wrap a network ``net(x, c_noise, labels=None)`` into ``denoiser(x, sigma) -> x0_hat``.

    D(x, σ) = c_skip(σ) x + c_out(σ) F(c_in(σ) x, c_noise(σ)) for ``prediction`` in
    ("x0", "eps", "v", "edm") {cite}`karras2022`. ``sigma`` is a scalar or a ``(B,)`` tensor.
    """

    def __init__(self, net: nn.Module, prediction: str = "edm", sigma_data: float = 0.5) -> None:
        super().__init__()
        _check_prediction(prediction)
        self.net, self.prediction, self.sigma_data = net, prediction, float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        sigma = as_sigma(sigma, x)  # (B,)
        c_skip, c_out, c_in, c_noise = coefficients(self.prediction, sigma, self.sigma_data)
        F = self.net(append_dims(c_in, x.ndim) * x, c_noise, labels)  # (B, ...) like x
        return append_dims(c_skip, x.ndim) * x + append_dims(c_out, x.ndim) * F


class GuidedDenoiser(nn.Module):
    """Classifier-free guidance: D_w = D(x, σ, ∅) + w · (D(x, σ, y) − D(x, σ, ∅)).

    ``w = 0`` is unconditional, ``w = 1`` conditional, ``w > 1`` guided {cite}`ho2022cfg`.
    ``null_label`` is the class index the network was trained on when the label was dropped.
    """

    def __init__(self, denoiser: Callable[..., torch.Tensor], labels: torch.Tensor,
                 scale: float, null_label: int) -> None:
        super().__init__()
        self.denoiser, self.labels, self.scale, self.null_label = denoiser, labels, scale, null_label

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        if self.labels.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(self.labels.shape)}")
        null = torch.full_like(self.labels, self.null_label)
        both = self.denoiser(torch.cat([x, x]), torch.cat([as_sigma(sigma, x)] * 2),
                             torch.cat([self.labels, null]))  # (2B, ...)
        cond, uncond = both.chunk(2)
        return uncond + self.scale * (cond - uncond)
