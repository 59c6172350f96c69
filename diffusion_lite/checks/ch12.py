"""Checkers for chapter 12's exercises: patchify, the adaLN modulation, the non-local-means weight.

Each checker runs the learner's function on fixed random inputs (chosen so that every typical
mistake gives a *different* answer of the right shape and scale), recognises the mistake by
comparing with the wrong variants, and raises :class:`~diffusion_lite.checks.core.ExerciseError`
naming it: channels last or column-major tokens in patchify; scale and shift swapped, the missing
"1 +", or the shift applied before the scale in adaLN; a patch distance summed instead of
averaged, an unweighted average, h instead of h², or a missing clamp in non-local means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from diffusion_lite.checks.core import ExerciseError, check_function
from diffusion_lite.nets.transformer import modulate, patchify
from diffusion_lite.nonlocal_means import nlm_weight, patch_kernel

__all__ = ["check_patchify", "check_modulate", "check_nlm_weight"]


def _call(fn: Callable, name: str, **kwargs: Any) -> Any:
    try:
        return fn(**{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()})
    except NotImplementedError as exc:
        raise ExerciseError(f"{name} is not written yet: replace the `# your code here` stub.") from exc
    except Exception as exc:  # the learner's code crashed: say how, keep the traceback
        raise ExerciseError(f"{name} raised {type(exc).__name__}: {exc}.") from exc


def _same(got: Any, want: torch.Tensor, atol: float = 1e-6) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == want.shape
            and torch.allclose(got.to(want.dtype), want, atol=atol, rtol=1e-5))


# ------------------------------------------------------------------------------------------------
# Exercise 1: patchify
# ------------------------------------------------------------------------------------------------

def _patch_variants(x: torch.Tensor, p: int) -> dict[str, torch.Tensor]:
    """Wrong answers of the right shape, each with the diagnosis it deserves."""
    B, C, H, W = x.shape
    h, w = H // p, W // p
    six = x.reshape(B, C, h, p, w, p)  # (B, C, i, u, j, v)
    return {
        "channels last": six.permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, C * p * p),
        "column-major tokens": six.permute(0, 4, 2, 1, 3, 5).reshape(B, h * w, C * p * p),
        "transposed patches": six.permute(0, 2, 4, 1, 5, 3).reshape(B, h * w, C * p * p),
        "strided, not contiguous": x.reshape(B, C, p, h, p, w).permute(0, 3, 5, 1, 2, 4)
        .reshape(B, h * w, C * p * p),
    }


PATCH_HINTS = {
    "channels last": "each token's features must be ordered (channel, row in patch, column in "
                     "patch), as F.unfold does; you put the channel last, as DiT's code does. "
                     "Permute to (B, i, j, C, u, v) before the final reshape.",
    "column-major tokens": "tokens must run row by row over the patch grid (token = i·(W/p) + j); "
                           "yours run column by column. Put the patch-row axis i before j.",
    "transposed patches": "inside a patch, rows come before columns (u before v); your patches "
                          "are transposed.",
    "strided, not contiguous": "a patch is p×p *neighbouring* pixels; reshape H as (H/p, p) — "
                               "patch index first, position inside the patch second — not (p, H/p).",
}


def check_patchify(fn: Callable) -> None:
    """Check ``fn(x, p)`` cuts ``(B, C, H, W)`` into ``(B, N, C·p·p)`` tokens like ``F.unfold``."""
    name = "patchify"
    g = torch.Generator().manual_seed(12)
    cases = [(torch.randn(2, 3, 8, 8, generator=g), 2), (torch.randn(1, 2, 4, 6, generator=g), 2),
             (torch.randn(2, 2, 8, 8, generator=g), 4), (torch.randn(3, 1, 6, 4, generator=g), 2)]
    for x, p in cases:
        got, want = _call(fn, name, x=x, p=p), patchify(x, p)
        if not _same(got, want):
            for mistake, wrong in _patch_variants(x, p).items():
                if _same(got, wrong):
                    raise ExerciseError(f"{name}: {mistake} (for x of shape {tuple(x.shape)}, "
                                        f"p={p}).\nHint: {PATCH_HINTS[mistake]}")
    check_function(fn, patchify, [{"x": x, "p": p} for x, p in cases], name=name,
                   hints={"shape": "the result is (B, N, C·p·p) with N = (H/p)·(W/p) tokens.",
                          "value": "token n = i·(W/p) + j holds x[:, :, i·p:(i+1)·p, j·p:(j+1)·p] "
                                   "flattened in (channel, row, column) order."})


# ------------------------------------------------------------------------------------------------
# Exercise 2: the adaLN modulation
# ------------------------------------------------------------------------------------------------

def check_modulate(fn: Callable) -> None:
    """Check ``fn(h, shift, scale)`` = h ⊙ (1 + scale) + shift."""
    name = "modulate"
    g = torch.Generator().manual_seed(3)
    h = torch.randn(4, 16, 8, generator=g)  # (B, N, D)
    shift, scale = torch.randn(4, 1, 8, generator=g), 0.5 * torch.randn(4, 1, 8, generator=g)
    got = _call(fn, name, h=h, shift=shift, scale=scale)
    mistakes = {
        "uses the scale without the 1 +, so zero-initialised conditioning multiplies h by 0 and "
        "the block is no longer the identity at the start.\nHint: h·(1 + scale) + shift":
            h * scale + shift,
        "swaps scale and shift: the shift must be added, the scale multiplies.\nHint: "
        "h·(1 + scale) + shift": h * (1 + shift) + scale,
        "adds the shift before scaling, (h + shift)·(1 + scale).\nHint: scale first, then "
        "shift: h·(1 + scale) + shift": (h + shift) * (1 + scale),
        "returns h unchanged: the conditioning is ignored.\nHint: h·(1 + scale) + shift": h,
    }
    for message, wrong in mistakes.items():
        if _same(got, wrong) and not _same(got, modulate(h, shift, scale)):
            raise ExerciseError(f"{name} {message}")
    z = torch.zeros_like(shift)
    at_zero = _call(fn, name, h=h, shift=z, scale=z)
    if isinstance(at_zero, torch.Tensor) and at_zero.shape == h.shape and not _same(at_zero, h):
        raise ExerciseError(f"{name} must return h unchanged when shift = scale = 0 (that is what "
                            "makes adaLN-*Zero* blocks the identity at initialisation).")
    check_function(fn, modulate, [{"h": h, "shift": shift, "scale": scale},
                                  {"h": h[:2], "shift": -2 * shift[:2], "scale": scale[:2] ** 2}],
                   name=name, hints={"shape": "broadcast (B, 1, D) over the N tokens; do not "
                                     "reduce over any axis.",
                                     "value": "h·(1 + scale) + shift, elementwise."})


# ------------------------------------------------------------------------------------------------
# Exercise 3: the non-local-means weight
# ------------------------------------------------------------------------------------------------

def _weight_variants(patch_i: torch.Tensor, patch_j: torch.Tensor, h: float, sigma: float
                     ) -> dict[str, torch.Tensor]:
    a, b, s = patch_i, patch_j, patch_i.shape[-1]
    gk = patch_kernel(s, 1.0, dtype=a.dtype)  # g / Σg
    g = gk / gk[s // 2, s // 2]  # the unnormalised window, g_0 = 1
    sq = (a - b) ** 2
    mean = (gk * sq).sum()
    return {
        "sum": torch.exp(-((g * sq).sum() - 2 * sigma**2).clamp_min(0) / h**2),
        "uniform": torch.exp(-(sq.mean() - 2 * sigma**2).clamp_min(0) / h**2),
        "h": torch.exp(-(mean - 2 * sigma**2).clamp_min(0) / h),
        "clamp": torch.exp(-(mean - 2 * sigma**2) / h**2),
        "sigma": torch.exp(-mean / h**2),
        "sigma2": torch.exp(-(mean - sigma**2).clamp_min(0) / h**2),
    }


WEIGHT_HINTS = {
    "sum": "the patch distance is a weighted *mean*: divide Σ g_u (Δ_u)² by Σ g_u (your weights "
           "shrink as the patch grows instead of measuring a per-pixel difference).",
    "uniform": "the mean over the patch is weighted by the Gaussian window g_u = exp(−‖u‖²/2A²), "
               "A = (s − 1)/4, not a plain average.",
    "h": "divide the distance by h², not h: h is a distance in grey levels, d² a squared one.",
    "clamp": "clamp d² − 2σ² at 0 before the exponential: a weight may not exceed 1 (two noisy "
             "copies of one patch are already as similar as they can be).",
    "sigma": "subtract 2σ², the squared distance two noisy copies of the same patch have on average.",
    "sigma2": "subtract 2σ², not σ²: both patches carry noise of variance σ².",
}


def check_nlm_weight(fn: Callable) -> None:
    """Check ``fn(patch_i, patch_j, h, sigma)`` = exp(−max(d² − 2σ², 0)/h²) for s×s patches."""
    name = "nlm_weight"
    g = torch.Generator().manual_seed(5)
    cases = []
    for s, h, sigma, noise in ((5, 0.6, 0.15, 0.4), (3, 0.8, 0.2, 0.35), (7, 0.5, 0.1, 0.2),
                               (5, 0.9, 0.3, 0.25)):
        a = torch.randn(s, s, generator=g, dtype=torch.float64)
        cases.append({"patch_i": a, "patch_j": a + noise * torch.randn(s, s, generator=g,
                                                                        dtype=torch.float64),
                      "h": h, "sigma": sigma})
    # A pair of near-identical patches: d² < 2σ², so only the clamp keeps the weight at 1.
    a = torch.randn(5, 5, generator=g, dtype=torch.float64)
    cases.append({"patch_i": a, "patch_j": a + 0.01, "h": 0.5, "sigma": 0.2})
    for case in cases:
        got, want = _call(fn, name, **case), nlm_weight(**case)
        where = f"for s={case['patch_i'].shape[-1]}, h={case['h']}, σ={case['sigma']}"
        if got is None:
            raise ExerciseError(f"{name} returned None ({where}). Did you forget `return`?")
        try:
            got = torch.as_tensor(got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ExerciseError(f"{name} returned a {type(got).__name__}, not a number.") from exc
        if got.ndim != 0:
            raise ExerciseError(f"{name} returned shape {tuple(got.shape)} ({where}); return one "
                                "number (a 0-d tensor) per pair of patches: sum over both axes.")
        if _same(got, want, atol=1e-9):
            continue
        for mistake, wrong in _weight_variants(**case).items():
            if not torch.isclose(wrong, want) and _same(got, wrong, atol=1e-9):
                raise ExerciseError(f"{name} ({where}): wrong normalisation or formula.\n"
                                    f"Hint: {WEIGHT_HINTS[mistake]}")
        raise ExerciseError(f"{name} gives {float(got):.6g} ({where}); expected {float(want):.6g}."
                            "\nHint: w = exp(−max(d² − 2σ², 0)/h²) with d² = Σ g_u Δ_u² / Σ g_u.")
    print(f"✓ {name} is correct on {len(cases)} pairs of patches.")
