"""Machinery shared by all exercise checkers: run, compare, explain.

A checker calls the learner's function on several random inputs, compares each result with the
reference implementation, and on the first disagreement raises :class:`ExerciseError` with a
diagnosis (not written yet, crashed, returned None, a *typical mistake named by the exercise*,
wrong shape, NaN, wrong sign, off by a constant factor, off by a constant offset, simply
different) plus a hint written for that exercise. On success it prints one line and returns
``None``. Typical mistakes are given as ``mistakes(**case) -> {diagnosis: wrong answer}``; an
answer equal to one of them is named (:func:`name_mistake`, the one copy of that idea).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["ExerciseError", "check_function", "check_value", "to_numpy", "name_mistake",
           "check_with_mistakes", "diagnose_noise"]

# Keys a checker may give hints for; the diagnosis picks the matching one.
HINT_KEYS = ("not_implemented", "exception", "none", "type", "shape", "nan", "sign", "scale",
             "offset", "value")


class ExerciseError(AssertionError):
    """The learner's answer is not right yet; the message says what is wrong and hints at why."""


def to_numpy(value: Any, name: str) -> np.ndarray:
    """Convert a tensor, array or number to a float64 array, or raise a learner-readable error."""
    if value is Ellipsis:  # a student-copy stub `name = ...  # your code here`
        raise ExerciseError(f"{name} is not written yet: replace the `...` placeholder.")
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().to(torch.float64).numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ExerciseError(
            f"{name} returned a {type(value).__name__}, which is not a number, array or tensor."
        ) from exc


_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]*))?\}")


def _hint(hints: Mapping[str, str] | None, key: str, **fmt: Any) -> str:
    """The hint for ``key``, with ``{factor}``-style placeholders filled from ``fmt``.

    Only known placeholders are replaced, so hints may contain literal braces ({0, 1}, LaTeX).
    """
    text = (hints or {}).get(key)
    if not text:
        return ""

    def fill(m: re.Match) -> str:
        if m[1] not in fmt:
            return m[0]
        return format(fmt[m[1]], m[2] or "")

    return "\nHint: " + _PLACEHOLDER.sub(fill, text)


def check_value(got: Any, want: Any, *, name: str = "your answer", atol: float = 1e-6,
                rtol: float = 1e-4, hints: Mapping[str, str] | None = None,
                context: str = "") -> None:
    """Compare one result with the expected value and raise :class:`ExerciseError` explaining any gap.

    ``context`` describes the input (e.g. "for n_steps=10"), so the learner can reproduce it.
    """
    where = f" {context}" if context else ""
    if got is None:
        raise ExerciseError(f"{name} returned None{where}. Did you forget `return`?"
                            + _hint(hints, "none"))
    g, w = to_numpy(got, name), to_numpy(want, "the reference")
    if g.shape != w.shape:
        raise ExerciseError(f"{name} has shape {g.shape}{where}, expected {w.shape}."
                            + _hint(hints, "shape", got=g.shape, want=w.shape))
    if not np.all(np.isfinite(g)) and np.all(np.isfinite(w)):
        raise ExerciseError(f"{name} contains NaN or infinite values{where}."
                            + _hint(hints, "nan"))
    if np.allclose(g, w, atol=atol, rtol=rtol):
        return
    if np.any(w != 0) and np.allclose(g, -w, atol=atol, rtol=rtol):
        raise ExerciseError(f"{name} has the wrong sign{where}." + _hint(hints, "sign"))
    ww = float(np.sum(w * w))
    if ww > 0:
        factor = float(np.sum(g * w) / ww)
        if abs(factor - 1) > 10 * rtol and np.allclose(g, factor * w, atol=atol, rtol=10 * rtol):
            raise ExerciseError(f"{name} is off by a constant factor of about {factor:.4g}{where}."
                                + _hint(hints, "scale", factor=factor))
    if g.size > 1:
        offset = float(np.mean(g - w))
        if np.allclose(g - offset, w, atol=atol, rtol=rtol):
            raise ExerciseError(f"{name} is off by a constant offset of about {offset:.4g}{where}."
                                + _hint(hints, "offset", offset=offset))
    err = np.abs(g - w)
    idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    raise ExerciseError(
        f"{name} differs from the reference{where}: largest error {float(err.max()):.3g} at index "
        f"{tuple(int(i) for i in idx)} (got {float(g[idx]):.6g}, expected {float(w[idx]):.6g})."
        + _hint(hints, "value")
    )


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def name_mistake(got: Any, want: Any, wrong: Mapping[str, Any], *, rtol: float = 1e-6,
                 atol: float = 1e-9) -> str | None:
    """The first diagnosis in ``wrong`` whose value equals ``got`` (and differs from ``want``).

    ``wrong`` maps a diagnosis ("the drift has the wrong sign: ...") to the answer that mistake
    gives on the same input; ``None`` values (a mistake that does not apply here) are skipped.
    """
    try:
        g = to_numpy(got, "your answer")
    except ExerciseError:
        return None
    w = to_numpy(want, "the reference")
    for diagnosis, value in wrong.items():
        if value is None:
            continue
        v = to_numpy(value, "a typical mistake")
        if _close(g, v, rtol, atol) and not _close(v, w, rtol, atol):
            return diagnosis
    return None


