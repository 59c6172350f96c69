"""Checkers for chapter 14, "Functions, time series and sound".

| exercise | learner writes | reference |
|---|---|---|
| ``check_gp_noise`` | ``gp_noise(K, n, generator)`` | rows L z, L Lᵀ = K, z = randn(n, T, generator) |
| ``check_coverage`` | ``coverage(samples, y, level)`` | share of y in [q_{α/2}, q_{1−α/2}] (torch.quantile) |

``check_gp_noise`` recomputes the usual slips with the same z (the transposed factor Lᵀz, which has
the right shape, mean and per-point scale on a stationary kernel; K z; elementwise √K; ignoring the
correlations) and names the one an answer matches; any other answer must have empirical covariance
K within a stated tolerance (so a symmetric square root K^{1/2} z passes). ``check_coverage``
names the 1 − 2α interval, a one-sided interval, tails of level/2, the index-without-interpolation
quantile and a Gaussian interval on skewed samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..signals.gp import irregular_grid, kernel_matrix
from .core import ExerciseError, check_function, to_numpy

__all__ = ["check_gp_noise", "check_coverage", "gp_noise_reference", "coverage_reference"]

F64 = torch.float64


def gp_noise_reference(K: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n draws of N(0, K) as rows: x = L z with L = cholesky(K), z = randn(n, T, generator)."""
    L = torch.linalg.cholesky(K)
    z = torch.randn(n, K.shape[0], generator=generator, dtype=K.dtype)  # (n, T)
    return z @ L.T  # row i is (L z_i)ᵀ


def _gp_slips(K, n, generator) -> dict[str, torch.Tensor]:
    L = torch.linalg.cholesky(K)
    z = torch.randn(n, K.shape[0], generator=generator, dtype=K.dtype)
    return {
        "you used the transposed factor: rows z @ L are Lᵀ z, whose covariance is LᵀL ≠ K. For "
        "rows of shape (n, T), x = L z is written z @ L.T.": z @ L,
        "you multiplied by K itself: the covariance of K z is K², not K. Use the Cholesky factor "
        "L (L Lᵀ = K).": z @ K.T,
        "you took the elementwise square root of K; a matrix square root is L with L Lᵀ = K "
        "(torch.linalg.cholesky).": z @ K.sqrt().T,
        "your draws ignore the correlations (only the diagonal of K): multiply z by the Cholesky "
        "factor L, not by √diag(K).": z * K.diagonal().sqrt(),
        "you drew z after building something else from the generator, or with another shape: "
        "draw z = torch.randn(n, T, generator=generator, dtype=K.dtype) once.": None,
    }


def _gp_cases() -> list[dict]:
    out = []
    for i, (kernel, length, T) in enumerate([("matern32", 0.3, 8), ("rbf", 0.25, 6),
                                             ("matern12", 0.5, 10)]):
        grid = irregular_grid(T, generator=torch.Generator().manual_seed(10 + i))
        K = kernel_matrix(kernel, grid, length=length, variance=1.0 + i) + 1e-6 * torch.eye(T, dtype=F64)
        out.append({"K": K, "n": 20000, "generator": torch.Generator().manual_seed(i)})
    return out


def check_gp_noise(gp_noise: Callable) -> None:
    """Check ``gp_noise(K, n, generator) -> (n, T)`` draws of N(0, K).

    Tolerance: every entry of the empirical covariance (1/n) XᵀX within 6 standard errors,
    6 √((K_ii K_jj + K_ij²)/n), of K.
    """
    def compare(got, want, *, context):
        x = to_numpy(got, "gp_noise")
        if x.shape != tuple(want.shape):
            raise ExerciseError(f"gp_noise returned shape {x.shape} {context}; expected "
                                f"{tuple(want.shape)}: one draw per row.")
        K = np.asarray(compare.case["K"])
        C = x.T @ x / x.shape[0]
        se = np.sqrt((np.outer(np.diag(K), np.diag(K)) + K**2) / x.shape[0])
        bad = np.abs(C - K) > 6 * se
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ExerciseError(
                f"the empirical covariance of your draws is not K {context}: entry ({i}, {j}) is "
                f"{C[i, j]:.3f}, K has {K[i, j]:.3f} (allowed ±{6 * se[i, j]:.3f}). Each row "
                "must be L z with L Lᵀ = K.")

    def reference(**case):
        compare.case = case
        return gp_noise_reference(**case)

    check_function(gp_noise, reference, _gp_cases(), name="gp_noise", compare=compare,
                   mistakes=_gp_slips)


