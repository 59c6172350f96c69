"""Checkers for chapter 8 (evaluating samples): PSNR by hand, the unbiased MMD² by hand.

Each checker runs the learner's function on a few inputs and, when the answer is off, first tests
it against the typical mistakes (wrong data range, natural log, one global MSE; a biased MMD
that keeps the i = j terms, a bandwidth used as h instead of 2h²) to name the one made.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .core import check_function

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
    }


def _run(candidate, reference, mistakes, cases, name, rtol=1e-6, atol=1e-9):
    """check_function, naming the typical mistake (``mistakes(**case)``) an answer reproduces."""
    check_function(candidate, reference, cases, name=name, rtol=rtol, atol=atol,
                   mistakes=lambda **case: {f"it looks like you {why}.": wrong
                                            for why, wrong in mistakes(**case).items()})


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
    _run(candidate, _reference_psnr, _psnr_mistakes, cases, "your psnr")
    print("One PSNR per image, in dB of R²/MSE: the convention scikit-image and the papers use.")


def check_mmd2(candidate: Callable) -> None:
    """Check ``candidate(x, y, bandwidth) -> float``: the unbiased MMD² with an RBF kernel."""
    g = torch.Generator().manual_seed(88)
    cases = [
        {"x": torch.randn(30, 2, generator=g, dtype=torch.float64),
         "y": torch.randn(40, 2, generator=g, dtype=torch.float64) + 0.5, "bandwidth": 1.0},
        {"x": torch.randn(25, 3, generator=g, dtype=torch.float64),
         "y": torch.randn(25, 3, generator=g, dtype=torch.float64), "bandwidth": 2.0},
    ]
    _run(candidate, _reference_mmd2, _mmd_mistakes, cases, "your mmd2")
    print("Unbiased: averaged over many draws from one distribution it is 0, not positive.")