def _clone(obj: Any) -> Any:
    return obj.clone() if isinstance(obj, torch.Tensor) else copy.deepcopy(obj)


def check_function(candidate: Callable, reference: Callable,
                   cases: Iterable[Mapping[str, Any]], *, name: str, atol: float = 1e-6,
                   rtol: float = 1e-4, hints: Mapping[str, str] | None = None,
                   compare: Callable[..., None] | None = None,
                   mistakes: Callable[..., Mapping[str, Any]] | None = None) -> None:
    """Call ``candidate(**case)`` and ``reference(**case)`` for every case and compare the results.

    ``cases`` are keyword-argument dicts (inputs are copied, so an in-place edit by the learner
    cannot change the reference's input). ``compare(got, want, context=...)`` replaces the default
    elementwise :func:`check_value` for answers that are random (compare statistics instead).
    ``mistakes(**case)`` returns ``{diagnosis: wrong answer}`` for that case: an answer that
    matches one is named before any generic diagnosis.
    """
    if not callable(candidate):
        raise ExerciseError(f"expected a function for {name}, got {type(candidate).__name__}."
                            + _hint(hints, "type"))
    cases = list(cases)
    if not cases:
        raise ValueError("a checker needs at least one case")
    for case in cases:
        context = "for " + ", ".join(f"{k}={_describe(v)}" for k, v in case.items())
        try:
            got = candidate(**{k: _clone(v) for k, v in case.items()})
        except NotImplementedError as exc:
            raise ExerciseError(f"{name} is not written yet: replace the `# your code here` stub."
                                + _hint(hints, "not_implemented")) from exc
        except ExerciseError:
            raise
        except Exception as exc:  # the learner's code crashed: say how, keep the traceback
            raise ExerciseError(f"{name} raised {type(exc).__name__}: {exc} ({context})."
                                + _hint(hints, "exception")) from exc
        want = reference(**{k: _clone(v) for k, v in case.items()})
        if got is None:  # say so before any custom comparison trips over it
            raise ExerciseError(f"{name} returned None {context}. Did you forget `return`?"
                                + _hint(hints, "none"))
        if mistakes is not None:
            _name_typical(got, want, mistakes(**{k: _clone(v) for k, v in case.items()}),
                          name=name, context=context, rtol=rtol, atol=atol)
        if compare is not None:
            compare(got, want, context=context)
        else:
            check_value(got, want, name=name, atol=atol, rtol=rtol, hints=hints, context=context)
    print(f"✓ {name} is correct on {len(cases)} test inputs.")


def _name_typical(got: Any, want: Any, wrong: Mapping[str, Any], *, name: str, context: str,
                  rtol: float, atol: float) -> None:
    """Raise naming the typical mistake ``got`` reproduces, unless ``got`` is right."""
    try:
        if _close(to_numpy(got, name), to_numpy(want, "the reference"), rtol, atol):
            return
    except ExerciseError:
        return  # not a number: the generic diagnosis says so
    diagnosis = name_mistake(got, want, wrong, rtol=min(rtol, 1e-6), atol=min(atol, 1e-8))
    if diagnosis is not None:
        raise ExerciseError(f"{name} is not right {context}: {diagnosis}")


