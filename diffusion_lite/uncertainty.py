"""Uncertainty of a metric: a two-sample permutation test, intervals over seeds (chapters 7–8).

A metric computed on finite sets is a random number. :mod:`~diffusion_lite.metrics` gives it a
bootstrap interval and a noise floor; this module answers the next questions: is a value larger
than the floor by more than chance (:func:`permutation_test`), how large is the average of a
quantity over independent seeds (:func:`mean_interval`), how precisely does a bootstrap with B
resamples know its own standard error (:func:`bootstrap_se_error`), and how to draw a real
reference set with given class counts (:func:`stratified_indices`).

| code name | symbol | meaning |
|---|---|---|
| ``statistic`` | T | the metric used as a test statistic, T(a, b) |
| ``n_permutations`` | B | relabellings of the pooled set |
| ``p_value`` | p | P(T ≥ T_obs) under H0 (one distribution) |
| ``values`` | v_1 … v_n | one value per seed |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from .metrics import Estimate, _pair
from .utils import check_int

__all__ = ["PermutationTest", "permutation_test", "bootstrap_se_error", "mean_interval",
           "stratified_indices", "median_interval"]


class PermutationTest(NamedTuple):
    statistic: float  # T(a, b) on the observed split
    p_value: float  # P(T ≥ T_obs) under H0: a and b come from one distribution
    n_permutations: int  # relabellings used (all of them when ``exact``)
    exact: bool  # True when every split of the pooled set was enumerated


def _splits(n_total: int, n_a: int, n_permutations: int,
            generator: torch.Generator | None) -> tuple[list[torch.Tensor], bool]:
    """Index sets of the first group: every split when there are few, else random ones."""
    from itertools import combinations
    from math import comb

    if comb(n_total, n_a) <= n_permutations:
        return [torch.tensor(c) for c in combinations(range(n_total), n_a)], True
    return [torch.randperm(n_total, generator=generator)[:n_a] for _ in range(n_permutations)], False


def permutation_test(statistic: Callable[[torch.Tensor, torch.Tensor], float], a, b, *,
                     n_permutations: int = 999,
                     generator: torch.Generator | None = None) -> PermutationTest:
    """Two-sample permutation test of H0 "a and b are draws from one distribution" against a large T.

    Pool the n + m samples, split them at random into groups of n and m, and recompute T; under H0
    every split is equally likely, so the observed T is one draw among them {cite}`good2005`.
    With B random splits p = (1 + #{T_b ≥ T_obs}) / (B + 1), which is never 0 and keeps the test's
    size at most α; when C(n+m, n) ≤ B every split is enumerated (the observed one included) and
    p = #{T_s ≥ T_obs} / C(n+m, n) exactly — both as ``scipy.stats.permutation_test``. It tests
    exchangeability, not "the metric equals its noise floor": a small p says the two sets differ
    in some way T can see.
    """
    x, y = _pair(a, b, min_n=1)
    check_int(n_permutations, "n_permutations", minimum=1)
    observed = float(statistic(x, y))
    if not np.isfinite(observed):
        raise ValueError(f"the statistic is {observed} on the observed sets; it must be finite")
    pooled, n = torch.cat([x, y]), len(x)
    first_groups, exact = _splits(len(pooled), n, n_permutations, generator)
    values = []
    for first in first_groups:
        mask = torch.zeros(len(pooled), dtype=torch.bool)
        mask[first] = True
        values.append(float(statistic(pooled[mask], pooled[~mask])))
    # A relative tolerance so that splits equal to the observed one up to rounding count as ≥.
    at_least = int(np.sum(np.asarray(values) >= observed - 1e-12 * max(1.0, abs(observed))))
    p = at_least / len(values) if exact else (1 + at_least) / (len(values) + 1)
    return PermutationTest(observed, p, len(values), exact)


def bootstrap_se_error(n_boot: int) -> float:
    """Relative standard error of a bootstrap standard error from ``n_boot`` resamples.

    For roughly normal replicates SD(ŝ)/s ≈ 1/√(2(B − 1)) {cite}`efron1993`: B = 200 gives 5%, so
    an interval's half-width is known to about ±5% of itself.
    """
    check_int(n_boot, "n_boot", minimum=2)
    return 1.0 / float(np.sqrt(2 * (n_boot - 1)))


def mean_interval(values, *, level: float = 0.95) -> Estimate:
    """Mean of independent repeats (one value per seed) with Student's t interval.

    mean ± t_{n−1} · s/√n, s the sample standard deviation: the interval for the *expected* value
    of a random quantity (a metric over seeds), not for one run. Needs at least 2 values.
    """
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=float).ravel()
    if v.size < 2 or not np.isfinite(v).all():
        raise ValueError(f"need at least 2 finite values (one per seed), got {v.tolist()}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    mean, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))
    half = float(student_t.ppf((1 + level) / 2, v.size - 1)) * se
    return Estimate(mean, mean - half, mean + half, se, level)


def stratified_indices(labels: torch.Tensor, counts: torch.Tensor, *,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Random indices into ``labels`` holding ``counts[c]`` items of each class c (no repeats).

    A noise floor must compare sets with the same class proportions as the reference: the
    Fréchet distance is sensitive to them.
    """
    labels, counts = torch.as_tensor(labels), torch.as_tensor(counts)
    picks = []
    for c, k in enumerate(counts.tolist()):
        pool = torch.nonzero(labels == c).squeeze(1)
        if k > len(pool):
            raise ValueError(f"class {c} has {len(pool)} items, {k} requested")
        picks.append(pool[torch.randperm(len(pool), generator=generator)[:k]])
    return torch.cat(picks)


def median_interval(values, *, level: float = 0.95) -> Estimate:
    """Sample median with its distribution-free interval from order statistics.

    The number of values below the true median is Binomial(n, ½), so [v_(j), v_(k)] with j, k
    the binomial quantiles covers it with probability ≥ ``level`` {cite}`efron1993`; ``se`` is
    reported as NaN (there is none).
    """
    from scipy.stats import binom

    v = np.sort(np.asarray(values, dtype=float).ravel())
    if v.size < 6 or not np.isfinite(v).all():
        raise ValueError(f"need at least 6 finite values for a median interval, got {v.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a = (1 - level) / 2
    j = int(binom.ppf(a, v.size, 0.5))  # P(B < j) <= a  →  v[j - 1] is the lower end (1-based j)
    k = int(binom.ppf(1 - a, v.size, 0.5))
    low, high = v[max(j - 1, 0)], v[min(k, v.size - 1)]
    return Estimate(float(np.median(v)), float(low), float(high), float("nan"), level)
