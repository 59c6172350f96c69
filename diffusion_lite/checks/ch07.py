"""Checkers for chapter 7's exercises: the guided combination and label dropout.

Each checker runs the learner's function on fixed inputs, recognises the typical mistakes
(conditional and unconditional swapped, the paper's (1 + w) convention, a missing starting point;
an inverted dropout mask, the null class confused with digit 0, an edited input, an ignored
generator) and raises :class:`~diffusion_lite.checks.core.ExerciseError` naming the mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from diffusion_lite.checks.core import ExerciseError, check_function
from diffusion_lite.guidance import cfg_combine

__all__ = ["check_cfg_combine", "check_drop_labels"]

CFG_HINTS = {
    "not_implemented": "start from D(x, σ | ∅) and move w times along D(x, σ | y) − D(x, σ | ∅).",
    "shape": "the guided prediction has the shape of either input; do not reduce over any axis.",
    "value": "D_w = d_uncond + w · (d_cond − d_uncond).",
    "scale": "check the factor in front of the difference: it is exactly w.",
    "offset": "the result must start from d_uncond, not from a constant.",
}


def _call(fn: Callable, name: str, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except NotImplementedError as exc:
        raise ExerciseError(f"{name} is not written yet: replace the `# your code here` stub.") from exc
    except Exception as exc:  # the learner's code crashed: say how, keep the traceback
        raise ExerciseError(f"{name} raised {type(exc).__name__}: {exc}.") from exc


def _close(a: Any, b: torch.Tensor) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b, atol=1e-6)


def check_cfg_combine(fn: Callable) -> None:
    """Check ``fn(d_uncond, d_cond, scale)`` = d_uncond + w·(d_cond − d_uncond)."""
    name = "cfg_combine"
    g = torch.Generator().manual_seed(7)
    u, c = torch.randn(3, 1, 8, 8, generator=g), torch.randn(3, 1, 8, 8, generator=g)
    at0 = _call(fn, name, d_uncond=u.clone(), d_cond=c.clone(), scale=0.0)
    at1 = _call(fn, name, d_uncond=u.clone(), d_cond=c.clone(), scale=1.0)
    if _close(at0, c) and _close(at1, u):
        raise ExerciseError(f"{name} swaps the two predictions: at w = 0 it returns the "
                            "conditional one and at w = 1 the unconditional one.\nHint: start from "
                            "d_uncond and move towards d_cond.")
    if _close(at0, c) and _close(at1, 2 * c - u):
        raise ExerciseError(f"{name} uses the (1 + w)·cond − w·uncond convention of the paper's "
                            "ε-form, so w = 0 already gives the conditional model.\nHint: in this "
                            "course w = 1 is conditional and w = 0 unconditional; the paper's w is "
                            "our w − 1.")
    if _close(at0, torch.zeros_like(u)):
        raise ExerciseError(f"{name} returns 0 at w = 0, where guidance is off and the answer "
                            "should be the unconditional prediction.\nHint: you kept only "
                            "w·(d_cond − d_uncond); add the starting point d_uncond.")
    cases = [{"d_uncond": u, "d_cond": c, "scale": w} for w in (0.0, 1.0, 2.5, 7.0)]
    check_function(fn, cfg_combine, cases, name=name, hints=CFG_HINTS, atol=1e-5)


def check_drop_labels(fn: Callable) -> None:
    """Check ``fn(labels, p_uncond, null_label, generator)``: each label → null w.p. p_uncond."""
    name = "drop_labels"
    null, p = 10, 0.25
    labels = torch.arange(10).repeat(1000)  # (10000,), every digit 1000 times
    original = labels.clone()
    out = _call(fn, name, labels=labels, p_uncond=p, null_label=null,
                generator=torch.Generator().manual_seed(0))
    if not torch.equal(labels, original):
        raise ExerciseError(f"{name} changed its input labels in place.\nHint: build a new tensor "
                            "(torch.where or labels.clone()); the caller still needs the labels.")
    if not isinstance(out, torch.Tensor) or out.shape != labels.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ExerciseError(f"{name} must return a tensor of shape {tuple(labels.shape)}, got {got}.")
    if out.dtype not in (torch.int32, torch.int64):
        raise ExerciseError(f"{name} returned {out.dtype}; labels are class indices, keep them "
                            "integer (torch.full_like(labels, null_label)).")
    changed = out != labels
    if bool(changed.any()) and bool((out[changed] == 0).all()):
        raise ExerciseError(f"{name} replaces dropped labels by 0, which is the digit zero.\n"
                            f"Hint: use the null class null_label = {null}, a label no real image has.")
    if bool((changed & (out != null)).any()):
        raise ExerciseError(f"{name} changes labels to values other than null_label = {null}; a "
                            "dropped label becomes the null class, a kept one stays as it was.")
    rate = float(changed.float().mean())
    # Binomial(10000, 0.25) has standard deviation 0.0043, so ±0.02 is over 4.5 standard deviations.
    if abs(rate - (1 - p)) < 0.02:
        raise ExerciseError(f"{name} dropped {rate:.1%} of the labels with p_uncond = {p}: the mask "
                            "is inverted.\nHint: drop where u < p_uncond, keep otherwise.")
    if abs(rate - p) > 0.02:
        raise ExerciseError(f"{name} dropped {rate:.1%} of the labels with p_uncond = {p}; "
                            "expected 25% ± 2%.\nHint: one uniform number u per label, drop if u < p.")
    again = _call(fn, name, labels=labels.clone(), p_uncond=p, null_label=null,
                  generator=torch.Generator().manual_seed(0))
    if not torch.equal(out, again):
        raise ExerciseError(f"{name} gives different results for the same generator seed.\nHint: "
                            "pass generator=generator to torch.rand so training is reproducible.")
    for q, want in ((0.0, labels), (1.0, torch.full_like(labels, null))):
        got = _call(fn, name, labels=labels.clone(), p_uncond=q, null_label=null,
                    generator=torch.Generator().manual_seed(1))
        if not torch.equal(got, want):
            raise ExerciseError(f"{name} with p_uncond = {q} should "
                                + ("keep every label." if q == 0 else "drop every label."))
    print(f"✓ {name} is correct: rate {rate:.3f} for p_uncond = {p}, reproducible, input untouched.")
