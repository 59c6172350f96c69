"""Linear combinations of batch tensors in the fewest elementwise operations.

A sampler's update is linear in the tensors of its step: the state x, the denoiser's output
D(x, σ) = c_skip x + c_out F (F the network's output, {cite}`karras2022`) and fresh noise z.
Written term by term (first D, then the update) it costs an operation per coefficient; collected
first, w_x x + w_D D = (w_x + w_D c_skip) x + w_D c_out F costs one ``torch.add`` (or one
``torch.lerp``), plus a scaling only when no weight is 1. That is the whole hot-path trick of the
samplers: D is handed over as its parts (:class:`Affine`) and folded into the update by
:func:`mix`. The functions are plain branches on Python floats: they run at every step, where a
microsecond of Python counts as much as an elementwise operation.

Notation (code → symbol): ``c_skip``, ``c_out`` the preconditioning coefficients at the step's σ ·
``x`` the denoiser's input x_σ · ``F`` the network output · ``D`` D(x, σ).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["Affine", "lin2", "lin3", "mix"]

_TOL = 1e-12  # a weight within this of 1 counts as 1 (a sum of roundings, not a modelling choice)


class Affine(NamedTuple):
    """D = c_skip · x + c_out · F, kept as its parts (c_skip, c_out Python floats)."""

    c_skip: float
    x: torch.Tensor
    c_out: float
    F: torch.Tensor

    def value(self) -> torch.Tensor:
        """The tensor D itself (what a callback or a history of x̂₀'s needs)."""
        return lin2(self.c_skip, self.x, self.c_out, self.F)


def lin2(wa: float, a: torch.Tensor, wb: float, b: torch.Tensor) -> torch.Tensor:
    """wa·a + wb·b for two different tensors and float weights, in one elementwise operation when
    a weight is 0 or 1 or the weights sum to 1, else two. May return ``a`` or ``b`` itself (a weight
    of 0 and one of 1); never modifies its inputs."""
    if wa == 0.0:
        return b if abs(wb - 1.0) <= _TOL else b * wb
    if wb == 0.0:
        return a if abs(wa - 1.0) <= _TOL else a * wa
    if abs(wa - 1.0) <= _TOL:
        return torch.add(a, b, alpha=wb)
    if abs(wb - 1.0) <= _TOL:
        return torch.add(b, a, alpha=wa)
    if abs(wa + wb - 1.0) <= _TOL:
        return torch.lerp(a, b, wb)                                  # (1 − wb) a + wb b
    if abs(wa) >= abs(wb):                                           # |ratio| ≤ 1: no overflow
        return torch.add(a, b, alpha=wb / wa).mul_(wa)
    return torch.add(b, a, alpha=wa / wb).mul_(wb)


def lin3(wa: float, a: torch.Tensor, wb: float, b: torch.Tensor, wc: float,
         c: torch.Tensor) -> torch.Tensor:
    """wa·a + wb·b + wc·c for three different tensors: two elementwise operations when two
    weights sum to 1 (a lerp, then an add) or a weight is 0 or 1, else three."""
    if wc == 0.0:
        return lin2(wa, a, wb, b)
    if wa == 0.0:
        return lin2(wb, b, wc, c)
    if wb == 0.0:
        return lin2(wa, a, wc, c)
    if abs(wa + wb - 1.0) <= _TOL or abs(wc - 1.0) <= _TOL:   # one op for (a, b), one to add c
        return torch.add(lin2(wa, a, wb, b), c, alpha=wc)
    if abs(wa + wc - 1.0) <= _TOL or abs(wb - 1.0) <= _TOL:
        return torch.add(lin2(wa, a, wc, c), b, alpha=wb)
    return torch.add(lin2(wb, b, wc, c), a, alpha=wa)


def mix(wx: float, x: torch.Tensor, wd: float, D: torch.Tensor | Affine,
        also: tuple[float, torch.Tensor] | None = None) -> torch.Tensor:
    """wx·x + wd·D (+ w·y for ``also=(w, y)``) for x and the denoiser's output D at x: a tensor,
    or an :class:`Affine` of x (then (wx + wd c_skip)·x + wd c_out·F, D never formed)."""
    if type(D) is Affine:
        if D.x is not x:
            raise ValueError("mix(wx, x, wd, D): D must be the denoiser's output at this x")
        wx, wd, D = wx + wd * D.c_skip, wd * D.c_out, D.F
    if also is None:
        return lin2(wx, x, wd, D)
    return lin3(wx, x, wd, D, *also)
