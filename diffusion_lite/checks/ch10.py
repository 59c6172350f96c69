"""Checkers for chapter 10, "Flow matching and rectified flow".

Each checker runs the learner's function on fixed inputs, compares it with the reference, and
when the answer equals a typical mistake (a sign or scale slip, the σ-view slope for the
velocity, a step in the wrong direction, an unweighted average) names that mistake.

| exercise | learner writes | reference |
|---|---|---|
| ``check_velocity_from_denoiser`` | ``velocity_from_denoiser(x0_hat, x_t, t)`` | u = (x_t − x̂₀)/t (rectified path, t shape (B,)) |
| ``check_euler_t_step`` | ``euler_t_step(velocity, x, t, t_next)`` | x + (t' − t) u(x, t) |
| ``check_straightness`` | ``straightness(ts, xs)`` | Σ_k |Δt_k| mean_b ‖v_k − chord‖² / |t_K − t_0| |
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..couplings import straightness as straightness_reference
from ..flow_matching import convert
from .core import check_with_mistakes

__all__ = ["check_velocity_from_denoiser", "check_euler_t_step", "check_straightness",
           "velocity_from_denoiser_reference", "euler_t_step_reference",
           "straightness_reference"]

F64 = dict(dtype=torch.float64)


def velocity_from_denoiser_reference(x0_hat: torch.Tensor, x_t: torch.Tensor,
                                     t: torch.Tensor) -> torch.Tensor:
    """u = ε̂ − x̂₀ = (x_t − x̂₀)/t on the rectified path x_t = (1 − t) x₀ + t ε {cite}`liu2023`."""
    return convert(x0_hat, "x0", "velocity", x_t, t)


def _velocity_mistakes(c: dict) -> dict:
    x0, x, t = c["x0_hat"], c["x_t"], c["t"][:, None]
    eps_hat = (x - (1 - t) * x0) / t
    return {
        "this is ε̂ = (x_t − (1 − t) x̂₀)/t, the σ-view slope dx/dσ; the velocity of x_t is "
        "ε̂ − x̂₀": eps_hat,
        "this is x̂₀ − ε̂, the papers' v with the data at t = 1 (Lipman, Liu); in this course t = 0 "
        "is data and u = dx_t/dt = ε̂ − x̂₀": x0 - eps_hat,
        "you divided by 1 − t (that is a_t, the data's weight); the noise weight is b_t = t":
        (x - x0) / (1 - t),
        "you divided by σ = t/(1 − t); the time variable here is t": (x - x0) / (t / (1 - t)),
        "x_t − x̂₀ still has to be divided by t": x - x0,
    }


def check_velocity_from_denoiser(velocity_from_denoiser: Callable) -> None:
    """Check ``velocity_from_denoiser(x0_hat, x_t, t)`` with one t per sample, shape (B,)."""
    g = torch.Generator().manual_seed(10)
    cases = [dict(x0_hat=torch.randn(6, 2, generator=g, **F64),
                  x_t=torch.randn(6, 2, generator=g, **F64),
                  t=torch.rand(6, generator=g, **F64) * 0.8 + 0.1) for _ in range(3)]
    hints = {"exception": "t has shape (B,) and x_t shape (B, d): use t[:, None] to broadcast.",
             "shape": "return one velocity per sample, shape (B, d) like x_t.",
             "value": "write x_t = (1 − t) x0 + t ε, solve for ε̂ given x̂₀, then u = dx_t/dt = "
                      "ε̂ − x̂₀."}
    check_with_mistakes(velocity_from_denoiser, velocity_from_denoiser_reference, cases,
                        mistakes=lambda **case: _velocity_mistakes(case),
                        name="velocity_from_denoiser", hints=hints)


def euler_t_step_reference(velocity: Callable, x: torch.Tensor, t: float,
                           t_next: float) -> torch.Tensor:
    """One Euler step of dx/dt = u(x, t) from t to t_next < t: x + (t_next − t) u(x, t)."""
    return x + (t_next - t) * velocity(x, torch.full((x.shape[0],), t, **F64))


def _field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A velocity field that depends on x and t, so each mistake changes the answer."""
    return x.flip(1) * t[:, None] - 2 * x + t[:, None] ** 2


