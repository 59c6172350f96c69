"""The forward noising process in both views: variance-preserving (VP) and variance-exploding (VE).

VP (DDPM): x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε.  VE (σ view): x_σ = x_0 + σ·ε.
They are the same process up to a rescaling: x_t / sqrt(ᾱ_t) = x_0 + σ·ε with
σ² = (1 − ᾱ_t)/ᾱ_t, so a VP sample divided by sqrt(ᾱ) *is* a VE sample.

| code name   | symbol      | meaning                                                     |
|-------------|-------------|-------------------------------------------------------------|
| ``x0``      | x_0         | clean data, batch on dim 0: ``(B, ...)``                      |
| ``x_t``     | x_t         | VP noisy sample at step t                                    |
| ``x``       | x_σ         | VE noisy sample at noise level σ                             |
| ``eps``     | ε ~ N(0, I) | the Gaussian noise, same shape as ``x0``                      |
| ``alpha_bar``| ᾱ_t        | signal kept; a scalar or one value per sample ``(B,)``        |
| ``sigma``   | σ           | VE noise level; a scalar or ``(B,)``                          |
| ``betas``   | β_1..β_T    | per-step variances of the discrete chain                     |
| —           | θh          | OU rate × time step of one chain step: e^{−2θh} = 1 − β_t     |
"""

from __future__ import annotations

import torch

from .utils import append_dims, as_sigma, check_alpha_bar, check_shape

__all__ = ["q_sample", "add_noise", "vp_to_ve", "ve_to_vp", "forward_chain"]


def _noise(x0: torch.Tensor, eps: torch.Tensor | None,
           generator: torch.Generator | None) -> torch.Tensor:
    if eps is None:
        return torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    check_shape(eps, tuple(x0.shape), name="eps")
    return eps.to(dtype=x0.dtype, device=x0.device)


def _per_sample(alpha_bar: torch.Tensor | float, x0: torch.Tensor) -> torch.Tensor:
    ab = torch.as_tensor(alpha_bar, dtype=x0.dtype, device=x0.device)
    if ab.ndim == 0:
        ab = ab.expand(x0.shape[0])
    if ab.shape != (x0.shape[0],):
        raise ValueError(f"alpha_bar must be a scalar or have shape (batch,) = ({x0.shape[0]},), "
                         f"got {tuple(ab.shape)}")
    check_alpha_bar(ab)
    return append_dims(ab, x0.ndim)


def q_sample(x0: torch.Tensor, alpha_bar: torch.Tensor | float, eps: torch.Tensor | None = None,
             *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) in closed form: x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε {cite}`ho2020`.

    ``alpha_bar`` is ᾱ_t (scalar or ``(B,)``; for step t of a schedule pass ``alpha_bars[t - 1]``).
    ``eps`` defaults to fresh noise from ``generator``. Returns a tensor shaped like ``x0``.
    """
    ab = _per_sample(alpha_bar, x0)
    eps = _noise(x0, eps, generator)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def add_noise(x0: torch.Tensor, sigma: torch.Tensor | float, eps: torch.Tensor | None = None,
              *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw x_σ = x_0 + σ·ε, the variance-exploding view {cite}`song2021sde,karras2022`.

    ``sigma`` is a scalar or ``(B,)``; ``eps`` defaults to fresh noise from ``generator``.
    """
    s = append_dims(as_sigma(sigma, x0), x0.ndim)
    return x0 + s * _noise(x0, eps, generator)


def vp_to_ve(x_t: torch.Tensor, alpha_bar: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescale a VP sample to the σ view: (x_t / sqrt(ᾱ), σ) with σ = sqrt((1 − ᾱ)/ᾱ) {cite}`karras2022`.

    Returns ``(x_sigma, sigma)``; ``sigma`` has shape ``(B,)``.
    """
    ab = _per_sample(alpha_bar, x_t)
    sigma = ((1 - ab) / ab).sqrt().reshape(x_t.shape[0])
    return x_t / ab.sqrt(), sigma


def ve_to_vp(x: torch.Tensor, sigma: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescale a VE sample to the VP view: (x_σ / sqrt(1 + σ²), ᾱ) with ᾱ = 1/(1 + σ²) {cite}`karras2022`.

    Returns ``(x_t, alpha_bar)``; ``alpha_bar`` has shape ``(B,)``.
    """
    s = as_sigma(sigma, x)
    alpha_bar = 1 / (1 + s * s)
    return x * append_dims(alpha_bar, x.ndim).sqrt(), alpha_bar


def forward_chain(x0: torch.Tensor, betas: torch.Tensor, *, generator: torch.Generator | None = None,
                  return_all: bool = False) -> torch.Tensor:
    """Run the discrete chain step by step: x_t = sqrt(1 − β_t)·x_{t−1} + sqrt(β_t)·ε_t {cite}`ho2020`.

    Each step is the *exact* transition of the Ornstein–Uhlenbeck process dx = −θx dt +
    sqrt(2θ) dW (stationary law N(0, 1)) over a time step h with e^{−2θh} = 1 − β_t: the OU
    transition is x ← e^{−θh} x + sqrt(1 − e^{−2θh}) ε, i.e. sqrt(1 − β_t) x + sqrt(β_t) ε. It is
    not an Euler–Maruyama step, which would give (1 − θh) x + sqrt(2θh) ε and a stationary
    variance 1/(1 − θh/2) instead of 1. Its marginal equals :func:`q_sample` with
    ᾱ_t = ∏(1 − β_s). Noise is drawn as ``torch.randn(x0.shape, generator=generator)`` once per
    step, in order. Returns x_T, or with ``return_all`` the whole path ``(T + 1, B, ...)``
    starting at x_0.
    """
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.ndim != 1 or not bool(torch.all((betas > 0) & (betas < 1))):
        raise ValueError("betas must be a 1D tensor with every entry in (0, 1)")
    x, path = x0, [x0]
    for beta in betas.tolist():
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        x = (1 - beta) ** 0.5 * x + beta ** 0.5 * eps
        if return_all:
            path.append(x)
    return torch.stack(path) if return_all else x
