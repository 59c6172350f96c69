"""Checkers for chapter 3 — The forward process.

| exercise         | signature                              | reference                                        |
|------------------|----------------------------------------|--------------------------------------------------|
| closed-form q    | ``q_sample(x0, alpha_bar, eps)``        | sqrt(ᾱ)·x_0 + sqrt(1 − ᾱ)·ε                      |
| cosine schedule  | ``cosine_alpha_bar(T, s=0.008)``        | ᾱ_t = f(t)/f(0), f(t) = cos²(π/2·(t/T + s)/(1 + s)), t = 1..T |
| EM stationary var| ``em_stationary_variance(beta)``        | fixed point of v = (1 − β/2)² v + β: 1/(1 − β/4)  |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .core import check_with_mistakes

__all__ = ["check_q_sample", "check_cosine_alpha_bar", "check_em_stationary_variance",
           "em_stationary_variance_reference"]


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
    gen = torch.Generator().manual_seed(3)
    cases = [dict(x0=torch.randn(5, 2, generator=gen, dtype=torch.float64),
                  alpha_bar=ab, eps=torch.randn(5, 2, generator=gen, dtype=torch.float64))
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


def em_stationary_variance_reference(beta):
    """Stationary variance of x ← (1 − β/2)x + sqrt(β)ε: v = (1 − β/2)²v + β, so v = 1/(1 − β/4)."""
    return 1 / (1 - beta / 4)


_EM_MISTAKES = {
    "1 is the stationary variance of the *exact* chain sqrt(1 − β)·x + sqrt(β)·ε; the Euler–"
    "Maruyama decay 1 − β/2 is larger than sqrt(1 − β), so the variance settles above 1.":
        lambda beta: 1.0 + 0 * beta,
    "1 + β/4 is only the first-order term: solve the fixed point v = (1 − β/2)²·v + β exactly.":
        lambda beta: 1 + beta / 4,
    "the decay enters squared: a variance is multiplied by (1 − β/2)², not by (1 − β/2).":
        lambda beta: beta / (1 - (1 - beta / 2)) + 0 * beta,
    "that is the variance after one step from variance 1, (1 − β/2)² + β; the stationary variance "
    "is the fixed point v = (1 − β/2)²·v + β.": lambda beta: (1 - beta / 2) ** 2 + beta,
}


_EM_HINT = ("if x has variance v and ε is independent, (1 − β/2)x + sqrt(β)ε has variance "
            "(1 − β/2)²v + β; stationary means that equals v.")


def check_em_stationary_variance(em_stationary_variance: Callable) -> None:
    """Check ``em_stationary_variance(beta)`` for floats and a tensor of β in (0, 4)."""
    cases = [dict(beta=b) for b in (0.02, 0.5, 1.0, 1.9)]
    cases.append(dict(beta=torch.tensor([0.1, 0.8, 3.0], dtype=torch.float64)))
    check_with_mistakes(
        em_stationary_variance, em_stationary_variance_reference, cases,
        name="em_stationary_variance", mistakes=_EM_MISTAKES, atol=1e-9, rtol=1e-7,
        hints={"value": _EM_HINT, "scale": _EM_HINT,
               "shape": "work elementwise, so a tensor of betas gives a tensor of variances."})