# ---------------------------------------------------------------------------------------------
def coverage_reference(samples: torch.Tensor, y: torch.Tensor, level: float = 0.9) -> float:
    """Share of y inside [q_{α/2}, q_{1−α/2}] of each target's samples (S, N), α = 1 − level."""
    alpha = 1 - level
    q = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=samples.dtype)
    lo, hi = torch.quantile(samples, q, dim=0)  # (N,), (N,)
    return float(((y >= lo) & (y <= hi)).double().mean())


def _inside(y, lo, hi) -> float:
    return float(((y >= lo) & (y <= hi)).double().mean())


def _coverage_slips(samples, y, level) -> dict[str, float | None]:
    a = 1 - level
    qs = lambda *p: torch.quantile(samples, torch.tensor(p, dtype=samples.dtype), dim=0)  # noqa
    S = samples.shape[0]
    srt = samples.sort(dim=0).values
    idx = lambda p: srt[min(S - 1, int(p * S))]  # noqa: E731
    mean, std = samples.mean(0), samples.std(0)
    z = math.sqrt(2) * torch.erfinv(torch.tensor(level, dtype=F64)).item()
    lo80, hi80 = qs(a, 1 - a)
    half_lo, half_hi = qs(level / 2, 1 - level / 2)
    return {
        f"your interval is [q_α, q_(1−α)], a {1 - 2 * a:.0%} interval: a central {level:.0%} "
        f"interval leaves α/2 = {a / 2:.3g} in each tail.": _inside(y, lo80, hi80),
        "you counted only one side (y ≤ upper quantile): the interval has a lower end too.":
            float((y <= qs(1 - a / 2)[0]).double().mean()),
        f"your tails are level/2 = {level / 2:.3g}: the interval's ends are the quantiles α/2 and "
        "1 − α/2 with α = 1 − level.": _inside(y, half_lo, half_hi),
        "you indexed the sorted samples at int(q·S): that is not torch.quantile's quantile (it "
        "interpolates at position q·(S − 1)); with few samples the two intervals differ.":
            _inside(y, idx(a / 2), idx(1 - a / 2)),
        "you used mean ± z·std, a Gaussian interval: the samples here are skewed; take the "
        "empirical quantiles of the samples.": _inside(y, mean - z * std, mean + z * std),
    }


def _coverage_cases() -> list[dict]:
    gen = torch.Generator().manual_seed(14)
    N = 2000
    y = torch.randn(N, generator=gen, dtype=F64)
    return [
        {"samples": torch.randn(400, N, generator=gen, dtype=F64), "y": y, "level": 0.9},
        {"samples": 0.6 * torch.randn(19, N, generator=gen, dtype=F64) + 0.3, "y": y,
         "level": 0.9},
        {"samples": torch.empty(300, N, dtype=F64).exponential_(generator=gen) - 1.0,
         "y": torch.empty(N, dtype=F64).exponential_(generator=gen) - 1.0, "level": 0.8},
        {"samples": 1.5 * torch.randn(50, N, generator=gen, dtype=F64), "y": y, "level": 0.5},
    ]


def check_coverage(coverage: Callable) -> None:
    """Check ``coverage(samples, y, level) -> float`` against the reference to 1e-9."""
    def compare(got, want, *, context):
        g = to_numpy(got, "coverage")
        if g.size != 1:
            raise ExerciseError(f"coverage returned an array of shape {g.shape} {context}: "
                                "return one number, the share of all targets inside.")
        if abs(float(g) - want) > 1e-9:
            raise ExerciseError(f"coverage is {float(g):.4f} {context}, expected {want:.4f}. "
                                "Take torch.quantile of each target's samples over dim=0.")

    check_function(coverage, coverage_reference, _coverage_cases(), name="coverage",
                   compare=compare, mistakes=_coverage_slips, atol=1e-9, rtol=1e-9)
