"""Seeding, devices, broadcasting and input validation shared by every module.

Notation: ``x`` a batch of samples with the batch on dim 0; ``sigma`` a noise level per sample
(shape ``(B,)``) or a scalar.
"""

from __future__ import annotations

import math
import random
from numbers import Real

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "get_device",
    "append_dims",
    "as_sigma",
    "check_finite",
    "check_shape",
    "check_int",
    "check_positive",
    "check_generator",
    "check_alpha_bar",
    "NotAnIntError",
]


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, numpy and torch, and return a fresh ``torch.Generator`` seeded with ``seed``.

    Notebooks call this once at the top; package functions never touch global RNG state and take
    an explicit ``generator`` instead.
    """
    check_int(seed, "seed")
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


class NotAnIntError(TypeError, ValueError):
    """An integer argument that is not an int (e.g. ``steps=2.5``, ``n=True``).

    Both a ``TypeError`` and a ``ValueError``, so code written to catch either catches it.
    """


def check_int(value: object, name: str, *, minimum: int | None = None, what: str = "") -> int:
    """Return ``value`` if it is an int (not a bool) >= ``minimum``; else raise naming the fix.

    The one integer check of the package: counts of steps, samples, seeds. ``what`` says what the
    number counts ("the number of forward steps").
    """
    about = f" ({what})" if what else ""
    want = "an int" if minimum is None else f"an int >= {minimum}" + \
        {0: " (a non-negative int)", 1: " (a positive int)"}.get(minimum, "")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        hint = f"; use {name}={int(value)}" if isinstance(value, float) and value.is_integer() else ""
        raise NotAnIntError(f"{name} must be {want}{about}, got {value!r} "
                            f"({type(value).__name__}){hint}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {want}{about}, got {value}")
    return int(value)


def check_generator(generator: object, name: str = "generator") -> None:
    """Raise ``TypeError`` unless ``generator`` is a ``torch.Generator`` or ``None``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {generator!r}; pass "
                        f"{name}=torch.Generator().manual_seed({generator!r}) to seed it"
                        if isinstance(generator, int) else
                        f"{name} must be a torch.Generator or None, got {type(generator).__name__}")


def check_alpha_bar(alpha_bar: torch.Tensor, what: str = "") -> None:
    """Raise ``ValueError`` unless every ᾱ lies in (0, 1] (the one ᾱ check of the package)."""
    if not bool(torch.all((alpha_bar > 0) & (alpha_bar <= 1))):
        raise ValueError(f"alpha_bar must lie in (0, 1]{' ' + what if what else ''}; index a "
                         "schedule with t - 1 for step t (alpha_bars[0] is step 1)")


def check_positive(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a finite real number > 0; else raise naming it."""
    if not isinstance(value, Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)
