"""Checkers for chapter 1, random walks and Brownian motion.

Notation: ``x`` trajectories of shape ``(T, N, d)`` (times, particles, coordinates);
``D_coef`` the diffusion constant D; ``dt`` the time step Δt; ``msd`` ⟨|x_t − x_0|²⟩ = 2·d·D·t.

- :func:`check_random_walk` — ``random_walk_1d(n_particles, n_steps, D_coef, dt, generator)``
  returns positions of shape ``(n_steps + 1, n_particles)`` starting at 0. The answer is random,
  so its statistics are compared with theory: Var x_t = 2·D·t.
- :func:`check_msd` — ``msd(x)`` for ``x`` of shape ``(T, N, d)`` returns ``(T,)``.
- :func:`check_heat_kernel` — ``heat_kernel_1d(x, t, D_coef)``: the N(0, 2Dt) density.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import physics
from .core import ExerciseError, check_function, to_numpy

__all__ = ["check_random_walk", "check_msd", "check_heat_kernel"]

# Relative tolerance on the variance profile of a random walk. With N = 20000 particles the
# sample variance has relative standard deviation sqrt(2/N) = 1%; 6% is beyond 5 sigma.
WALK_RTOL = 0.06


def _walk_theory(n_particles: int, n_steps: int, D_coef: float, dt: float,
                 generator: torch.Generator | None = None) -> dict:
    """What a correct 1D walk must show: its shape and Var x_t = 2·D·t at t = Δt, 2Δt, ..."""
    t = dt * np.arange(1, n_steps + 1)
    return dict(shape=(n_steps + 1, n_particles), var=2 * D_coef * t, t=t, D_coef=D_coef, dt=dt)


def _compare_walk(got, want: dict, *, context: str, name: str = "random_walk_1d") -> None:
    """Compare a random walk with theory through its statistics (means and variances over particles)."""
    if got is None:
        raise ExerciseError(f"{name} returned None {context}. Did you forget `return`?")
    g, shape = to_numpy(got, name), want["shape"]
    if g.shape != shape:
        hint = ("include the starting point: row 0 is x_0 = 0, then one row per step"
                if g.shape == (shape[0] - 1, shape[1]) else
                "rows are times (n_steps + 1 of them, starting with x_0 = 0) and columns particles")
        raise ExerciseError(f"{name} has shape {g.shape} {context}, expected {shape}.\nHint: {hint}.")
    if not np.all(np.isfinite(g)):
        raise ExerciseError(f"{name} contains NaN or infinite values {context}.")
    if not np.allclose(g[0], 0.0):
        raise ExerciseError(f"{name} does not start at the ink drop {context}: row 0 should be all "
                            "zeros.\nHint: prepend x_0 = 0 before adding up the steps.")
    t, var_theory = want["t"], want["var"]  # (n_steps,)
    var = g[1:].var(axis=1)  # (n_steps,) variance over particles at each time
    if np.allclose(var, 0.0):
        raise ExerciseError(f"{name}: all particles are at the same place at every time {context}."
                            "\nHint: every particle needs its own random steps: draw a tensor of "
                            "shape (n_steps, n_particles), not one step shared by all.")
    half = len(t) // 2 - 1
    growth, expected_growth = var[-1] / var[half], t[-1] / t[half]  # 2 for linear growth
    if abs(growth / expected_growth - 1) > 0.25:
        raise ExerciseError(
            f"{name}: the variance over particles does not grow linearly in time {context} (it "
            f"grows by a factor {growth:.3g} from t/2 to t, expected {expected_growth:.3g})."
            "\nHint: a position is the running sum of the steps along the time axis "
            "(torch.cumsum(steps, dim=0)); each step is independent of the previous ones.")
    mean = g[1:].mean(axis=1)
    if np.any(np.abs(mean) > 6 * np.sqrt(var_theory / g.shape[1])):
        raise ExerciseError(f"{name}: the cloud drifts {context} (mean position up to "
                            f"{np.abs(mean).max():.3g}, expected about 0).\nHint: the steps must "
                            "have mean zero, e.g. torch.randn, not torch.rand.")
    ratio = var / var_theory  # (n_steps,), 1 for a correct walk
    if np.all(np.abs(ratio - 1) <= WALK_RTOL):
        return
    factor, step_var = float(np.median(ratio)), 2 * want["D_coef"] * want["dt"]
    which = (" You may have used a step variance of D·Δt: the 2 in 2·D·Δt is missing."
             if abs(factor - 0.5) < 0.1 else
             " You may have used 2·D·Δt as the standard deviation instead of the variance."
             if abs(factor - step_var) < 0.1 * step_var else "")
    raise ExerciseError(
        f"{name}: the variance over particles is {factor:.3g} × 2·D·t {context}, expected 1 × 2·D·t "
        f"(within {WALK_RTOL:.0%}).\nHint: each step must have variance 2·D·Δt, i.e. standard "
        f"deviation sqrt(2·D·Δt).{which}")


def check_random_walk(random_walk_1d: Callable) -> None:
    """Check ``random_walk_1d(n_particles, n_steps, D_coef, dt, generator)`` by its statistics.

    Var x_t = 2·D·t at every step (within 6%, with 20000 particles), mean 0, start at 0.
    """
    cases = [dict(n_particles=20_000, n_steps=40, D_coef=D, dt=dt,
                  generator=torch.Generator().manual_seed(seed))
             for seed, (D, dt) in enumerate([(0.5, 1.0), (0.25, 0.1), (2.0, 0.01)])]
    check_function(random_walk_1d, _walk_theory, cases, name="random_walk_1d",
                   compare=_compare_walk)


def check_msd(msd: Callable) -> None:
    """Check ``msd(x)``: x of shape (T, N, d) → (T,), msd_t = mean_n Σ_i (x_t − x_0)_i²."""
    g = torch.Generator().manual_seed(1)
    cases = [dict(x=physics.random_walk(50, 12, dim, D_coef=0.7, x0=torch.randn(dim, generator=g,
                                                                             dtype=torch.float64),
                                        generator=g))
             for dim in (1, 2, 3)]
    hints = {
        "shape": "average over particles (dim 1) and sum over coordinates (dim -1), keeping the "
                 "time axis: the result has one number per time, shape (T,).",
        "scale": "sum the squared displacement over the d coordinates (|x|² = Σ_i x_i²) before "
                 "averaging over particles; a mean over coordinates divides by d.",
        "value": "msd_t is the mean over particles of |x_t − x_0|²: the displacement from each "
                 "particle's own start x[0], squared (not its square root, not a variance around "
                 "the cloud's centre).",
        "none": "end the function with `return ...`.",
    }
    check_function(msd, physics.mean_squared_displacement, cases, name="msd", hints=hints)


def _reference_kernel_1d(x: torch.Tensor, t: float, D_coef: float) -> torch.Tensor:
    return physics.heat_kernel(x[..., None], t, D_coef)


def check_heat_kernel(heat_kernel_1d: Callable) -> None:
    """Check ``heat_kernel_1d(x, t, D_coef)`` = exp(−x²/(4Dt)) / sqrt(4πDt) on a grid."""
    x = torch.linspace(-6, 6, 121, dtype=torch.float64)
    cases = [dict(x=x, t=t, D_coef=D) for t, D in [(1.0, 0.5), (0.3, 2.0), (2.5, 0.1)]]
    hints = {
        "scale": "the exponent looks right but the normalisation is off: a Gaussian with variance "
                 "s² = 2·D·t has prefactor 1/sqrt(2π s²) = 1/sqrt(4π·D·t).",
        "value": "the heat kernel is the N(0, 2·D·t) density: variance 2·D·t (not D·t, not its "
                 "square root) in both the exponent exp(−x²/(2·2Dt)) and the prefactor.",
        "sign": "the exponent must be negative: exp(−x²/(4·D·t)).",
        "shape": "return one density value per grid point, shape like x.",
    }
    check_function(heat_kernel_1d, _reference_kernel_1d, cases, name="heat_kernel_1d",
                   hints=hints)
