"""Data sets of the course: 2D toy distributions and scikit-learn's bundled 8×8 digits.

Every sampler takes ``generator: torch.Generator | None`` and returns float32 tensors (pass
``dtype=`` for another one). Nothing is downloaded: the digits ship inside scikit-learn.

| code name  | symbol | meaning                                                       |
|------------|--------|---------------------------------------------------------------|
| ``x0``     | x_0    | data samples, shape ``(n, 2)`` for 2D sets, ``(N, 1, 8, 8)`` digits |
| ``n``      | n      | number of samples drawn                                        |
| ``noise``  | —      | std of the Gaussian jitter added to a toy set (not the diffusion noise) |
| ``labels`` | y      | digit classes 0–9, shape ``(N,)``, int64                        |

The digits train/test split is fixed, stratified and independent of any random state: in
``sklearn.datasets.load_digits()`` (1797 images), every 5th image *of each class* (the 5th, 10th,
… occurrence of that digit, in the bundled order) is a **test** image (355 images, 34–36 per
class); the other 1442 are **train** images. Pixels (0–16) are mapped to [−1, 1] by ``x/8 − 1``.
"""

from __future__ import annotations

import math

import torch

from .utils import check_generator, check_int

__all__ = ["TOY_2D", "moons", "swiss_roll", "checkerboard", "gaussian_ring", "gaussian_grid",
           "make_2d", "load_digits", "DIGITS_TEST_EVERY"]

DIGITS_TEST_EVERY = 5  # every 5th image of each class is a test image


def _check_n(n: int) -> None:
    check_int(n, "n", minimum=1, what="the number of samples")


def _rand(n: int, generator: torch.Generator | None) -> torch.Tensor:
    check_generator(generator)
    return torch.rand(n, generator=generator, dtype=torch.float64)


def _jitter(x: torch.Tensor, noise: float, generator: torch.Generator | None) -> torch.Tensor:
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    return x + noise * torch.randn(x.shape, generator=generator, dtype=torch.float64)


def moons(n: int, *, noise: float = 0.05, generator: torch.Generator | None = None,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Two interleaved half circles, centred and scaled to about unit spread, shape ``(n, 2)``.

    Upper moon (cos θ, sin θ), lower moon (1 − cos θ, 1/2 − sin θ), θ ~ U[0, π], each with
    probability 1/2, plus N(0, noise²) jitter; returned as (x − (1/2, 1/4))/0.85 (mean ≈ 0).
    """
    _check_n(n)
    upper = _rand(n, generator) < 0.5  # which moon, probability 1/2 each
    theta = math.pi * _rand(n, generator)
    x = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)  # (n, 2)
    lower = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], dim=1)
    x = torch.where(upper[:, None], x, lower)
    x = _jitter(x, noise, generator)
    return ((x - torch.tensor([0.5, 0.25], dtype=torch.float64)) / 0.85).to(dtype)


def swiss_roll(n: int, *, noise: float = 0.05, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A 2D spiral: s ~ 1.5π(1 + 2u), u ~ U[0, 1], x = (s cos s, s sin s)/5 plus jitter, ``(n, 2)``."""
    _check_n(n)
    s = 1.5 * math.pi * (1 + 2 * _rand(n, generator))
    x = torch.stack([s * torch.cos(s), s * torch.sin(s)], dim=1) / 5.0  # (n, 2)
    return _jitter(x, noise, generator).to(dtype)


def checkerboard(n: int, *, squares: int = 4, size: float = 4.0,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform points on the dark squares of a ``squares × squares`` board of side ``size``
    centred at 0, shape ``(n, 2)``. A square (i, j) is dark when i + j is even."""
    _check_n(n)
    if squares < 2 or squares % 2:
        raise ValueError(f"squares must be an even int >= 2, got {squares}")
    cell = size / squares
    n_dark = squares * squares // 2
    k = torch.randint(0, n_dark, (n,), generator=generator)  # which dark square
    i = k // (squares // 2)                                   # row 0..squares-1
    j = 2 * (k % (squares // 2)) + (i % 2)                    # column with i + j even
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    x = torch.stack([j, i], dim=1).to(torch.float64) + u      # (n, 2) in board units
    return (x * cell - size / 2).to(dtype)


def gaussian_ring(n: int, *, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float32, **params) -> torch.Tensor:
    """Samples of ``mixtures.ring(**params)`` (Gaussians evenly spaced on a circle), ``(n, 2)``.

    The exact density, score and optimal denoiser of this set come from the same mixture.
    """
    from . import mixtures
    _check_n(n)
    return mixtures.ring(**params).sample(n, generator=generator).to(dtype)


def gaussian_grid(n: int, *, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float32, **params) -> torch.Tensor:
    """Samples of ``mixtures.grid(**params)`` (Gaussians on a square grid), shape ``(n, 2)``."""
    from . import mixtures
    _check_n(n)
    return mixtures.grid(**params).sample(n, generator=generator).to(dtype)


_TOYS = {"moons": moons, "swiss_roll": swiss_roll, "checkerboard": checkerboard,
         "ring": gaussian_ring, "grid": gaussian_grid}
TOY_2D = tuple(_TOYS)


def make_2d(name: str, n: int, *, generator: torch.Generator | None = None, **params) -> torch.Tensor:
    """``n`` samples of the 2D toy set ``name`` (one of :data:`TOY_2D`), shape ``(n, 2)``."""
    if name not in _TOYS:
        raise ValueError(f"unknown 2D data set {name!r}; choose one of {TOY_2D}")
    return _TOYS[name](n, generator=generator, **params)


def load_digits(split: str = "train", *, dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8×8 digits {cite}`pedregosa2011` as ``(images, labels)``.

    images: ``(N, 1, 8, 8)`` in [−1, 1] (x = pixel/8 − 1); labels: ``(N,)`` int64.
    ``split`` is ``"train"`` (1442 images), ``"test"`` (355: every 5th image of each class, in
    scikit-learn's order) or ``"all"`` (1797). The split is fixed, so every chapter sees the same
    images.
    """
    splits = ("train", "test", "all")
    if split not in splits:
        raise ValueError(f"unknown split {split!r}; choose one of {splits}")
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()  # bundled with scikit-learn: no download
    images = torch.as_tensor(bunch.images, dtype=torch.float64)[:, None]  # (1797, 1, 8, 8)
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)             # (1797,)
    # rank of each image among the images of its class: 0, 1, 2, ... in the bundled order
    onehot = torch.nn.functional.one_hot(labels, 10)                     # (1797, 10)
    rank = ((onehot.cumsum(0) - 1) * onehot).sum(1)                       # (1797,)
    is_test = rank % DIGITS_TEST_EVERY == DIGITS_TEST_EVERY - 1
    keep = {"train": ~is_test, "test": is_test, "all": torch.ones_like(is_test)}[split]
    images = (images[keep] / 8.0 - 1.0).to(dtype=dtype, device=device)
    return images, labels[keep].to(device)
