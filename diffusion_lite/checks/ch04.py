"""Checkers for chapter 4, "Scores and denoisers".

| exercise | learner writes | reference |
|---|---|---|
| ``check_gaussian_score`` | ``score_gaussian(x, mean, var, sigma)`` | -(x - mean) / (var + sigma^2) |
| ``check_langevin_step`` | ``langevin_step(x, score, step_size, generator=None)`` | x + tau s(x) + sqrt(2 tau) z |

The Langevin step is random, so its checker compares statistics of many particles started at the
same point: their mean must move by tau * s(x) and their variance must be 2 * tau per coordinate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .core import ExerciseError, check_function, to_numpy

__all__ = ["check_gaussian_score", "check_langevin_step", "score_gaussian_reference",
           "langevin_step_reference"]


def score_gaussian_reference(x: torch.Tensor, mean: torch.Tensor, var: float,
                             sigma: float) -> torch.Tensor:
    """Score of N(mean, var I) convolved with N(0, sigma^2 I): -(x - mean) / (var + sigma^2)."""
    return -(x - mean) / (var + sigma**2)


def check_gaussian_score(score_gaussian: Callable) -> None:
    """Check ``score_gaussian(x, mean, var, sigma)`` on several points, means and noise levels."""
    g = torch.Generator().manual_seed(4)
    cases = [dict(x=torch.randn(6, 2, generator=g, dtype=torch.float64) * 2,
                  mean=torch.tensor([1.0, -0.5], dtype=torch.float64), var=var, sigma=sigma)
             for var, sigma in ((0.5, 0.0), (0.5, 1.0), (2.0, 0.3), (0.1, 3.0))]
    hints = {
        "sign": "the score points uphill, towards higher density: from x back towards the mean.",
        "scale": "noise adds variance: x_sigma = x0 + sigma*eps has variance var + sigma**2 (not "
                 "var, not a standard deviation).",
        "value": "for N(m, v I) the log density is -|x - m|^2 / (2 v) + const; differentiate it "
                 "with v = var + sigma**2.",
        "shape": "return one score vector per point, shape (B, d) like x.",
    }
    check_function(score_gaussian, score_gaussian_reference, cases, name="score_gaussian",
                   atol=1e-8, rtol=1e-6, hints=hints)


def langevin_step_reference(x: torch.Tensor, score: Callable, step_size: float,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """One unadjusted Langevin step x + tau s(x) + sqrt(2 tau) z, z ~ N(0, I) {cite}`roberts1996`."""
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


def _langevin_cases(n: int = 20_000):
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)

    def score(x):  # standard Gaussian around ``mean``
        return -(x - mean)

    start = torch.tensor([3.0, 0.5], dtype=torch.float64)
    return [dict(x=start.expand(n, 2).clone(), score=score, step_size=tau,
                 generator=torch.Generator().manual_seed(10 + i))
            for i, tau in enumerate((0.05, 0.2))]


def check_langevin_step(langevin_step: Callable) -> None:
    """Check ``langevin_step(x, score, step_size, generator=None)`` by the moments of one step.

    All particles start at the same x, so after one step their mean is x + tau s(x) and their
    variance per coordinate is 2 tau. Tolerances are 6 standard errors of those estimates.
    """
    def compare(got, want, *, context):
        g = to_numpy(got, "langevin_step")
        w = to_numpy(want, "the reference")
        if g.shape != w.shape:
            raise ExerciseError(f"langevin_step returned shape {g.shape} {context}, expected "
                                f"{w.shape}: one new position per particle.")
        if not (g == g).all() or not abs(g).max() < float("inf"):
            raise ExerciseError(f"langevin_step returned NaN or infinite values {context}.")
        n = g.shape[0]
        var_want = w.var(0).mean()  # close to 2 tau
        se_mean = math.sqrt(var_want / n)
        mean_gap = abs(g.mean(0) - w.mean(0)).max()
        var_ratio = g.var(0).mean() / var_want
        if var_ratio < 1e-6:
            raise ExerciseError(f"all particles moved to the same place {context}: the step has "
                                "no noise. Hint: add sqrt(2 * step_size) * z with z ~ N(0, I) "
                                "(torch.randn(x.shape, generator=generator)).")
        if mean_gap > 6 * se_mean:
            start = w.mean(0)  # compare the drift direction with the reference's
            raise ExerciseError(
                f"the particles' mean moved to {g.mean(0).round(3)}, expected about "
                f"{start.round(3)} {context}. Hint: the drift is + step_size * score(x) (uphill, "
                "towards higher density), with no extra factor.")
        if abs(var_ratio - 1) > 6 * math.sqrt(2 / n) + 0.02:
            raise ExerciseError(
                f"the spread of the noise is off by a factor of {var_ratio:.3g} in variance "
                f"{context}. Hint: in x + tau*s(x) + sqrt(2*tau)*z the noise standard deviation "
                "is sqrt(2 * step_size), so its variance is 2 * step_size.")

    check_function(langevin_step, langevin_step_reference, _langevin_cases(),
                   name="langevin_step", compare=compare,
                   hints={"shape": "return the new positions, same shape as x."})
