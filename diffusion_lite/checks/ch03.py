"""Checkers for chapter 3 — The forward process.

| exercise         | signature                              | reference                                        |
|------------------|----------------------------------------|--------------------------------------------------|
| closed-form q    | ``q_sample(x0, alpha_bar, eps)``        | sqrt(ᾱ)·x_0 + sqrt(1 − ᾱ)·ε                      |
| cosine schedule  | ``cosine_alpha_bar(T, s=0.008)``        | ᾱ_t = f(t)/f(0), f(t) = cos²(π/2·(t/T + s)/(1 + s)), t = 1..T |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .ch02 import check_with_mistakes

__all__ = ["check_q_sample", "check_cosine_alpha_bar"]


def _q_ref(x0, alpha_bar, eps):
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * eps


_Q_MISTAKES = {
    "the coefficients are ᾱ and 1 − ᾱ; they multiply *standard deviations*, so take square "
    "roots: sqrt(ᾱ)·x_0 + sqrt(1 − ᾱ)·ε.":
        lambda x0, alpha_bar, eps: alpha_bar * x0 + (1 - alpha_bar) * eps,
    "the two coefficients are swapped: the data keeps sqrt(ᾱ) (ᾱ → 1 means no noise).":
        lambda x0, alpha_bar, eps: math.sqrt(1 - alpha_bar) * x0 + math.sqrt(alpha_bar) * eps,
    "x_0 is not shrunk: that is the variance-exploding view x_0 + sqrt(1 − ᾱ)·ε; the VP view "
    "scales the data by sqrt(ᾱ).":
        lambda x0, alpha_bar, eps: x0 + math.sqrt(1 - alpha_bar) * eps,
}


def check_q_sample(q_sample: Callable) -> None:
    """Check ``q_sample(x0, alpha_bar, eps)`` = sqrt(ᾱ)x_0 + sqrt(1 − ᾱ)ε {cite}`ho2020`."""
    g = torch.Generator().manual_seed(3)
    cases = [dict(x0=torch.randn(5, 2, generator=g, dtype=torch.float64),
                  alpha_bar=ab, eps=torch.randn(5, 2, generator=g, dtype=torch.float64))
             for ab in (0.9, 0.5, 0.02)]
    check_with_mistakes(
        q_sample, _q_ref, cases, name="q_sample", mistakes=_Q_MISTAKES,
        hints={"value": "the variances ᾱ and 1 − ᾱ add up to 1 for unit-variance data.",
               "shape": "return a tensor shaped like x0."})


def _cosine_ref(T, s=0.008):
    t = torch.arange(0, T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    return f[1:] / f[0]


def _cos_unsquared(T, s=0.008):
    t = torch.arange(0, T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2)
    return f[1:] / f[0]


def _cos_unnormalised(T, s=0.008):
    t = torch.arange(1, T + 1, dtype=torch.float64)
    return torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2


def _cos_from_zero(T, s=0.008):
    t = torch.arange(0, T, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    return f / f[0]


_COS_MISTAKES = {
    "the cosine is not squared: ᾱ follows cos², so that sqrt(ᾱ) (the signal scale) is the cosine.":
        _cos_unsquared,
    "ᾱ is not divided by f(0): without it ᾱ_0 ≠ 1, so even step 0 would add noise.":
        _cos_unnormalised,
    "the steps run t = 0..T−1; the schedule lists ᾱ_1..ᾱ_T (ᾱ_0 = 1 is implicit), so the last "
    "entry must be f(T)/f(0).": _cos_from_zero,
}


def check_cosine_alpha_bar(cosine_alpha_bar: Callable) -> None:
    """Check ``cosine_alpha_bar(T, s)`` returns ᾱ_1..ᾱ_T of the cosine schedule {cite}`nichol2021`."""
    cases = [dict(T=T, s=s) for T, s in [(10, 0.008), (100, 0.008), (37, 0.05)]]
    check_with_mistakes(
        cosine_alpha_bar, _cosine_ref, cases, name="cosine_alpha_bar", mistakes=_COS_MISTAKES,
        hints={"shape": "return T values, one per step t = 1..T.",
               "value": "f(t) = cos²(π/2 · (t/T + s)/(1 + s)) and ᾱ_t = f(t)/f(0)."})
