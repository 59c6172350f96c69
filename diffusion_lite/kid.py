"""Kernel inception distance (KID): an unbiased kernel two-sample statistic on features {cite}`binkowski2018`.

KID is the unbiased MMD² between real and generated feature sets with the cubic polynomial kernel

    k(a, b) = (aᵀb / d + 1)³        (d = feature dimension)

averaged over random subsets of equal size m. Unlike the Fréchet distance it is unbiased (its
expected value is 0 when both sets come from the same law, whatever m), so values from different
sample sizes can be compared and a small negative value is pure noise. The course computes it on the
digit classifier's features (:func:`diffusion_lite.metrics.extract_features`).

| code name | symbol | meaning |
|---|---|---|
| ``real``, ``gen`` | φ(x), φ(y) | feature sets ``(n, d)``, ``(n', d)`` |
| ``subset_size`` | m | samples per subset (capped at the smaller set) |
| ``n_subsets`` | S | number of random subset pairs averaged |

The cubic kernel suits features of order one per coordinate (Inception's pooled activations). Raw
ReLU features of a small classifier can be tens of units, and then (aᵀb/d + 1)³ is dominated by a
few large products and the estimate's spread explodes; :func:`standardiser` fixes one per-coordinate
scale from a reference set (the training digits) before KID is computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .metrics import Estimate, _pair, extract_features
from .utils import check_int

__all__ = ["polynomial_mmd2", "kid", "feature_kid", "standardiser"]


def polynomial_mmd2(real: torch.Tensor, gen: torch.Tensor, *, degree: int = 3,
                    coef: float = 1.0) -> float:
    """Unbiased MMD² with k(a, b) = (aᵀb/d + coef)^degree (U-statistic: diagonals excluded)."""
    x, y = _pair(real, gen, min_n=2)
    check_int(degree, "degree", minimum=1)
    if not math.isfinite(coef):
        raise ValueError(f"coef must be finite, got {coef}")
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + coef) ** degree for a, b in ((x, x), (y, y), (x, y)))
    n, m = len(x), len(y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid(real, gen, *, subset_size: int = 1000, n_subsets: int = 100, degree: int = 3,
        level: float = 0.95, generator: torch.Generator | None = None) -> Estimate:
    """KID: the mean of :func:`polynomial_mmd2` over ``n_subsets`` random subset pairs of size m.

    Returns an :class:`~diffusion_lite.metrics.Estimate` whose ``se`` is the standard deviation
    over subsets (what Bińkowski et al. and torchmetrics report). Subsets overlap, so this spread
    describes one size-m estimate and is a conservative error bar for the mean.
    """
    from scipy.stats import norm

    x, y = _pair(real, gen, min_n=2)
    check_int(subset_size, "subset_size", minimum=2)
    check_int(n_subsets, "n_subsets", minimum=1)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    m = min(subset_size, len(x), len(y))
    values = []
    for _ in range(n_subsets):
        ix = torch.randperm(len(x), generator=generator)[:m]
        iy = torch.randperm(len(y), generator=generator)[:m]
        values.append(polynomial_mmd2(x[ix], y[iy], degree=degree))
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1)) if n_subsets > 1 else float("nan")
    z = float(norm.ppf((1 + level) / 2))
    return Estimate(mean, mean - z * se, mean + z * se, se, level)


def feature_kid(feature_net: Callable[[torch.Tensor], torch.Tensor], real, gen, *,
                batch_size: int = 512, **kwargs) -> Estimate:
    """KID between two image sets on the features of ``feature_net`` (e.g. the digit classifier)."""
    return kid(extract_features(feature_net, real, batch_size=batch_size),
               extract_features(feature_net, gen, batch_size=batch_size), **kwargs)


def standardiser(reference: torch.Tensor, eps: float = 1e-6) -> Callable[[torch.Tensor], torch.Tensor]:
    """z(f) = (f − μ)/s with μ, s the per-coordinate mean and std of ``reference`` ``(n, d)``.

    Fit it once, on a set that is neither of the two being compared (e.g. the training split), so
    the kernel is the same for every comparison.
    """
    ref = torch.as_tensor(reference).double()
    if ref.ndim != 2 or len(ref) < 2:
        raise ValueError(f"reference must be features (n >= 2, d), got shape {tuple(ref.shape)}")
    mu, sd = ref.mean(0), ref.std(0) + eps
    return lambda f: (torch.as_tensor(f).double() - mu) / sd
