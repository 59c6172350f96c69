"""Checkers for chapter 5, "Training a denoiser".

| exercise | learner writes | reference |
|---|---|---|
| ``check_eps_to_x0`` | ``eps_to_x0(eps_hat, x, sigma)`` | x̂₀ = x − σ ε̂ (σ per sample, shape (B,)) |
| ``check_v_target`` | ``v_target(x0, eps, sigma)`` | v = (ε − σ x₀)/√(1 + σ²) (σ_d = 1) |
| ``check_ema_step`` | ``ema_step(ema, theta, beta)`` | θ̄ ← β θ̄ + (1 − β) θ |
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..denoisers import target, to_x0
from .core import check_function

__all__ = ["check_eps_to_x0", "check_v_target", "check_ema_step", "eps_to_x0_reference",
           "v_target_reference", "ema_step_reference"]


def eps_to_x0_reference(eps_hat: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x̂₀ = x − σ ε̂ for x = x₀ + σ ε, with σ of shape (B,) broadcast over coordinates."""
    return to_x0(eps_hat, x, sigma, "eps")


def check_eps_to_x0(eps_to_x0: Callable) -> None:
    """Check ``eps_to_x0(eps_hat, x, sigma)`` on batches with one σ per sample."""
    g = torch.Generator().manual_seed(5)
    cases = [dict(eps_hat=torch.randn(6, 2, generator=g, dtype=torch.float64),
                  x=torch.randn(6, 2, generator=g, dtype=torch.float64) * 2,
                  sigma=torch.rand(6, generator=g, dtype=torch.float64) * 3 + 0.1) for _ in range(3)]
    hints = {
        "sign": "x = x0 + sigma*eps, so x0 = x - sigma*eps: the noise is *removed*.",
        "value": "solve x = x0 + sigma*eps for x0; the noise estimate is multiplied by sigma "
                 "(one sigma per sample: sigma[:, None] broadcasts it over coordinates).",
        "exception": "sigma has shape (B,) and x has shape (B, d): use sigma[:, None] (or "
                     "utils.append_dims(sigma, x.ndim)) so they broadcast.",
        "shape": "return one x0_hat per sample, shape (B, d) like x.",
    }
    check_function(eps_to_x0, eps_to_x0_reference, cases, name="eps_to_x0", atol=1e-8, rtol=1e-6,
                   hints=hints)


def v_target_reference(x0: torch.Tensor, eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """v = α ε − σ_VP x₀ with α = 1/√(1+σ²), σ_VP = σ/√(1+σ²) {cite}`salimans2022`."""
    return target(x0, eps, sigma, "v", sigma_data=1.0)


def check_v_target(v_target: Callable) -> None:
    """Check ``v_target(x0, eps, sigma)`` for a scalar σ on a few batches."""
    g = torch.Generator().manual_seed(6)
    cases = [dict(x0=torch.randn(5, 2, generator=g, dtype=torch.float64),
                  eps=torch.randn(5, 2, generator=g, dtype=torch.float64), sigma=s)
             for s in (0.3, 1.0, 4.0)]
    hints = {
        "sign": "v = alpha*eps - sigma_vp*x0 (Salimans & Ho); its negative is EDM's F target.",
        "scale": "in the VP view x_t = (x0 + sigma*eps)/sqrt(1 + sigma**2): divide by "
                 "sqrt(1 + sigma**2).",
        "value": "v mixes noise and signal: alpha*eps - sigma_vp*x0 with alpha = 1/sqrt(1+sigma**2) "
                 "and sigma_vp = sigma/sqrt(1+sigma**2). Check which one carries the minus sign.",
        "shape": "v has the shape of x0.",
    }
    check_function(v_target, v_target_reference, cases, name="v_target", atol=1e-8, rtol=1e-6,
                   hints=hints)


def ema_step_reference(ema: torch.Tensor, theta: torch.Tensor, beta: float) -> torch.Tensor:
    """One Polyak/EMA update θ̄ ← β θ̄ + (1 − β) θ {cite}`polyak1992`."""
    return beta * ema + (1 - beta) * theta


def check_ema_step(ema_step: Callable) -> None:
    """Check ``ema_step(ema, theta, beta)`` (returns the new average) for a few β."""
    g = torch.Generator().manual_seed(7)
    cases = [dict(ema=torch.randn(4, 3, generator=g, dtype=torch.float64),
                  theta=torch.randn(4, 3, generator=g, dtype=torch.float64), beta=b)
             for b in (0.9, 0.99, 0.5)]
    hints = {
        "value": "the average keeps a fraction beta of itself and takes (1 - beta) of the new "
                 "weights; with beta = 0.99 it should barely move towards theta.",
        "none": "return the new average (an in-place update alone returns None).",
        "shape": "the average has the shape of the weights.",
    }
    check_function(ema_step, ema_step_reference, cases, name="ema_step", atol=1e-10, rtol=1e-8,
                   hints=hints)
