"""Checkers for chapter 11, "Few-step generation".

| exercise | learner writes | reference |
|---|---|---|
| ``check_distillation_target`` | ``distillation_target(teacher, x, sigma, sigma_mid, sigma_next)`` | x̃ = (x'' − (σ''/σ) x)/(1 − σ''/σ), x'' two teacher DDIM steps |
| ``check_consistency_coefficients`` | ``consistency_coefficients(sigma, sigma_min, sigma_data)`` | c_skip = σ_d²/((σ−σ_min)²+σ_d²), c_out = σ_d(σ−σ_min)/√(σ²+σ_d²) |
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import numpy as np
import torch

from .. import mixtures
from ..consistency import boundary_coefficients
from ..distillation import ddim_step, distillation_target
from .core import ExerciseError, check_function, check_value, to_numpy

__all__ = ["check_distillation_target", "check_consistency_coefficients",
           "distillation_target_reference", "consistency_coefficients_reference"]

distillation_target_reference = distillation_target


def _close(a, b, atol=1e-6) -> bool:
    a, b = to_numpy(a, "answer"), to_numpy(b, "reference")
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=1e-5))


def _target_cases() -> list[dict]:
    g = torch.Generator().manual_seed(11)
    teacher = mixtures.ring()  # nonlinear: every slip gives a visibly different answer
    cases = []
    for s, s_mid, s_next in ((4.0, 1.5, 0.5), (1.0, 0.6, 0.3), (10.0, 3.0, 0.0)):
        b = 6
        levels = [torch.full((b,), v, dtype=torch.float64) * (1 + 0.1 * torch.rand(b, generator=g,
                  dtype=torch.float64)) for v in (s, s_mid, s_next)]
        levels[2] = torch.minimum(levels[2], levels[1] * 0.9)
        x = mixtures.ring().sample(b, generator=g, dtype=torch.float64)
        x = x + levels[0][:, None] * torch.randn(b, 2, generator=g, dtype=torch.float64)
        cases.append(dict(teacher=teacher, x=x, sigma=levels[0], sigma_mid=levels[1],
                          sigma_next=levels[2]))
    return cases


def check_distillation_target(candidate: Callable) -> None:
    """Check ``distillation_target(teacher, x, sigma, sigma_mid, sigma_next)`` (levels ``(B,)``)."""
    hints = {
        "value": "take two DDIM steps with the teacher, x' = D + (σ'/σ)(x − D), first σ → σ_mid, "
                 "then σ_mid → σ_next; then solve x'' = x̃ + (σ_next/σ)(x − x̃) for x̃.",
        "shape": "return one x̃ per sample, shape (B, d) like x.",
        "exception": "the levels are (B,) tensors: broadcast them over coordinates with "
                     "sigma[:, None] (or utils.append_dims).",
    }
    for case in _target_cases():
        t, x, s, s_mid, s_next = (case[k] for k in ("teacher", "x", "sigma", "sigma_mid", "sigma_next"))
        slips = {
            "the teacher's own x̂₀ = D(x, σ), which is the target of a *single* teacher step "
            "σ → σ_next (its one-step, blurry guess). The student "
            "must reproduce where *two* teacher steps land, so its target is the x̃ that makes "
            "one DDIM step σ → σ_next end at x''.": t(x, s),
            "x'', where two teacher steps land. The student is a denoiser: return the x̂₀ that "
            "makes *one* DDIM step σ → σ_next land at x'', i.e. solve "
            "x'' = x̃ + (σ_next/σ)(x − x̃) for x̃.": ddim_step(t, ddim_step(t, x, s, s_mid), s_mid, s_next),
        }

        def compare(got, want, context, slips=slips):
            if not _close(got, want):
                for why, slip in slips.items():
                    if _close(got, slip) and not _close(slip, want):
                        raise ExerciseError(f"distillation_target returned {why} ({context})")
            check_value(got, want, name="distillation_target", atol=1e-6, rtol=1e-5, hints=hints,
                        context=context)

        with contextlib.redirect_stdout(io.StringIO()):  # one success line at the end, not three
            check_function(candidate, distillation_target_reference, [case],
                           name="distillation_target", hints=hints, compare=compare)
    print("✓ distillation_target is correct on 3 test inputs.")


def consistency_coefficients_reference(sigma: torch.Tensor, sigma_min: float, sigma_data: float
                                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) of a consistency model {cite}`song2023consistency`."""
    return boundary_coefficients(sigma, sigma_min, sigma_data)


def check_consistency_coefficients(candidate: Callable) -> None:
    """Check ``consistency_coefficients(sigma, sigma_min, sigma_data) -> (c_skip, c_out)``."""
    hints = {
        "value": "c_skip = σ_d²/((σ − σ_min)² + σ_d²) and c_out = σ_d (σ − σ_min)/√(σ² + σ_d²): "
                 "EDM's coefficients with σ shifted by σ_min where the boundary needs it.",
        "sign": "c_out must be positive above σ_min: it scales the network's correction.",
        "shape": "return a pair (c_skip, c_out), each with the shape of sigma.",
    }
    for sigma_min, sigma_data in ((0.002, 0.5), (0.05, 1.4), (0.2, 1.0)):
        sigma = sigma_min * torch.tensor([1.0, 1.5, 3.0, 10.0, 100.0, 1000.0], dtype=torch.float64)
        context = f"for sigma_min={sigma_min}, sigma_data={sigma_data}"
        try:
            got = candidate(sigma.clone(), sigma_min, sigma_data)
        except NotImplementedError as exc:
            raise ExerciseError("consistency_coefficients is not written yet: replace the "
                                "`# your code here` stub.") from exc
        except Exception as exc:
            raise ExerciseError(f"consistency_coefficients raised {type(exc).__name__}: {exc} "
                                f"({context}).") from exc
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ExerciseError(f"consistency_coefficients must return a pair (c_skip, c_out), got "
                                f"{type(got).__name__} ({context}).")
        c_skip, c_out = (to_numpy(v, "c_skip/c_out") for v in got)
        if c_skip.shape != (6,) or c_out.shape != (6,):
            raise ExerciseError(f"c_skip and c_out must each have the shape of sigma (6,), got "
                                f"{c_skip.shape} and {c_out.shape} ({context}).")
        if abs(c_skip[0] - 1) > 1e-12 or abs(c_out[0]) > 1e-12:
            raise ExerciseError(
                f"the boundary condition fails {context}: at σ = σ_min you return c_skip = "
                f"{c_skip[0]:.6g}, c_out = {c_out[0]:.6g}, but f(x, σ_min) = c_skip x + c_out F "
                "must equal x for *any* network output F, so c_skip(σ_min) = 1 and "
                "c_out(σ_min) = 0 exactly. EDM's coefficients (no σ_min) miss this by a little.")
        want_skip, want_out = consistency_coefficients_reference(sigma, sigma_min, sigma_data)
        check_value(got[0], want_skip, name="c_skip", atol=1e-10, rtol=1e-8, hints=hints, context=context)
        check_value(got[1], want_out, name="c_out", atol=1e-10, rtol=1e-8, hints=hints, context=context)
    print("✓ consistency_coefficients is correct on 3 test inputs (and satisfies the boundary condition).")
