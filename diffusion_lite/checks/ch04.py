"""Checkers for chapter 4, "Scores and denoisers".

| exercise | learner writes | reference |
|---|---|---|
| ``check_gaussian_score`` | ``score_gaussian(x, mean, var, sigma)`` | -(x - mean) / (var + sigma^2) |
| ``check_langevin_step`` | ``langevin_step(x, score, step_size, generator=None)`` | x + δ s(x) + sqrt(2δ) z |
| ``check_ula_stationary_variance`` | ``ula_stationary_variance(var, step_size)`` | var / (1 − δ/(2 var)) |

The Langevin step is random. Its checker replays the generator: the answer must equal the step
with the prescribed draw z = ``torch.randn(x.shape, generator=generator, dtype=x.dtype)``. When it
does not, the noise the answer added is recovered from many particles started at one point and
diagnosed: wrong drift (mean), no noise, one draw shared by all particles or by all coordinates,
the wrong variance, the wrong law (uniform, ±1: Kolmogorov–Smirnov against N(0, 1)), a generator
that is ignored, or a correct law drawn some other way. δ is the step size (code ``step_size``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .core import ExerciseError, check_function, check_with_mistakes, to_numpy

__all__ = ["check_gaussian_score", "check_langevin_step", "score_gaussian_reference",
           "langevin_step_reference", "check_ula_stationary_variance",
           "ula_stationary_variance_reference"]


def score_gaussian_reference(x: torch.Tensor, mean: torch.Tensor, var: float,
                             sigma: float) -> torch.Tensor:
    """Score of N(mean, var I) convolved with N(0, sigma^2 I): -(x - mean) / (var + sigma^2)."""
    return -(x - mean) / (var + sigma**2)


def check_gaussian_score(score_gaussian: Callable) -> None:
    """Check ``score_gaussian(x, mean, var, sigma)`` on several points, means and noise levels."""
    gen = torch.Generator().manual_seed(4)
    cases = [dict(x=torch.randn(6, 2, generator=gen, dtype=torch.float64) * 2,
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
    """One unadjusted Langevin step x + δ s(x) + sqrt(2δ) z, z ~ N(0, I) {cite}`roberts1996`."""
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


_MEAN = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)


def _score(x):  # standard Gaussian around _MEAN
    return -(x - _MEAN)


def _case(step_size: float, seed: int, n: int = 20_000) -> dict:
    start = torch.tensor([3.0, 0.5, -1.0], dtype=torch.float64)
    return dict(x=start.expand(n, 3).clone(), score=_score, step_size=step_size,
                generator=torch.Generator().manual_seed(seed))


def _ks_normal(z: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance between the values ``z`` and N(0, 1)."""
    z = np.sort(z.ravel())
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    i = np.arange(1, z.size + 1)
    return float(max(np.max(i / z.size - cdf), np.max(cdf - (i - 1) / z.size)))


def _diagnose_noise(g: np.ndarray, case: dict, context: str) -> str:
    """Why the answer ``g`` is not the step with the prescribed draw: a learner-readable diagnosis."""
    x, tau = case["x"].numpy(), case["step_size"]
    drifted = x + tau * _score(case["x"]).numpy()  # (n, d) the step without noise
    n, d = g.shape
    if np.abs(g - g[:1]).max() < 1e-12:  # every particle landed on the same point
        if np.abs(g - drifted).max() < 1e-9:
            return (f"all particles moved to the same place {context}: the step has no noise. "
                    "Hint: add sqrt(2 * step_size) * z with z = torch.randn(x.shape, "
                    "generator=generator, dtype=x.dtype).")
        return (f"every particle received the same noise {context}: all started at one point and "
                "all landed on one point. Draw one independent z per particle and coordinate, "
                "z = torch.randn(x.shape, ...), not one z for the batch.")
    if abs(g.mean(0) - drifted.mean(0)).max() > 6 * math.sqrt(2 * tau / n):
        return (f"the particles' mean moved to {g.mean(0).round(3)}, expected about "
                f"{drifted.mean(0).round(3)} {context}. Hint: the drift is + step_size * "
                "score(x) (uphill, towards higher density), with no extra factor.")
    z = (g - drifted) / math.sqrt(2 * tau)  # (n, d) the noise the answer added, in units of z
    corr = np.corrcoef(z.T)[np.triu_indices(d, 1)]
    if np.abs(corr).max() > 8 / math.sqrt(n):
        return (f"the noise is shared across coordinates {context} (correlation "
                f"{np.abs(corr).max():.2f} between coordinates): z must be N(0, I), one "
                "independent draw per coordinate, z = torch.randn(x.shape, ...).")
    ratio = float(z.var(0).mean())
    if abs(ratio - 1) > 6 * math.sqrt(2 / (n * d)) + 0.01:
        return (f"the spread of the noise is off by a factor of {ratio:.3g} in variance {context}. "
                "Hint: in x + δ s(x) + sqrt(2δ) z the noise standard deviation is "
                "sqrt(2 * step_size), so its variance is 2 * step_size.")
    ks = _ks_normal(z)
    if ks > math.sqrt(-math.log(1e-7) / 2) / math.sqrt(n * d):
        return (f"the noise has the right variance but not a Gaussian law {context} "
                f"(Kolmogorov–Smirnov distance {ks:.3f} to N(0, 1)): uniform or ±1 noise makes "
                "a different Markov chain. Use z = torch.randn(x.shape, ...).")
    return ""


