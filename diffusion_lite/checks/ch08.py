"""Checkers for chapter 8 (evaluating samples): PSNR by hand, the unbiased MMD² by hand.

Each checker runs the learner's function on a few inputs and, when the answer is off, first tests
it against the typical mistakes (wrong data range, natural log, one global MSE; a biased MMD
that keeps the i = j terms, a bandwidth used as h instead of 2h²) to name the one made.

MMD² has more than one unbiased estimator: the U-statistic with all n·m cross pairs, Gretton et
al.'s paired form (cross pairs i ≠ j, n = m), the linear-time estimator over disjoint pairs, ...
{cite}`gretton2012`. They differ on every data set and agree in expectation, so an answer that
does not match the reference exactly is judged by its *mean*: over many pairs of Gaussian sets its
average must match the closed-form MMD² (which holds for every unbiased estimator and fails for the
biased V-statistic, whose excess (1 − E k(x, x'))/n + (1 − E k(y, y'))/m is named).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable

import torch

from .core import ExerciseError, check_function, check_with_mistakes, to_numpy

__all__ = ["check_psnr", "check_mmd2"]


def _reference_psnr(x: torch.Tensor, ref: torch.Tensor, data_range: float) -> torch.Tensor:
    mse = (x - ref).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def _psnr_mistakes(x, ref, data_range):
    mse = (x - ref).pow(2).flatten(1).mean(dim=1)
    return {
        "used data_range = 1 instead of the range of the images (here R = "
        f"{data_range}): R² is the squared width of the value range":
            10 * torch.log10(1.0 / mse),
        "used the natural logarithm: decibels are 10·log10(R²/MSE)":
            10 * torch.log(data_range**2 / mse),
        "used R/MSE instead of R²/MSE (or 20·log10 of the MSE)": 10 * torch.log10(data_range / mse),
        "computed one MSE over the whole batch: the convention is one PSNR per image":
            (10 * torch.log10(data_range**2 / (x - ref).pow(2).mean())).expand(len(x)),
    }


def _mmd_pieces(x, y, h, biased=False, kernel_scale=2.0):
    def k(a, b):
        return torch.exp(-torch.cdist(a, b).pow(2) / (kernel_scale * h * h))
    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    if biased:
        return kxx.mean() + kyy.mean() - 2 * k(x, y).mean()
    return ((kxx.sum() - kxx.trace()) / (n * (n - 1)) + (kyy.sum() - kyy.trace()) / (m * (m - 1))
            - 2 * k(x, y).mean())


def _reference_mmd2(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    return _mmd_pieces(x, y, bandwidth)


def _mmd_mistakes(x, y, bandwidth):
    return {
        "kept the i = j terms (k(x_i, x_i) = 1) in the within-set sums: that is the biased "
        "V-statistic, positive even when both sets come from one distribution. Sum over i ≠ j and "
        "divide by n(n − 1)": _mmd_pieces(x, y, bandwidth, biased=True),
        "used exp(−‖a − b‖²/h²): the kernel is exp(−‖a − b‖²/(2h²))":
            _mmd_pieces(x, y, bandwidth, kernel_scale=1.0),
        "used exp(−‖a − b‖²/h) (h not squared): the kernel is exp(−‖a − b‖²/(2h²))":
            _mmd_pieces(x, y, math.sqrt(bandwidth / 2)) if bandwidth > 0 else None,
        "dropped the i = j terms but divided the within-set sums by n² (and m²): with n(n − 1) "
        "terms left, divide by n(n − 1), else the estimate is biased low":
            _mmd_pieces(x, y, bandwidth) - _diag_fix(x, y, bandwidth),
    }


def _diag_fix(x, y, h):
    """U-statistic minus the n²-normalised variant: the within sums times 1/n(n−1) − 1/n²."""
    def off(a):
        k = torch.exp(-torch.cdist(a, a).pow(2) / (2 * h * h))
        n = len(a)
        return (k.sum() - k.trace()) * (1 / (n * (n - 1)) - 1 / n**2)
    return off(x) + off(y)


def check_psnr(candidate: Callable) -> None:
    """Check ``candidate(x, ref, data_range) -> (B,)``: per-image PSNR in dB."""
    g = torch.Generator().manual_seed(8)
    cases = []
    for shape, r in (((4, 8, 8), 2.0), ((3, 1, 6, 5), 255.0), ((2, 10, 10), 1.0)):
        ref = (torch.rand(shape, generator=g, dtype=torch.float64) - 0.5) * r
        level = 0.02 * torch.arange(1, shape[0] + 1, dtype=torch.float64)  # a noise level per image
        noise = torch.randn(shape, generator=g, dtype=torch.float64) * r
        noise = noise * level.reshape(-1, *[1] * (len(shape) - 1))
        cases.append({"x": ref + noise, "ref": ref, "data_range": r})
    check_with_mistakes(candidate, _reference_psnr, cases, mistakes=_psnr_mistakes, name="your psnr",
                        lead="it looks like you ", end=".", rtol=1e-6, atol=1e-9)
    print("One PSNR per image, in dB of R²/MSE: the convention scikit-image and the papers use.")


def _gaussian_mmd2(d: int, h: float, shift: float, s_x: float, s_y: float) -> tuple[float, float]:
    """Closed-form (MMD², V-statistic excess at n = m = 1) for x ~ N(0, s_x² I), y ~ N(shift·1, s_y² I).

    E k(a, b) for a ~ N(μ_a, s_a² I), b ~ N(μ_b, s_b² I) independent, with the RBF kernel of width h:
    (h²/(h² + s_a² + s_b²))^{d/2} · exp(−‖μ_a − μ_b‖² / (2(h² + s_a² + s_b²))).
    """
    def ek(s_a, s_b, dist2):
        v = h * h + s_a**2 + s_b**2
        return (h * h / v) ** (d / 2) * math.exp(-dist2 / (2 * v))
    kxx, kyy, kxy = ek(s_x, s_x, 0.0), ek(s_y, s_y, 0.0), ek(s_x, s_y, d * shift**2)
    return kxx + kyy - 2 * kxy, (1 - kxx, 1 - kyy)


# (n, m, d, bandwidth, mean shift, std of x, std of y): one design with p = q, two with p ≠ q.
_DESIGNS = ((20, 30, 2, 1.0, 0.0, 1.0, 1.0), (24, 24, 3, 1.5, 0.6, 1.0, 1.3),
            (16, 28, 2, 0.7, 0.4, 0.8, 0.8))
_REPEATS = 400


def _scalar(value, name: str, context: str) -> float:
    arr = to_numpy(value, name)
    if arr.size != 1:
        raise ExerciseError(f"{name} returned shape {tuple(arr.shape)} {context}; MMD² is one number")
    v = float(arr.reshape(()))
    if not math.isfinite(v):
        raise ExerciseError(f"{name} returned {v} {context}; check the divisions by n(n − 1)")
    return v


def _unbiased_in_mean(candidate: Callable, name: str) -> None:
    """Average the candidate over many Gaussian set pairs and compare with the exact MMD²."""
    g = torch.Generator().manual_seed(808)
    for n, m, d, h, shift, s_x, s_y in _DESIGNS:
        context = (f"for {_REPEATS} pairs of sets x ~ N(0, {s_x}² I) of {n} points and "
                   f"y ~ N({shift}, {s_y}² I) of {m} points in {d} dimensions, bandwidth {h}")
        values = []
        for _ in range(_REPEATS):
            x = s_x * torch.randn(n, d, generator=g, dtype=torch.float64)
            y = shift + s_y * torch.randn(m, d, generator=g, dtype=torch.float64)
            values.append(_scalar(candidate(x, y, h), name, context))
        mean = sum(values) / len(values)
        se = (sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)) ** 0.5
        truth, (ex, ey) = _gaussian_mmd2(d, h, shift, s_x, s_y)
        if abs(mean - truth) <= 4.5 * se + 1e-9:
            continue
        excess = ex / n + ey / m  # E[V-statistic] − MMD²
        if abs(mean - truth - excess) <= 4.5 * se:
            why = ("its average matches the biased V-statistic (within-set means over all n² pairs, "
                   f"i = j included), whose expected excess is {excess:.4f}. Sum over i ≠ j and "
                   "divide by n(n − 1)")
        elif mean < truth:
            why = "it is biased low (e.g. divided the within-set sums by n² after removing i = j)"
        else:
            why = "it is biased high (check the kernel exp(−‖a − b‖²/(2h²)) and the normalisations)"
        raise ExerciseError(f"{name} is not an unbiased estimator of MMD² {context}: its average is "
                            f"{mean:.4f} ± {se:.4f} (standard error), the exact MMD² is "
                            f"{truth:.4f}; {why}.")


def check_mmd2(candidate: Callable) -> None:
    """Check ``candidate(x, y, bandwidth) -> float``: an unbiased MMD² estimate, RBF kernel.

    An answer equal to the U-statistic (Gretton et al.'s MMD²_u) passes at once; a typical mistake
    it reproduces is named; any other answer must be deterministic and average to the exact MMD²
    on Gaussian sets ({func}`_unbiased_in_mean`), so every unbiased estimator is accepted.
    """
    g = torch.Generator().manual_seed(88)
    cases = [
        {"x": torch.randn(30, 2, generator=g, dtype=torch.float64),
         "y": torch.randn(40, 2, generator=g, dtype=torch.float64) + 0.5, "bandwidth": 1.0},
        {"x": torch.randn(25, 3, generator=g, dtype=torch.float64),
         "y": torch.randn(25, 3, generator=g, dtype=torch.float64), "bandwidth": 2.0},
    ]
    name = "your mmd2"
    exact = []

    def compare(got, want, *, context):
        v = _scalar(got, name, context)
        exact.append(math.isclose(v, float(want), rel_tol=1e-6, abs_tol=1e-9))

    with contextlib.redirect_stdout(io.StringIO()):  # its "✓ correct" would come too early here
        check_function(candidate, _reference_mmd2, cases, name=name, compare=compare,
                       mistakes=lambda **case: {f"it looks like you {why}.": wrong
                                                for why, wrong in _mmd_mistakes(**case).items()})
    if all(exact):
        print(f"✓ {name} is correct on {len(cases)} test inputs (it is the U-statistic MMD²_u).")
    else:
        # Not the U-statistic: another unbiased form is fine, so judge determinism and the mean.
        case = cases[0]
        first, second = (_scalar(candidate(case["x"].clone(), case["y"].clone(), case["bandwidth"]),
                                 name, "") for _ in range(2))
        if first != second:
            raise ExerciseError(f"{name} gave {first:.6f} and then {second:.6f} on the same sets: "
                                "an estimator is a function of the data (no fresh randomness)")
        _unbiased_in_mean(candidate, name)
        print(f"✓ {name} is correct: not the textbook U-statistic, but unbiased: its average over "
              f"{_REPEATS} draws matches the exact MMD² in {len(_DESIGNS)} settings.")
    print("Unbiased: averaged over many draws from one distribution it is 0, not positive.")
