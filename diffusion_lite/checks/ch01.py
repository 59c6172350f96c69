"""Checkers for chapter 1, random walks and Brownian motion.

Notation: ``x`` trajectories of shape ``(T, N, d)`` (times, particles, coordinates);
``D_coef`` the diffusion constant D; ``dt`` the time step Δt; ``msd`` ⟨|x_t − x_0|²⟩ = 2·d·D·t.

- :func:`check_random_walk` — ``random_walk_1d(n_particles, n_steps, D_coef, dt, generator)``
  returns positions of shape ``(n_steps + 1, n_particles)`` starting at 0. The answer is random,
  so its statistics are compared with theory: Var x_t = 2·D·t.
  Besides the variance profile it checks what makes a *walk*: increments of variance 2·D·Δt and
  Cov(x_s, x_t) = 2·D·min(s, t) (independent draws with the right variances fail here).
- :func:`check_msd` — ``msd(x)`` for ``x`` of shape ``(T, N, d)`` returns ``(T,)``; the
  particles start at different points, so a displacement from a shared start is rejected.
- :func:`check_heat_kernel` — ``heat_kernel_1d(x, t, D_coef)``: the N(0, 2Dt) density.
- :func:`check_ftcs_step` — ``ftcs_step(p, D_coef, dt, dx)``: one explicit step of the heat
  equation with reflecting walls, p_i + r(p_{i−1} − 2p_i + p_{i+1}), r = DΔt/Δx²; it must refuse
  r > 1/2. Compared with :func:`diffusion_lite.physics.solve_heat_1d` run for one step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import physics
from .core import ExerciseError, check_function, to_numpy

__all__ = ["check_random_walk", "check_msd", "check_heat_kernel", "check_ftcs_step"]

# Relative tolerance on the variance profile of a random walk. With N = 20000 particles the
# sample variance has relative standard deviation sqrt(2/N) = 1%; 6% is beyond 5 sigma.
WALK_RTOL = 0.06
# Absolute tolerance on the correlation Corr(x_s, x_t) = sqrt(min(s, t)/max(s, t)) of a walk:
# its sampling standard deviation is below 1/sqrt(N) = 0.007 with N = 20000; 0.05 is beyond 7 of
# them, while independent draws give 0 instead of at least sqrt(1/40) = 0.16.
CORR_ATOL = 0.05


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
        _check_walk_memory(g, want, context=context, name=name)
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


def _check_walk_memory(g: np.ndarray, want: dict, *, context: str, name: str) -> None:
    """A walk remembers: increments have variance 2DΔt and Cov(x_s, x_t) = 2D·min(s, t)."""
    inc_var = np.diff(g, axis=0).var(axis=1)  # (n_steps,)
    step_var = 2 * want["D_coef"] * want["dt"]
    idx = np.unique(np.linspace(1, g.shape[0] - 1, 6).round().astype(int))  # rows to correlate
    corr = np.corrcoef(g[idx])  # (k, k) over particles
    t = idx * want["dt"]
    corr_theory = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    if np.abs(corr - corr_theory).max() > CORR_ATOL:
        i, j = np.unravel_index(np.argmax(np.abs(corr - corr_theory)), corr.shape)
        raise ExerciseError(
            f"{name}: positions at different times are not those of one walk {context}: "
            f"Corr(x_s, x_t) = {corr[i, j]:.3f} at s = {t[min(i, j)]:.3g}, t = {t[max(i, j)]:.3g}, "
            f"expected sqrt(s/t) = {corr_theory[i, j]:.3f} (Cov(x_s, x_t) = 2·D·min(s, t)). The "
            f"increments have variance {np.median(inc_var):.3g}, expected 2·D·Δt = {step_var:.3g}."
            "\nHint: each row must be the previous row plus one new step (a running sum, "
            "torch.cumsum(steps, dim=0)), not a fresh draw with the right variance.")
    if np.any(np.abs(inc_var / step_var - 1) > 2 * WALK_RTOL):
        raise ExerciseError(f"{name}: the increments x_(k+1) − x_k have variance up to "
                            f"{inc_var.max():.3g} {context}, expected 2·D·Δt = {step_var:.3g}."
                            "\nHint: every step needs the same variance 2·D·Δt.")


def check_random_walk(random_walk_1d: Callable) -> None:
    """Check ``random_walk_1d(n_particles, n_steps, D_coef, dt, generator)`` by its statistics.

    Var x_t = 2·D·t at every step (within 6%, with 20000 particles), mean 0, start at 0.
    """
    cases = [dict(n_particles=20_000, n_steps=40, D_coef=D, dt=dt,
                  generator=torch.Generator().manual_seed(seed))
             for seed, (D, dt) in enumerate([(0.5, 1.0), (0.25, 0.1), (2.0, 0.01)])]
    check_function(random_walk_1d, _walk_theory, cases, name="random_walk_1d",
                   compare=_compare_walk)


_MSD_MISTAKES = {
    "the displacement is measured from one shared start (the cloud's initial centre), but the "
    "particles start at different points: subtract each particle's own start x[0] (shape (N, d)).":
        lambda x: ((x - x[0].mean(dim=0)) ** 2).sum(dim=-1).mean(dim=-1),
    "the displacement is measured from the first particle's start x[0, 0]; each particle has its "
    "own start x[0, n]: subtract x[0] (broadcast over time).":
        lambda x: ((x - x[0, 0]) ** 2).sum(dim=-1).mean(dim=-1),
    "the displacement is measured from the origin; the particles start at x[0], not at 0.":
        lambda x: (x**2).sum(dim=-1).mean(dim=-1),
    "this is the spread around the cloud's current centre (a variance), not the displacement of "
    "each particle from its own start.":
        lambda x: ((x - x.mean(dim=1, keepdim=True)) ** 2).sum(dim=-1).mean(dim=-1),
}


def check_msd(msd: Callable) -> None:
    """Check ``msd(x)``: x of shape (T, N, d) → (T,), msd_t = mean_n Σ_i (x_t − x_0)_i².

    The particles start at different points (x0 of shape (N, d)), so measuring from a shared
    start, the origin or the cloud's centre is named as a mistake.
    """
    g = torch.Generator().manual_seed(1)
    cases = [dict(x=physics.random_walk(
                 50, 12, dim, D_coef=0.7, generator=g,
                 x0=3 * torch.randn(50, dim, generator=g, dtype=torch.float64)))  # own starts
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
    check_function(msd, physics.mean_squared_displacement, cases, name="msd", hints=hints,
                   mistakes=lambda x: {why: wrong(x) for why, wrong in _MSD_MISTAKES.items()})


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


# --- Exercise: one explicit (FTCS) step of the heat equation --------------------------------

def _ftcs_ref(p: torch.Tensor, D_coef: float, dt: float, dx: float) -> torch.Tensor:
    return physics.solve_heat_1d(p, dx, D_coef, [dt], dt=dt)[0]


def _ftcs_variant(p, D_coef, dt, dx, *, r=None, ghosts="reflect", edges=True):
    r = D_coef * dt / dx**2 if r is None else r
    if ghosts == "periodic":
        left, right = p[..., -1:], p[..., :1]
    elif ghosts == "zero":
        left, right = torch.zeros_like(p[..., :1]), torch.zeros_like(p[..., :1])
    else:
        left, right = p[..., :1], p[..., -1:]
    padded = torch.cat([left, p, right], dim=-1)
    new = p + r * (padded[..., :-2] - 2 * p + padded[..., 2:])
    if not edges:
        new[..., 0], new[..., -1] = p[..., 0], p[..., -1]
    return new


_FTCS_MISTAKES = {
    "r is D·Δt/Δx, but the second difference divides by Δx²: r = D·Δt/Δx².":
        lambda p, D_coef, dt, dx: _ftcs_variant(p, D_coef, dt, dx, r=D_coef * dt / dx),
    "the walls wrap around (torch.roll makes the grid a ring); reflecting walls copy the edge "
    "value into the ghost cell, so no mass flows through them.":
        lambda p, D_coef, dt, dx: _ftcs_variant(p, D_coef, dt, dx, ghosts="periodic"),
    "the ghost cells are 0 (absorbing walls: mass leaks out); reflecting walls copy the edge "
    "value, p_(−1) = p_0 and p_M = p_(M−1).":
        lambda p, D_coef, dt, dx: _ftcs_variant(p, D_coef, dt, dx, ghosts="zero"),
    "the two edge points are never updated; with reflecting walls they change too, using a ghost "
    "cell equal to the edge value.":
        lambda p, D_coef, dt, dx: _ftcs_variant(p, D_coef, dt, dx, edges=False),
    "the update has the wrong sign: heat flows from high to low, "
    "p_i + r(p_(i−1) − 2p_i + p_(i+1)).":
        lambda p, D_coef, dt, dx: _ftcs_variant(p, D_coef, dt, dx, r=-D_coef * dt / dx**2),
}


def check_ftcs_step(ftcs_step: Callable) -> None:
    """Check ``ftcs_step(p, D_coef, dt, dx)`` against one step of ``physics.solve_heat_1d``.

    p_i ← p_i + r(p_{i−1} − 2p_i + p_{i+1}), r = DΔt/Δx², reflecting walls (ghost cell = edge
    value), any leading batch shape; the step must raise ``ValueError`` when r > 1/2 and work at
    r = 1/2 exactly {cite}`leveque2007`.
    """
    g = torch.Generator().manual_seed(3)
    cases = []
    # Δx exact in binary, so the second case has r = 1/2 exactly (stable, must not be refused)
    for shape, D, dx, r in [((40,), 0.5, 0.125, 0.4), ((3, 25), 2.0, 0.0625, 0.5),
                            ((17,), 0.1, 0.25, 0.25)]:
        p = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5 * torch.linspace(
            0, 1, shape[-1], dtype=torch.float64) ** 2  # not symmetric: walls must differ
        cases.append(dict(p=p, D_coef=D, dt=r * dx**2 / D, dx=dx))
    hints = {"value": "one step is p + r·(left neighbour − 2·p + right neighbour) with "
                      "r = D·Δt/Δx², the neighbours of the edge points being the edge points "
                      "themselves (reflecting walls).",
             "shape": "return the new density with the shape of p (one value per grid point).",
             "exception": "r = D·Δt/Δx² = 1/2 is still stable: refuse only r > 1/2."}
    p, D, dx = cases[0]["p"], 0.5, 0.125
    try:
        out = ftcs_step(p.clone(), D, 0.6 * dx**2 / D, dx)
    except ValueError:
        out = "refused"
    except NotImplementedError as exc:
        raise ExerciseError("ftcs_step is not written yet: replace the `# your code here` "
                            "stub.") from exc
    except Exception as exc:
        raise ExerciseError(f"ftcs_step raised {type(exc).__name__}: {exc} for an unstable step; "
                            "refuse it with ValueError (it names the bound).") from exc
    if isinstance(out, str):  # refused, as it must be
        check_function(ftcs_step, _ftcs_ref, cases, name="ftcs_step", hints=hints, atol=1e-12,
                       rtol=1e-10,
                       mistakes=lambda **c: {why: f(**c) for why, f in _FTCS_MISTAKES.items()})
        return
    grew = ("" if out is None else
            f" (it returned max |p| = {float(torch.as_tensor(out).abs().max()):.3g})")
    raise ExerciseError(
        "ftcs_step accepted an unstable step, r = D·Δt/Δx² = 0.6 > 1/2" + grew + ".\nHint: a "
        "zig-zag is multiplied by 1 − 4r each step, |1 − 4r| > 1 once r > 1/2: raise ValueError "
        "naming the bound dt <= Δx²/(2D).")