def _replay(langevin_step: Callable, case: dict) -> tuple[np.ndarray, np.ndarray]:
    """The answer on two copies of the same generator: equal iff the step uses ``generator``."""
    outs = []
    for _ in range(2):
        c = dict(case, x=case["x"].clone(), generator=torch.Generator().manual_seed(99))
        outs.append(to_numpy(langevin_step(**c), "langevin_step"))
    return outs[0], outs[1]


def check_langevin_step(langevin_step: Callable) -> None:
    """Check ``langevin_step(x, score, step_size, generator=None)`` against the replayed draw.

    Particles start at one point in 3D. The answer must equal x + δ s(x) + sqrt(2δ) z with the
    prescribed draw z = ``torch.randn(x.shape, generator=generator, dtype=x.dtype)``; otherwise
    the checker names what is wrong with the noise it added (see the module docstring).
    """
    cases = [_case(tau, 10 + i) for i, tau in enumerate((0.05, 0.2))]
    it = iter(cases)

    def compare(got, want, *, context):
        case = next(it)
        g, w = to_numpy(got, "langevin_step"), to_numpy(want, "the reference")
        if g.shape != w.shape:
            raise ExerciseError(f"langevin_step returned shape {g.shape} {context}, expected "
                                f"{w.shape}: one new position per particle.")
        if not np.all(np.isfinite(g)):
            raise ExerciseError(f"langevin_step returned NaN or infinite values {context}.")
        if np.allclose(g, w, rtol=1e-9, atol=1e-9):
            return
        why = _diagnose_noise(g, case, context)
        if why:
            raise ExerciseError(why)
        first, second = _replay(langevin_step, case)
        if not np.array_equal(first, second):
            raise ExerciseError(
                f"two calls with generators in the same state gave different steps {context}: "
                "the noise does not come from `generator`. Draw it with torch.randn(x.shape, "
                "generator=generator, dtype=x.dtype), so a seeded run can be repeated.")
        raise ExerciseError(
            f"the noise has the right law but is not the prescribed draw {context}. Draw it "
            "exactly as z = torch.randn(x.shape, generator=generator, dtype=x.dtype) (in x's "
            "dtype, one call, before anything else random), so that the checker can replay it.")

    check_function(langevin_step, langevin_step_reference, cases, name="langevin_step",
                   compare=compare, hints={"shape": "return the new positions, same shape as x."})


def ula_stationary_variance_reference(var, step_size):
    """Stationary variance of ULA on N(m, var): v = (1 − δ/var)² v + 2δ, so v = var/(1 − δ/(2 var))."""
    return var / (1 - step_size / (2 * var))


_ULA_MISTAKES = {
    "var is the variance of the target, which only the continuous-time Langevin equation keeps; "
    "the discrete step adds a bias of order δ. Solve v = (1 − δ/var)²·v + 2δ.":
        lambda var, step_size: var + 0 * step_size,
    "var + δ/2 is only the first-order term in δ: solve the fixed point v = (1 − δ/var)²·v + 2δ "
    "exactly.": lambda var, step_size: var + step_size / 2,
    "the contraction enters squared: a variance is multiplied by (1 − δ/var)², not (1 − δ/var).":
        lambda var, step_size: 2 * step_size / (step_size / var) + 0 * var,
    "the noise sqrt(2δ)·z adds variance 2δ, not δ.":
        lambda var, step_size: step_size / (1 - (1 - step_size / var) ** 2),
}


def check_ula_stationary_variance(ula_stationary_variance: Callable) -> None:
    """Check ``ula_stationary_variance(var, step_size)`` for stable steps 0 < δ < 2 var."""
    cases = [dict(var=v, step_size=s) for v, s in
             ((1.0, 0.01), (0.0225, 0.002), (1.0, 0.5), (2.0, 3.0), (0.5, 0.9))]
    check_with_mistakes(
        ula_stationary_variance, ula_stationary_variance_reference, cases,
        name="ula_stationary_variance", mistakes=_ULA_MISTAKES, atol=1e-10, rtol=1e-8,
        hints={key: "for the target N(m, var) the score is −(x − m)/var, so one step maps a "
                    "variance v to (1 − δ/var)² v + 2δ; stationary means that equals v."
               for key in ("value", "scale")})
