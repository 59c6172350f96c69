"""Checkers for chapter 16, "The practitioner's workflow".

| exercise | learner writes | reference |
|---|---|---|
| ``check_combine_gradients`` | ``combine_gradients(grads, sizes)`` | g = Σ_r n_r g_r / Σ_r n_r |
| ``check_to_pixels`` | ``to_pixels(x)`` | p = round(255 · (clip(x, −1, 1) + 1) / 2) |
| ``check_near_copy_share`` | ``near_copy_share(gen, train, heldout)`` | share of ρ(y) < 1/3 |
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..metrics import memorisation_ratios
from .core import ExerciseError, check_function, to_numpy

__all__ = ["check_combine_gradients", "check_to_pixels", "check_near_copy_share",
           "combine_gradients_reference", "to_pixels_reference", "near_copy_share_reference"]


def combine_gradients_reference(grads: list[torch.Tensor], sizes: list[int]) -> torch.Tensor:
    """The full-batch gradient from per-shard gradients of *mean* losses: Σ_r n_r g_r / Σ_r n_r.

    Process r holds n_r samples and the gradient g_r of its mean loss; the mean loss over all
    N = Σ n_r samples is Σ_r (n_r/N) L_r, so its gradient weights each shard by its share.
    """
    n = torch.as_tensor(sizes, dtype=grads[0].dtype)
    return (torch.stack(grads) * n.reshape(-1, *[1] * grads[0].ndim)).sum(0) / n.sum()


def check_combine_gradients(combine_gradients: Callable) -> None:
    """Check ``combine_gradients(grads, sizes)`` against autograd on shards of unequal size."""
    g = torch.Generator().manual_seed(16)
    cases = []
    for sizes in ([5, 3], [2, 7, 4], [6, 1, 1, 8]):
        w = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
        x = torch.randn(sum(sizes), 3, generator=g, dtype=torch.float64)
        y = torch.randn(sum(sizes), generator=g, dtype=torch.float64)
        grads = [torch.autograd.grad(((xs @ w - ys) ** 2).mean(), w)[0]  # each shard's mean loss
                 for xs, ys in zip(x.split(sizes), y.split(sizes))]
        cases.append(dict(grads=grads, sizes=sizes))
    hints = {
        "value": "each g_r is the gradient of a *mean* over n_r samples; the full-batch mean counts "
                 "every sample once, so weight each shard by n_r / sum(sizes). A plain average of "
                 "the g_r is right only when all shards are equally large (what DDP assumes).",
        "scale": "off by a constant factor: did you sum instead of average, or divide by the number "
                 "of processes instead of the number of samples?",
        "shape": "return one gradient shaped like each g_r, not one per process.",
        "exception": "grads is a list of tensors: torch.stack(grads) gives (W, ...), and sizes "
                     "needs to become a tensor to broadcast against it.",
    }
    check_function(combine_gradients, combine_gradients_reference, cases, name="combine_gradients",
                   atol=1e-10, rtol=1e-8, hints=hints)


def to_pixels_reference(x: torch.Tensor) -> torch.Tensor:
    """Model space [−1, 1] → pixel values 0…255: p = round(255 · (clip(x, −1, 1) + 1) / 2)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round()


def check_to_pixels(to_pixels: Callable) -> None:
    """Check ``to_pixels(x)`` on samples that overshoot [−1, 1], as real samplers' outputs do."""
    g = torch.Generator().manual_seed(17)
    cases = [dict(x=torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64) * s) for s in (0.5, 1.2, 2.0)]
    check_function(to_pixels, to_pixels_reference, cases, name="to_pixels", compare=_compare_pixels)


def _compare_pixels(got, want, *, context: str) -> None:
    """Name the one step that is missing: rounding, the scale 255/2, the +1, or the clipping."""
    g, w = to_numpy(got, "to_pixels"), to_numpy(want, "the reference")
    fail = lambda why: ExerciseError(f"to_pixels {why} {context}.")  # noqa: E731
    if g.shape != w.shape:
        raise fail(f"has shape {g.shape}, expected {w.shape}: keep the shape of x; one pixel value "
                   "per entry")
    if (abs(g - w) < 1e-9).all():
        return
    if (abs(g - g.round()) > 1e-6).any():
        raise fail("returns values between whole pixel levels: round to whole pixel values "
                   "(torch.round) as the last step")
    if (abs(g - 2 * w) <= 1).all():
        raise fail("is off by a constant factor of about 2: [-1, 1] is 2 wide and [0, 255] is 255 "
                   "wide, so multiply (x + 1) by 255/2")
    if (abs(g - (w - 127.5)) <= 1).all():
        raise fail("is off by a constant offset of about -127.5: x = -1 must give 0 and x = 1 must "
                   "give 255, so add 1 before scaling")
    if g.min() < 0 or g.max() > 255:
        raise fail(f"returns values from {g.min():.0f} to {g.max():.0f}, outside 0..255: samplers "
                   "overshoot [-1, 1], so clip x to [-1, 1] (x.clamp(-1, 1)) before mapping")
    raise fail("differs from the reference: map [-1, 1] to [0, 255] (solve x = 2p/255 - 1 for "
               "p), clip x to [-1, 1] first, and round to whole pixel values")


def near_copy_share_reference(gen: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor,
                              threshold: float = 1 / 3) -> torch.Tensor:
    """Share of samples y with ρ(y) = d(y, train)/d(y, held-out) < threshold {cite}`carlini2023`."""
    return (memorisation_ratios(gen, train, heldout) < threshold).double().mean()


def check_near_copy_share(near_copy_share: Callable) -> None:
    """Check ``near_copy_share(gen, train, heldout)`` on sets where some samples copy training points."""
    g = torch.Generator().manual_seed(18)
    cases = []
    for n_copies in (3, 6, 10):
        train = torch.randn(30, 4, generator=g, dtype=torch.float64)
        heldout = torch.randn(30, 4, generator=g, dtype=torch.float64)
        fresh = torch.randn(20 - n_copies, 4, generator=g, dtype=torch.float64)
        copies = train[:n_copies] + 0.01 * torch.randn(n_copies, 4, generator=g, dtype=torch.float64)
        cases.append(dict(gen=torch.cat([copies, fresh]), train=train, heldout=heldout))
    check_function(near_copy_share, near_copy_share_reference, cases, name="near_copy_share",
                   compare=_compare_share)


def _compare_share(got, want, *, context: str) -> None:
    g, w = to_numpy(got, "near_copy_share"), to_numpy(want, "the reference")
    if g.size != 1:
        raise ExerciseError(f"near_copy_share returned shape {g.shape} {context}: return one "
                            "number for the whole set (the share of near copies)")
    g, w = float(g), float(w)
    if abs(g - w) < 1e-12:
        return
    if g > 1:
        raise ExerciseError(f"near_copy_share returned {g:g} {context}, more than 1: return a "
                            "share between 0 and 1 (the mean of a boolean), not a count")
    raise ExerciseError(
        f"near_copy_share returned {g:.4g}, expected {w:.4g} {context}. For each generated y take "
        "the distance to its nearest training point and to its nearest held-out point "
        "(torch.cdist(...).min(dim=1)); rho = d_train / d_heldout and a near copy has rho < 1/3: "
        "check which distance goes on top.")
