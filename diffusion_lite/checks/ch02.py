"""Checkers for chapter 2 — Heat, drift, and forgetting.

Each checker first compares the learner's function with the reference on several inputs
(:func:`~diffusion_lite.checks.core.check_function`); if they differ, it also tries the typical
mistakes listed for that exercise and, when one reproduces the learner's output, names it.

| exercise            | signature                                   | reference                                  |
|---------------------|---------------------------------------------|--------------------------------------------|
| Euler–Maruyama step | ``em_step(x, h, theta, D_coef, z)``          | x − θ·x·h + sqrt(2·D·h)·z                  |
| OU variance         | ``ou_variance(var0, t, theta, D_coef)``      | e^{−2θt}·v_0 + (D/θ)(1 − e^{−2θt})          |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .core import _clone, check_function, name_mistake

__all__ = ["check_em_step", "check_ou_variance", "match_mistake", "check_with_mistakes"]


def match_mistake(candidate: Callable, cases: Sequence[Mapping[str, Any]],
                  mistakes: Mapping[str, Callable]) -> str | None:
    """Name the first typical mistake whose outputs equal the candidate's on every case, if any."""
    try:
        got = [candidate(**{k: _clone(v) for k, v in c.items()}) for c in cases]
    except Exception:  # the plain diagnosis already reported the crash
        return None
    for explanation, wrong in mistakes.items():
        # want=nan: there is no reference to exclude here, only the mistake to match
        if all(name_mistake(g, float("nan"), {explanation: wrong(**c)}) for g, c in zip(got, cases)):
            return explanation
    return None


def check_with_mistakes(candidate: Callable, reference: Callable, cases: list, *, name: str,
                        hints: Mapping[str, str], mistakes: Mapping[str, Callable]) -> None:
    """:func:`check_function` naming the typical mistake (``{diagnosis: wrong(**case)}``)."""
    check_function(candidate, reference, cases, name=name, hints=hints,
                   mistakes=lambda **c: {why: wrong(**c) for why, wrong in mistakes.items()})


# --- Exercise: one Euler–Maruyama step of the OU process ------------------------------------

def _em_step_ref(x, h, theta, D_coef, z):
    return x - theta * x * h + (2 * D_coef * h) ** 0.5 * z


_EM_MISTAKES = {
    "the noise is scaled by 2·D·h instead of sqrt(2·D·h): Brownian increments grow like "
    "sqrt(h), not h.": lambda x, h, theta, D_coef, z: x - theta * x * h + 2 * D_coef * h * z,
    "the noise is scaled by sqrt(h) only: the diffusion constant enters as sqrt(2·D).":
        lambda x, h, theta, D_coef, z: x - theta * x * h + h**0.5 * z,
    "the drift has the wrong sign: −θx pulls x back towards 0, so subtract θ·x·h.":
        lambda x, h, theta, D_coef, z: x + theta * x * h + (2 * D_coef * h) ** 0.5 * z,
    "the drift is missing the step size h: the change in one step is −θ·x·h.":
        lambda x, h, theta, D_coef, z: x - theta * x + (2 * D_coef * h) ** 0.5 * z,
}


def _em_cases() -> list[dict]:
    g = torch.Generator().manual_seed(2)
    cases = []
    for h, theta, D in [(0.01, 1.0, 1.0), (0.1, 2.0, 0.5), (0.05, 0.5, 3.0)]:
        x = torch.randn(6, generator=g, dtype=torch.float64) * 2
        z = torch.randn(6, generator=g, dtype=torch.float64)
        cases.append(dict(x=x, h=h, theta=theta, D_coef=D, z=z))
    return cases


def check_em_step(em_step: Callable) -> None:
    """Check ``em_step(x, h, theta, D_coef, z)`` = x − θ·x·h + sqrt(2·D·h)·z {cite}`sarkka2019`."""
    check_with_mistakes(
        em_step, _em_step_ref, _em_cases(), name="em_step", mistakes=_EM_MISTAKES,
        hints={"value": "one step is x + (drift)·h + sqrt(2·D·h)·z with drift −θ·x.",
               "none": "return the new positions."})


# --- Exercise: the OU variance in closed form -----------------------------------------------

def _ou_variance_ref(var0, t, theta, D_coef):
    decay = np.exp(-2 * theta * np.asarray(t, dtype=np.float64))
    return decay * var0 + D_coef / theta * (1 - decay)


_VAR_MISTAKES = {
    "the initial variance decays as e^{−θt}; variances decay at twice the rate of means, "
    "e^{−2θt}, because x_0 enters squared.":
        lambda var0, t, theta, D_coef: np.exp(-theta * np.asarray(t)) * var0
        + D_coef / theta * (1 - np.exp(-2 * theta * np.asarray(t))),
    "the decay uses e^{−θt} everywhere; the variance of e^{−θt}·x_0 is e^{−2θt}·v_0.":
        lambda var0, t, theta, D_coef: np.exp(-theta * np.asarray(t)) * var0
        + D_coef / theta * (1 - np.exp(-theta * np.asarray(t))),
    "the stationary variance is D/θ, not D: balance the noise 2D against the pull 2θ·v.":
        lambda var0, t, theta, D_coef: np.exp(-2 * theta * np.asarray(t)) * var0
        + D_coef * (1 - np.exp(-2 * theta * np.asarray(t))),
    "the initial variance v_0 is missing: the start is forgotten gradually, e^{−2θt}·v_0.":
        lambda var0, t, theta, D_coef: D_coef / theta * (1 - np.exp(-2 * theta * np.asarray(t))),
}


def check_ou_variance(ou_variance: Callable) -> None:
    """Check ``ou_variance(var0, t, theta, D_coef)`` = e^{−2θt}v_0 + (D/θ)(1 − e^{−2θt})
    {cite}`uhlenbeck1930`."""
    t = np.array([0.0, 0.1, 0.5, 1.0, 3.0])
    cases = [dict(var0=v0, t=t, theta=th, D_coef=D)
             for v0, th, D in [(0.2, 1.0, 1.0), (4.0, 0.5, 2.0), (1.5, 2.0, 0.3)]]
    check_with_mistakes(
        ou_variance, _ou_variance_ref, cases, name="ou_variance", mistakes=_VAR_MISTAKES,
        hints={"value": "solve dv/dt = −2θ·v + 2D with v(0) = var0.",
               "shape": "return one variance per entry of t (use np.exp, not math.exp)."})
