"""Checkers for chapter 6 (samplers): one DDIM update, one Heun step, the Heun sampler loop and
the Karras noise ladder.

Each checker runs the learner's function on several inputs, compares with the reference and, when
the answer matches a typical mistake (no noise term, Euler instead of Heun, ...), says which.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .core import check_with_mistakes

__all__ = ["check_ddim_step", "check_heun_step", "check_heun_sampler", "check_karras_ladder",
           "ref_ddim_step", "ref_heun_step", "ref_heun_sampler", "ref_karras_ladder"]


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
    check_with_mistakes(ddim_step, ref_ddim_step, cases, name="ddim_step", hints=DDIM_HINTS,
                        mistakes=lambda **case: _ddim_mistakes(case))


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
    check_with_mistakes(heun_step, ref_heun_step, cases, name="heun_step", hints=HEUN_HINTS,
                        mistakes=lambda **case: _heun_mistakes(case))


# ----------------------------------------------------------------------------- the Heun loop
def ref_heun_sampler(denoiser: Callable, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Reference Heun sampler: a Heun step between rungs, a plain Euler step to the last σ = 0."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        if sigma_next > 0:
            x = ref_heun_step(denoiser, x, sigma, sigma_next)
        else:                                                   # Euler to σ = 0 lands on D
            x = denoiser(x, sigma)
    return x


HEUN_LOOP_HINTS = {
    "shape": "the sampler returns one sample per row of x, with x's shape.",
    "nan": "the last rung is σ = 0: the Heun correction divides by σ' there. Take a plain Euler "
           "step to 0 (it lands on D(x, σ_{N−1})).",
    "value": "for each pair (σ_i, σ_{i+1}): a Heun step when σ_{i+1} > 0, else x ← D(x, σ_i).",
}


def _heun_loop_mistakes(c: dict) -> dict:
    den, x, sigmas = c["denoiser"], c["x"], c["sigmas"]
    euler = x
    for i in range(len(sigmas) - 1):
        s, sn = float(sigmas[i]), float(sigmas[i + 1])
        euler = euler + (sn - s) * (euler - den(euler, s)) / s
    stopped = x
    for i in range(len(sigmas) - 2):
        stopped = ref_heun_step(den, stopped, float(sigmas[i]), float(sigmas[i + 1]))
    return {
        "these are Euler steps only: add Heun's correction with the slope at (x_E, σ_{i+1})": euler,
        "you stopped at σ_{N−1}: take the last step to σ = 0 (x ← D(x, σ_{N−1}))": stopped,
    }


def check_heun_sampler(heun_sampler: Callable) -> None:
    """Check ``heun_sampler(denoiser, x, sigmas) -> x0`` against the reference on exact Gaussian
    data and several ladders (the last rung of each is 0)."""
    from ..schedules import karras_sigmas, log_uniform_sigmas
    g = torch.Generator().manual_seed(8)
    ladders = [karras_sigmas(6, 0.01, 20.0), log_uniform_sigmas(4, 0.05, 8.0),
               karras_sigmas(3, 0.2, 5.0, rho=1.0)]
    cases = [dict(denoiser=_gauss_denoiser,
                  x=float(s[0]) * torch.randn(6, 2, generator=g, dtype=torch.float64), sigmas=s)
             for s in ladders]
    check_with_mistakes(heun_sampler, ref_heun_sampler, cases, name="heun_sampler",
                        hints=HEUN_LOOP_HINTS, mistakes=lambda **case: _heun_loop_mistakes(case))


# ----------------------------------------------------------------------------- the ladder
def ref_karras_ladder(n: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """EDM's ladder: σ_i = (σ_max^{1/ρ} + i/(n−1)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i < n, then 0."""
    i = torch.arange(n, dtype=torch.float64)
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return torch.cat([(hi + i / (n - 1) * (lo - hi)) ** rho, torch.zeros(1, dtype=torch.float64)])


LADDER_HINTS = {
    "shape": "n noise levels and then a final 0: n + 1 numbers in all.",
    "value": "interpolate linearly between σ_max^{1/ρ} and σ_min^{1/ρ} over i = 0..n−1, raise to "
             "the power ρ, append 0.",
}


def _ladder_mistakes(c: dict) -> dict:
    n, lo, hi, rho = c["n"], c["sigma_min"], c["sigma_max"], c["rho"]
    right = ref_karras_ladder(n, lo, hi, rho)
    i = torch.arange(n, dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.float64)
    warped = (hi**rho + i / (n - 1) * (lo**rho - hi**rho)) ** (1 / rho)
    return {
        "the ladder must go down, from σ_max to σ_min, and then end in 0":
            torch.cat([right[:-1].flip(0), zero]),
        "ρ is applied the wrong way round: interpolate σ^(1/ρ), then raise to the power ρ":
            torch.cat([warped, zero]),
        "this ladder is evenly spaced in σ (ρ = 1): use the ρ you are given":
            ref_karras_ladder(n, lo, hi, 1.0),
        "this ladder is evenly spaced in log σ (ρ → ∞): use the ρ you are given":
            torch.cat([torch.exp(torch.linspace(math.log(hi), math.log(lo), n,
                                                dtype=torch.float64)), zero]),
        "the ramp is i/n: it must be i/(n − 1) so that the last level is exactly σ_min":
            torch.cat([(hi ** (1 / rho) + i / n * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho, zero]),
    }


def check_karras_ladder(karras_ladder: Callable) -> None:
    """Check ``karras_ladder(n, sigma_min, sigma_max, rho)`` (n levels, then 0) on several ladders."""
    cases = [dict(n=n, sigma_min=lo, sigma_max=hi, rho=rho)
             for n, lo, hi, rho in [(8, 0.002, 80.0, 7.0), (5, 0.02, 10.0, 3.0), (12, 0.01, 15.0, 7.0),
                                    (4, 0.5, 4.0, 1.0)]]
    check_with_mistakes(karras_ladder, ref_karras_ladder, cases, name="karras_ladder",
                        hints=LADDER_HINTS, mistakes=lambda **case: _ladder_mistakes(case))
