"""Mode coverage on a Gaussian mixture: which modes does a sampler reach, and with what weights?

The exact oracle knows every mode. A sample is assigned to its most responsible component k
(the largest r_k(x), chapter 4) if it lies within ``max_mahalanobis`` standard deviations of that
component's mean; otherwise it is *off-mode* (a sample between modes, or far away). Then

    n_k = number of samples assigned to k,   ŵ_k = n_k / n   (off-mode samples count in n)
    mode k is covered   ⇔   n_k ≥ min_fraction · n · w_k
    weight error        = ½ Σ_k |ŵ_k − w_k| + ½ · off-mode rate   (total variation, off-mode as a bin)

Notation (code → symbol): ``mixture`` the true law p = Σ_k w_k N(μ_k, Σ_k) · ``x`` samples ·
``counts`` n_k · ``weights`` w_k.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .mixtures import GaussianMixture
from .metrics import as_points

__all__ = ["ModeCoverage", "mode_counts", "mode_coverage"]


@dataclass(frozen=True)
class ModeCoverage:
    covered: int  # modes with at least min_fraction of their expected count
    n_modes: int  # K
    weight_error: float  # total variation between (ŵ, off-mode rate) and (w, 0), in [0, 1]
    off_mode_rate: float  # share of samples near no mode
    counts: tuple[int, ...]  # n_k per mode

    def __str__(self) -> str:
        return (f"{self.covered}/{self.n_modes} modes, weight error {self.weight_error:.3f}, "
                f"off-mode {self.off_mode_rate:.1%}")


def mode_counts(mixture: GaussianMixture, x, *, max_mahalanobis: float = 3.0
                ) -> tuple[torch.Tensor, int]:
    """(n_k for each mode ``(K,)``, number of off-mode samples) for samples ``x`` of shape (n, d)."""
    if not max_mahalanobis > 0:
        raise ValueError(f"max_mahalanobis must be > 0, got {max_mahalanobis}")
    pts = as_points(x, "x")
    if pts.shape[1] != mixture.dim:
        raise ValueError(f"samples have {pts.shape[1]} dimensions but the mixture has {mixture.dim}")
    k = mixture.responsibilities(pts, 0.0).argmax(dim=1)  # (n,)
    mu = mixture.means.to(pts)[k]  # (n, d)
    var = mixture.variances.to(pts)
    var = (var[:, None].expand(-1, mixture.dim) if var.ndim == 1 else var)[k]  # (n, d)
    dist = ((pts - mu) ** 2 / var).sum(1).sqrt()  # Mahalanobis distance to the assigned mode
    near = dist <= max_mahalanobis
    counts = torch.bincount(k[near], minlength=mixture.n_components)
    return counts, int((~near).sum())


def mode_coverage(mixture: GaussianMixture, x, *, min_fraction: float = 0.25,
                  max_mahalanobis: float = 3.0) -> ModeCoverage:
    """Covered modes, weight error and off-mode rate of samples ``x`` against ``mixture``."""
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    counts, off = mode_counts(mixture, x, max_mahalanobis=max_mahalanobis)
    n = int(counts.sum()) + off
    w = mixture.weights.to(torch.float64)
    w_hat = counts.to(torch.float64) / n
    covered = int((counts.to(torch.float64) >= min_fraction * n * w).sum())
    tv = 0.5 * float((w_hat - w).abs().sum()) + 0.5 * off / n
    return ModeCoverage(covered, mixture.n_components, tv, off / n, tuple(int(c) for c in counts))