def _describe(v: Any) -> str:
    if isinstance(v, (torch.Tensor, np.ndarray)):
        return f"<{type(v).__name__} of shape {tuple(v.shape)}>"
    if isinstance(v, torch.Generator):
        return "<generator>"
    if callable(v):
        return f"<function {getattr(v, '__name__', '?')}>"
    return repr(v)


def diagnose_noise(z_got: Any, z_want: Any, *, name: str, context: str = "",
                   draw: str = "torch.randn(x.shape, generator=generator, dtype=x.dtype)") -> None:
    """Explain why the noise ``z_got`` an answer used differs from the exact draw ``z_want``.

    ``z_got`` is the standard-normal noise recovered from the learner's step (shape ``(N, d)`` or
    ``(N,)``), ``z_want`` the one the given generator yields. Raises :class:`ExerciseError`
    naming the first defect found: noise shared across coordinates or particles, drawn from the
    wrong law (mean, variance or tails off), or a valid N(0, 1) draw that is not the generator's
    (a global RNG, a different shape or order). Returns quietly when the two agree.
    """
    g, w = to_numpy(z_got, name), to_numpy(z_want, "the exact draw")
    # tolerance of float32 arithmetic on the right numbers
    if g.shape == w.shape and np.allclose(g, w, rtol=1e-4, atol=1e-5):
        return
    where = f" {context}" if context else ""
    if g.ndim == 2 and g.shape[1] > 1 and np.allclose(g, g[:, :1]):
        raise ExerciseError(f"{name}: the noise is shared across coordinates{where}: every "
                            "coordinate of a particle gets the same z.\nHint: draw one "
                            f"independent N(0, 1) number per coordinate, {draw}.")
    if g.size > 1 and np.allclose(g, g.reshape(-1)[0]):
        raise ExerciseError(f"{name}: every particle gets the same noise{where}.\nHint: draw a "
                            f"tensor of noise with the shape of x, {draw}.")
    flat = g.reshape(-1)
    n = flat.size
    mean, var = float(flat.mean()), float(flat.var())
    kurt = float(((flat - mean) ** 4).mean() / var**2) if var > 0 else float("nan")
    # 6 standard errors of the mean, variance and kurtosis of n N(0, 1) draws
    off = (abs(mean) > 6 / np.sqrt(n), abs(var - 1) > 6 * np.sqrt(2 / n),
           abs(kurt - 3) > 6 * np.sqrt(24 / n))
    if any(off):
        law = (" (torch.rand is uniform on [0, 1): mean 0.5, variance 1/12)"
               if abs(mean - 0.5) < 0.1 and abs(var - 1 / 12) < 0.03 else "")
        raise ExerciseError(
            f"{name}: the noise is not drawn from N(0, 1){where}: it has mean {mean:.3g}, variance "
            f"{var:.3g} and kurtosis {kurt:.3g} (expected 0, 1 and 3){law}.\nHint: {draw}.")
    raise ExerciseError(
        f"{name}: the noise looks like N(0, 1) but is not the draw the given generator makes"
        f"{where}.\nHint: draw exactly {draw}, once per step, so that runs are reproducible and "
        "comparable with the package (the same shape, order and dtype: a float32 draw from the "
        "same generator gives other numbers than a float64 one).")


def check_with_mistakes(candidate: Callable, reference: Callable,
                        cases: Iterable[Mapping[str, Any]], *, name: str,
                        mistakes: Mapping[str, Callable] | Callable[..., Mapping[str, Any]],
                        lead: str = "", end: str = "", **options: Any) -> None:
    """:func:`check_function` naming the typical mistake an answer reproduces.

    ``mistakes`` is ``{diagnosis: wrong(**case)}`` or a function ``mistakes(**case) ->
    {diagnosis: wrong answer}``; each diagnosis is said as ``lead + diagnosis + end``.
    ``options`` go to :func:`check_function` (``hints``, ``atol``, ``rtol``, ``compare``).
    """
    def wrong_answers(**case: Any) -> dict[str, Any]:
        found = ({why: wrong(**case) for why, wrong in mistakes.items()}
                 if isinstance(mistakes, Mapping) else mistakes(**case))
        return {f"{lead}{why}{end}": value for why, value in found.items()}
    check_function(candidate, reference, cases, name=name, mistakes=wrong_answers, **options)
