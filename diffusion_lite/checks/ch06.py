"""Checkers for chapter 6 (samplers): one DDIM update, one Heun step.

Each checker runs the learner's function on several inputs, compares with the reference and, when
the answer matches a typical mistake (no noise term, Euler instead of Heun, ...), says which.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .core import check_function

__all__ = ["check_ddim_step", "check_heun_step", "ref_ddim_step", "ref_heun_step"]


def ref_ddim_step(x: torch.Tensor, x0_hat: torch.Tensor, sigma: float, sigma_next: float,
                  eta: float, noise: torch.Tensor) -> torch.Tensor:
    """Reference DDIM update in the σ view: x' = x0_hat + σ_down ε_hat + σ_up z."""
    eps_hat = (x - x0_hat) / sigma
    sigma_up = eta * sigma_next * (sigma**2 - sigma_next**2) ** 0.5 / sigma
    sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
    return x0_hat + sigma_down * eps_hat + sigma_up * noise


def ref_heun_step(denoiser: Callable, x: torch.Tensor, sigma: float,
                  sigma_next: float) -> torch.Tensor:
    """Reference Heun step on dx/dσ = (x − D(x, σ))/σ from σ to σ_next > 0."""
    d = (x - denoiser(x, sigma)) / sigma
    x_euler = x + (sigma_next - sigma) * d
    d_next = (x_euler - denoiser(x_euler, sigma_next)) / sigma_next
    return x + (sigma_next - sigma) * (d + d_next) / 2


def _gauss_denoiser(x: torch.Tensor, sigma) -> torch.Tensor:
    """Exact denoiser of x0 ~ N(μ, diag s²) with μ = (1, −1), s² = (0.5, 2)."""
    mu = torch.tensor([1.0, -1.0], dtype=x.dtype)
    s2 = torch.tensor([0.5, 2.0], dtype=x.dtype)
    sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, 1)
    return mu + s2 / (s2 + sigma**2) * (x - mu)


def _check_with_mistakes(candidate: Callable, reference: Callable, cases: list[dict], *,
                         name: str, hints: dict, mistakes: Callable[[dict], dict]) -> None:
    """check_function naming a known mistake (``mistakes(case)`` maps a diagnosis to the wrong
    value; one that equals the right answer on a case is skipped there)."""
    check_function(candidate, reference, cases, name=name, hints=hints,
                   mistakes=lambda **case: mistakes(case))


DDIM_HINTS = {
    "shape": "x' has the shape of x: every operation is elementwise.",
    "value": "ε_hat = (x − x0_hat)/σ; σ_up = η σ' √(σ² − σ'²)/σ; σ_down = √(σ'² − σ_up²); "
             "x' = x0_hat + σ_down ε_hat + σ_up z.",
}


def _ddim_mistakes(c: dict) -> dict:
    eps_hat = (c["x"] - c["x0_hat"]) / c["sigma"]
    sigma_up = c["eta"] * c["sigma_next"] * (c["sigma"] ** 2 - c["sigma_next"] ** 2) ** 0.5 / c["sigma"]
    sigma_down = (c["sigma_next"] ** 2 - sigma_up**2) ** 0.5
    return {
        "you left out the fresh noise σ_up·z (needed when η > 0)": c["x0_hat"] + sigma_down * eps_hat,
        "the deterministic part uses σ' where it needs σ_down = √(σ'² − σ_up²)":
            c["x0_hat"] + c["sigma_next"] * eps_hat + sigma_up * c["noise"],
        "ε_hat has the wrong sign: it is (x − x0_hat)/σ":
            c["x0_hat"] - sigma_down * eps_hat + sigma_up * c["noise"],
    }


def check_ddim_step(ddim_step: Callable) -> None:
    """Check ``ddim_step(x, x0_hat, sigma, sigma_next, eta, noise) -> x_next``."""
    g = torch.Generator().manual_seed(6)
    cases = [dict(x=sigma * torch.randn(5, 2, generator=g, dtype=torch.float64),
                  x0_hat=torch.randn(5, 2, generator=g, dtype=torch.float64),
                  sigma=sigma, sigma_next=sigma_next, eta=eta,
                  noise=torch.randn(5, 2, generator=g, dtype=torch.float64))
             for sigma, sigma_next, eta in [(2.0, 1.0, 0.0), (5.0, 3.0, 0.5), (1.5, 0.2, 1.0),
                                            (0.8, 0.5, 0.3)]]
    _check_with_mistakes(ddim_step, ref_ddim_step, cases, name="ddim_step", hints=DDIM_HINTS,
                         mistakes=_ddim_mistakes)


HEUN_HINTS = {
    "shape": "the step returns a new x with the shape of x.",
    "value": "d = (x − D(x, σ))/σ; x_E = x + (σ' − σ) d; d' = (x_E − D(x_E, σ'))/σ'; "
             "x' = x + (σ' − σ)(d + d')/2.",
}


def _heun_mistakes(c: dict) -> dict:
    den, x, s, sn = c["denoiser"], c["x"], c["sigma"], c["sigma_next"]
    d = (x - den(x, s)) / s
    x_e = x + (sn - s) * d
    d_next = (x_e - den(x_e, sn)) / sn
    return {
        "this is the Euler step: add the 2nd-order correction with the slope at σ'": x_e,
        "the slope d' must be evaluated at the Euler prediction x_E, not at x":
            x + (sn - s) * (d + (x - den(x, sn)) / sn) / 2,
        "the correction restarts from x_E; Heun restarts from x: x' = x + (σ' − σ)(d + d')/2":
            x_e + (sn - s) * (d + d_next) / 2,
        "average the two slopes: (d + d')/2, not d + d'": x + (sn - s) * (d + d_next),
    }


def check_heun_step(heun_step: Callable) -> None:
    """Check ``heun_step(denoiser, x, sigma, sigma_next) -> x_next`` on exact Gaussian data."""
    g = torch.Generator().manual_seed(7)
    cases = [dict(denoiser=_gauss_denoiser, x=s * torch.randn(6, 2, generator=g, dtype=torch.float64),
                  sigma=s, sigma_next=sn) for s, sn in [(10.0, 6.0), (2.0, 1.0), (0.9, 0.3)]]
    _check_with_mistakes(heun_step, ref_heun_step, cases, name="heun_step", hints=HEUN_HINTS,
                         mistakes=_heun_mistakes)