def _euler_mistakes(c: dict) -> dict:
    u, x, t, tn = c["velocity"], c["x"], c["t"], c["t_next"]
    tt = torch.full((x.shape[0],), t, **F64)
    sigma, sigma_next = t / (1 - t), tn / (1 - tn)
    return {
        "the step goes towards the noise: t decreases, so the step is (t_next − t) u, "
        "a negative multiple": x + (t - tn) * u(x, tt),
        "the velocity must be evaluated at the current time t, not at t_next (explicit Euler)":
            x + (tn - t) * u(x, torch.full((x.shape[0],), tn, **F64)),
        "the step size is t_next − t, not a full unit step": x - u(x, tt),
        "the step size is in t, not in σ = t/(1 − t)": x + (sigma_next - sigma) * u(x, tt),
    }


def check_euler_t_step(euler_t_step: Callable) -> None:
    """Check ``euler_t_step(velocity, x, t, t_next)``; ``velocity(x, t)`` takes t of shape (B,)."""
    g = torch.Generator().manual_seed(11)
    cases = [dict(velocity=_field, x=torch.randn(5, 2, generator=g, **F64), t=t, t_next=tn)
             for t, tn in [(0.9, 0.6), (0.5, 0.2), (0.3, 0.0)]]
    hints = {"exception": "call velocity(x, t_vec) with t_vec = torch.full((x.shape[0],), t).",
             "value": "x' = x + (t_next − t) · velocity(x, t): one evaluation, at the start."}
    check_with_mistakes(euler_t_step, euler_t_step_reference, cases,
                        mistakes=lambda **case: _euler_mistakes(case),
                        name="euler_t_step", hints=hints)


def _straightness_mistakes(c: dict) -> dict:
    ts, xs = c["ts"], c["xs"].double()
    dt = ts.diff()
    v = xs.diff(dim=0) / dt[:, None, None]
    chord = (xs[-1] - xs[0]) / (ts[-1] - ts[0])
    dev = (v - chord).pow(2).sum(-1).mean(-1)  # (K,)
    T = (ts[-1] - ts[0]).abs()
    disp = (xs.diff(dim=0) - (xs[-1] - xs[0]) * dt[:, None, None] / (ts[-1] - ts[0]))
    return {
        "‖·‖² sums over coordinates; you averaged them": (dt.abs() * dev).sum() / T / xs.shape[-1],
        "the steps have different lengths: weight each by |Δt_k| instead of a plain mean over "
        "steps": dev.mean(),
        "divide by the total time |t_K − t_0| (S is a time average)": (dt.abs() * dev).sum(),
        "compare velocities (x_{k+1} − x_k)/Δt_k with the chord velocity, not displacements":
            disp.pow(2).sum(-1).mean(-1).sum() / T,
        "compare velocities (x_{k+1} − x_k)/Δt_k with the chord velocity, not displacements "
        "(Δt_k then enters twice)": (dt.abs() * disp.pow(2).sum(-1).mean(-1)).sum() / T,
    }


def _straightness_tensor(ts: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    return torch.tensor(straightness_reference(ts, xs), **F64)


def check_straightness(straightness: Callable) -> None:
    """Check ``straightness(ts, xs) -> float`` on curved paths over uneven, reversed time grids."""
    g = torch.Generator().manual_seed(12)
    cases = []
    for t0, k in [(1.0, 6), (0.8, 9), (0.5, 4)]:
        ts = torch.cat([torch.tensor([t0], **F64),
                        torch.sort(torch.rand(k - 1, generator=g, **F64) * t0, descending=True)
                        .values, torch.zeros(1, **F64)])  # uneven grid t0 → 0
        xs = torch.randn(k + 1, 5, 3, generator=g, **F64).cumsum(0)  # (K+1, B, d) random walks
        cases.append(dict(ts=ts, xs=xs))
    hints = {"value": "v_k = (x_{k+1} − x_k)/(t_{k+1} − t_k), chord = (x_K − x_0)/(t_K − t_0); "
                      "S = Σ_k |Δt_k| mean_b ‖v_k − chord‖² / |t_K − t_0|.",
             "shape": "return one number (a float or a 0-d tensor)."}
    check_with_mistakes(straightness, _straightness_tensor, cases,
                        mistakes=lambda **case: _straightness_mistakes(case),
                        name="straightness", hints=hints)
