"""Seeding, devices, broadcasting and input validation shared by every module.

Notation: ``x`` a batch of samples with the batch on dim 0; ``sigma`` a noise level per sample
(shape ``(B,)``) or a scalar.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "get_device",
    "append_dims",
    "as_sigma",
    "check_finite",
    "check_shape",
]


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, numpy and torch, and return a fresh ``torch.Generator`` seeded with ``seed``.

    Notebooks call this once at the top; package functions never touch global RNG state and take
    an explicit ``generator`` instead.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: ``cuda``, then ``mps``, then ``cpu`` (or ``prefer`` if given)."""
    if prefer is not None:
        device = torch.device(prefer)
        mps = getattr(torch.backends, "mps", None)
        available = {"cpu": True, "cuda": torch.cuda.is_available(),
                     "mps": mps is not None and mps.is_available()}
        if not available.get(device.type, False):
            raise ValueError(f"prefer={prefer!r} but no {device.type.upper()} device is available here; "
                             "use prefer=None (best available) or 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def append_dims(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append trailing singleton dims so a per-sample ``(B,)`` tensor broadcasts against ``(B, ...)``.

    The one broadcasting helper: the same sampler code then serves 2D points ``(B, 2)`` and images
    ``(B, C, H, W)``.
    """
    missing = ndim - t.ndim
    if missing < 0:
        raise ValueError(f"tensor has {t.ndim} dims, more than the target {ndim}")
    return t.reshape(*t.shape, *([1] * missing))


def as_sigma(sigma: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Turn a scalar or ``(B,)`` noise level into a ``(B,)`` tensor on ``x``'s device and dtype."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(x.shape[0])
    if sigma.shape != (x.shape[0],):
        raise ValueError(
            f"sigma must be a scalar or have shape (batch,) = ({x.shape[0]},), got {tuple(sigma.shape)}"
        )
    if torch.any(sigma < 0) or not torch.all(torch.isfinite(sigma)):
        raise ValueError("sigma must be finite and >= 0")
    return sigma


def check_finite(x: torch.Tensor | np.ndarray, name: str = "x") -> None:
    """Raise ``ValueError`` naming the fix if ``x`` holds NaN or infinite values."""
    bad = ~torch.isfinite(torch.as_tensor(x))
    if bool(bad.any()):
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN/inf values; check the step size or the inputs "
            "that produced it"
        )


def check_shape(x: torch.Tensor | np.ndarray, shape: tuple, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x.shape`` matches ``shape`` (``None`` entries match anything)."""
    got = tuple(x.shape)
    if len(got) != len(shape) or any(s is not None and g != s for g, s in zip(got, shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {got}")
