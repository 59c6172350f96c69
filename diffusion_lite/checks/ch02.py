"""Checkers for chapter 2 — Heat, drift, and forgetting.

Each checker first compares the learner's function with the reference on several inputs
(:func:`~diffusion_lite.checks.core.check_function`); if they differ, it also tries the typical
mistakes listed for that exercise and, when one reproduces the learner's output, names it.

- Euler–Maruyama step: ``em_step(x, h, theta, D_coef, generator)`` =
  x − θ·x·h + sqrt(2·D·h)·z with z = randn(x.shape, generator).
- OU variance: ``ou_variance(var0, t, theta, D_coef)`` = e^{−2θt}·v_0 + (D/θ)(1 − e^{−2θt}).
- EM stationary variance: ``em_stationary_variance(h, theta, D_coef)`` = (D/θ) / (1 − θh/2).
- Reverse-time loop: ``reverse_ou(score_fn, x_T, times, theta, D_coef, generator)``, compared
  with ``ou.simulate_ou_reverse``.

Random answers are compared with the exact draw the given generator makes; when the noise is
wrong, :func:`~diffusion_lite.checks.core.diagnose_noise` says how (shared across coordinates,
wrong law, not the generator's draw).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import ou
from .core import (_clone, check_function, check_value, check_with_mistakes, diagnose_noise,
                   name_mistake)

__all__ = ["check_em_step", "check_ou_variance", "check_em_stationary_variance", "check_reverse_ou",
           "match_mistake", "check_with_mistakes"]


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


# --- Exercise: one Euler–Maruyama step of the OU process ------------------------------------

def _draw(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


_EM_MISTAKES = {
    "the noise is scaled by 2·D·h instead of sqrt(2·D·h): Brownian increments grow like "
    "sqrt(h), not h.": lambda x, h, theta, D_coef, z: x - theta * x * h + 2 * D_coef * h * z,
    "the noise is scaled by sqrt(h) only: the diffusion constant enters as sqrt(2·D).":
        lambda x, h, theta, D_coef, z: x - theta * x * h + h**0.5 * z,
    "the noise is scaled by sqrt(D·h): the variance added per step is 2·D·h.":
        lambda x, h, theta, D_coef, z: x - theta * x * h + (D_coef * h) ** 0.5 * z,
    "the drift has the wrong sign: −θx pulls x back towards 0, so subtract θ·x·h.":
        lambda x, h, theta, D_coef, z: x + theta * x * h + (2 * D_coef * h) ** 0.5 * z,
    "the drift is missing the step size h: the change in one step is −θ·x·h.":
        lambda x, h, theta, D_coef, z: x - theta * x + (2 * D_coef * h) ** 0.5 * z,
}


def _em_cases() -> list[dict]:
    gen = torch.Generator().manual_seed(2)
    cases = []
    for seed, (shape, h, theta, D) in enumerate([((4000, 2), 0.01, 1.0, 1.0),
                                                 ((3000,), 0.1, 2.0, 0.5),
                                                 ((2000, 3), 0.05, 0.5, 3.0)]):
        x = 2 * torch.randn(shape, generator=gen, dtype=torch.float64)
        cases.append(dict(x=x, h=h, theta=theta, D_coef=D,
                          generator=torch.Generator().manual_seed(10 + seed)))
    return cases


def _em_step_ref(x, h, theta, D_coef, generator):
    return x - theta * x * h + (2 * D_coef * h) ** 0.5 * _draw(x, generator)


def _quietly(fn: Callable, *args, **kwargs) -> None:
    """Run a one-case check without its success line (the caller prints one for all cases)."""
    with contextlib.redirect_stdout(io.StringIO()):
        fn(*args, **kwargs)


def check_em_step(em_step: Callable) -> None:
    """Check ``em_step(x, h, theta, D_coef, generator)`` = x − θ·x·h + sqrt(2·D·h)·z with
    z = ``torch.randn(x.shape, generator=generator, dtype=x.dtype)`` {cite}`sarkka2019`.

    The answer is compared with the exact draw of a copy of the generator it was given; a wrong
    drift or noise scale is named, and wrong noise (shared across coordinates, the wrong law,
    not the generator's draw) is diagnosed from the noise the answer implies.
    """
    hints = {"value": "one step is x + (drift)·h + sqrt(2·D·h)·z with drift −θ·x.",
             "none": "return the new positions."}
    cases = _em_cases()
    for case in cases:
        x, h, theta, D = case["x"], case["h"], case["theta"], case["D_coef"]
        z = _draw(x, _clone(case["generator"]))

        def compare(got, want, context, x=x, h=h, theta=theta, D=D, z=z):
            got = torch.as_tensor(got)
            if got.shape == x.shape:
                z_got = (got.to(x.dtype) - (x - theta * x * h)) / (2 * D * h) ** 0.5
                diagnose_noise(z_got, z, name="em_step", context=context)
            check_value(got, want, name="em_step", context=context, hints=hints)

        _quietly(check_function, em_step, _em_step_ref, [case], name="em_step", hints=hints,
                 compare=compare,
                 mistakes=lambda x, h, theta, D_coef, generator, z=z: {
                     why: f(x, h, theta, D_coef, z) for why, f in _EM_MISTAKES.items()})
    print(f"✓ em_step is correct on {len(cases)} test inputs, noise included.")


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


# --- Exercise: the stationary variance of the discretised OU process -------------------------

def _em_stationary_ref(h, theta, D_coef):
    return D_coef / theta / (1 - theta * np.asarray(h, dtype=np.float64) / 2)


_STAT_MISTAKES = {
    "this is the stationary variance of the continuous process, D/θ; the Euler–Maruyama chain "
    "v ← (1 − θh)²·v + 2·D·h settles elsewhere: solve v = (1 − θh)²·v + 2Dh for v.":
        lambda h, theta, D_coef: D_coef / theta + 0 * np.asarray(h, dtype=np.float64),
    "(1 − θh)² was expanded to first order, 1 − 2θh; keep the θ²h² term, it is the bias.":
        lambda h, theta, D_coef: 2 * D_coef * np.asarray(h) / (2 * theta * np.asarray(h)),
    "the shrink factor (1 − θh) multiplies x, so it multiplies the variance squared: "
    "v = (1 − θh)²·v + 2Dh.":
        lambda h, theta, D_coef: 2 * D_coef * np.asarray(h) / (1 - (1 - theta * np.asarray(h))),
    "the noise adds variance 2·D·h per step, not D·h.":
        lambda h, theta, D_coef: D_coef * np.asarray(h) / (1 - (1 - theta * np.asarray(h)) ** 2),
}


def check_em_stationary_variance(em_stationary_variance: Callable) -> None:
    """Check ``em_stationary_variance(h, theta, D_coef)`` = 2Dh / (1 − (1 − θh)²),
    i.e. (D/θ) / (1 − θh/2).

    The fixed point of v ← (1 − θh)²·v + 2Dh, the variance the Euler–Maruyama chain of the OU
    process settles at; it exceeds D/θ by a bias of order h {cite}`sarkka2019`.
    """
    h = np.array([0.01, 0.1, 0.5, 1.0])
    cases = [dict(h=h, theta=th, D_coef=D) for th, D in [(1.0, 1.0), (1.5, 0.4), (0.5, 2.0)]]
    check_with_mistakes(
        em_stationary_variance, _em_stationary_ref, cases, name="em_stationary_variance",
        mistakes=_STAT_MISTAKES,
        hints={"value": "at stationarity the variance is unchanged by one step: "
                        "v = (1 − θh)²·v + 2·D·h.",
               "shape": "return one variance per entry of h (use numpy operations)."})


# --- Exercise: the reverse-time Euler–Maruyama loop -------------------------------------------

def _gauss_score(mu: float, var0: float, theta: float, D_coef: float):
    """Exact score of p_t for the OU process started at N(mu, var0) (a closed form)."""
    def score(x, t):
        m, v = ou.ou_marginal(mu, var0, t, theta, D_coef)
        return -(x - float(m)) / float(v)
    return score


def _reverse_variant(score_fn, x_T, times, theta, D_coef, generator, *, score_sign=-1.0,
                     score_coef=2.0, abs_dt=False, noise=True, late=False):
    x = x_T
    for t, t_next in zip(times[:-1], times[1:]):
        dt = t_next - t
        s = score_fn(x, t_next if late else t)
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        drift = -theta * x + score_sign * score_coef * D_coef * s
        x = x + drift * (abs(dt) if abs_dt else dt) + (noise * (2 * D_coef * -dt) ** 0.5) * z
    return x


_REVERSE_MISTAKES = {
    "the score term has the wrong sign: the reverse drift is f − g²·s = −θx − 2D·s, and with "
    "dt < 0 it pushes particles up the density.": dict(score_sign=1.0),
    "the drift is multiplied by |dt|: time runs backwards, so dt = t_(i+1) − t_i is negative "
    "and the step is x + drift·dt.": dict(abs_dt=True),
    "the score is weighted by D, as in the probability-flow ODE; the reverse SDE (with noise) "
    "needs g² = 2D: drift −θx − 2D·s.": dict(score_coef=1.0),
    "there is no noise: with g² = 2D in the drift, the reverse SDE adds sqrt(2D·|dt|)·z each step "
    "(without noise the drift is the ODE's −θx − D·s).": dict(noise=False),
    "the score is evaluated at the next time t_(i+1); Euler–Maruyama evaluates everything at the "
    "start of the step, t_i.": dict(late=True),
}


def check_reverse_ou(reverse_ou: Callable) -> None:
    """Check ``reverse_ou(score_fn, x_T, times, theta, D_coef, generator)`` against
    :func:`diffusion_lite.ou.simulate_ou_reverse` run on the same times and generator seed.

    Each step, with dt = t_(i+1) − t_i < 0: s = score_fn(x, t_i), then
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype),
    x ← x + (−θx − 2D·s)·dt + sqrt(2D·|dt|)·z {cite}`anderson1982`.
    """
    hints = {"none": "return x at the last time (t = 0).",
             "value": "loop over consecutive times (t, t_next), dt = t_next − t < 0; "
                      "s = score_fn(x, t); z = torch.randn(x.shape, generator=generator, "
                      "dtype=x.dtype) once per step; x ← x + (−θx − 2D·s)·dt + sqrt(2D·|dt|)·z."}
    runs = [(2.0, 0.09, 1.0, 1.0, 3.0, 40, "uniform", (300,)),
            (-1.0, 0.25, 0.5, 2.0, 2.0, 25, "quadratic", (200, 2)),
            (0.5, 4.0, 2.0, 0.3, 1.5, 30, "quadratic", (250,))]
    for seed, (mu, var0, theta, D, t_end, n, spacing, shape) in enumerate(runs):
        score = _gauss_score(mu, var0, theta, D)
        m, v = ou.ou_marginal(mu, var0, t_end, theta, D)
        x_T = float(m) + float(v) ** 0.5 * torch.randn(
            shape, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
        case = dict(score_fn=score, x_T=x_T, times=ou.reverse_times(t_end, n, spacing),
                    theta=theta, D_coef=D, generator=torch.Generator().manual_seed(seed))

        def reference(score_fn, x_T, times, theta, D_coef, generator, t_end=t_end, n=n,
                      spacing=spacing):
            return ou.simulate_ou_reverse(score_fn, x_T, t_end, n, theta=theta, D_coef=D_coef,
                                          spacing=spacing, generator=generator)

        _quietly(check_function, reverse_ou, reference, [case], name="reverse_ou", hints=hints,
                 atol=1e-8, rtol=1e-8,
                 mistakes=lambda **c: {  # each variant draws from its own copy of the generator
                     why: _reverse_variant(**{**c, "generator": _clone(c["generator"])}, **kw)
                     for why, kw in _REVERSE_MISTAKES.items()})
    print(f"✓ reverse_ou matches ou.simulate_ou_reverse on {len(runs)} test inputs.")
