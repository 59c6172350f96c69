"""Mode coverage on a Gaussian mixture: which modes does a sampler reach, and with what weights?

The exact oracle knows every mode. A sample is assigned to its most responsible component k
(the largest r_k(x), chapter 4) if it lies within ``max_mahalanobis`` standard deviations of that
component's mean; otherwise it is *off-mode* (a sample between modes, or far away). Then

    n_k = number of samples assigned to k,   ŵ_k = n_k / n   (off-mode samples count in n)
    mode k is covered   ⇔   n_k ≥ min_fraction · n · w_k
    weight error        = ½ Σ_k |ŵ_k − w_k| + ½ · off-mode rate   (total variation, off-mode as a bin)

A count cannot see a mode that is collapsed to a point or twice too wide. :func:`mixture_fit`
can: it tests samples against the exact law with per-sample statistics whose expectations under
p are known, using the responsibilities r_k(x) = P(k | x) at σ = 0 (for x ~ p,
E[r_k(x) g(x)] = w_k E[g(x) | k], overlap included):

    E r_k = w_k                                 (per-mode weights)
    E r_k (x − μ_k)_i / √v_ki = 0               (per-mode means)
    E r_k (x − μ_k)_i (x − μ_k)_j / √(v_ki v_kj) = w_k δ_ij      (per-mode covariances)
    E Σ_k r_k ‖(x − μ_k)/√v_k‖² / d = 1         (pooled spread)
    E log p(x) = −H(p)                           (two-sided likelihood; H from a reference draw)

Each sample mean gives z = (mean − expectation)/standard error, the standard error taken under p
(from a reference draw of the oracle); the fit is rejected when max |z| exceeds the Bonferroni
threshold for a family-wise false-rejection rate ``alpha``.

Notation (code → symbol): ``mixture`` the true law p = Σ_k w_k N(μ_k, Σ_k) · ``x`` samples ·
``counts`` n_k · ``weights`` w_k · ``resp`` r_k(x) · ``spread`` recovered variance ÷ true
variance per mode · ``z`` standardised gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import torch

from .mixtures import GaussianMixture
from .metrics import as_points

__all__ = ["ModeCoverage", "mode_counts", "mode_coverage", "MixtureFit", "mixture_fit"]


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


@dataclass(frozen=True)
class MixtureFit:
    passed: bool  # max |z| below the threshold: no statistic tells the samples from p
    max_abs_z: float  # the largest standardised gap
    threshold: float  # Bonferroni critical value for the family-wise level alpha
    worst: str  # the statistic with the largest |z|, e.g. "spread of mode 3"
    weights: tuple[float, ...]  # recovered weights ŵ_k = mean r_k(x)
    spread: tuple[float, ...]  # recovered ÷ true variance per mode (mean over coordinates)
    log_lik_gap: float  # mean log p(x) − E_p log p(x), nats per sample (> 0: too concentrated)
    pooled_spread: float  # mean Σ_k r_k ‖(x − μ_k)/√v_k‖²/d: 1 under p, > 1 modes too wide
    pooled_spread_se: float  # its standard error under p

    def __str__(self) -> str:
        verdict = "matches p" if self.passed else f"rejected ({self.worst})"
        return (f"{verdict}: max |z| {self.max_abs_z:.1f} (threshold {self.threshold:.2f}), "
                f"spread {min(self.spread):.2f}–{max(self.spread):.2f}, "
                f"log-likelihood gap {self.log_lik_gap:+.3f} nats")


def _fit_features(mixture: GaussianMixture, x: torch.Tensor, full: bool
                  ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Per-sample statistics (n, F), their exact expectations under p (F,) and their names."""
    resp = mixture.responsibilities(x, 0.0)  # (n, K)
    std = mixture.variances.sqrt()  # (K, d)
    z = (x[:, None, :] - mixture.means) / std  # (n, K, d) standardised offsets per mode
    n, k, d = z.shape
    feats, expect, names = [resp], [mixture.weights], [f"weight of mode {j}" for j in range(k)]
    feats.append((resp[..., None] * z).reshape(n, k * d))
    expect.append(torch.zeros(k * d, dtype=x.dtype))
    names += [f"mean of mode {j}, coordinate {i}" for j in range(k) for i in range(d)]
    pairs = [(i, j) for i in range(d) for j in range(i, d)] if full else [(i, i) for i in range(d)]
    rows, cols = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    feats.append((resp[..., None] * z[..., rows] * z[..., cols]).reshape(n, -1))  # (n, K·P)
    expect.append((mixture.weights[:, None] * (rows == cols).to(x.dtype)).reshape(-1))
    names += [f"covariance ({i},{j}) of mode {m}" for m in range(k) for i, j in pairs]
    feats.append((resp * z.pow(2).mean(-1)).sum(1, keepdim=True))  # (n, 1) pooled spread
    expect.append(torch.ones(1, dtype=x.dtype))
    names.append("pooled spread")
    return torch.cat(feats, 1), torch.cat(expect), names


def _feature_moments(mixture: GaussianMixture, pts: torch.Tensor, full: bool, rows: int = 4096
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Mean and variance over ``pts`` of the per-sample statistics, in chunks (memory stays small)."""
    total = total_sq = expect = names = None
    for chunk in pts.split(rows):
        f, expect, names = _fit_features(mixture, chunk, full)  # (b, F)
        total = f.sum(0) if total is None else total + f.sum(0)
        total_sq = f.pow(2).sum(0) if total_sq is None else total_sq + f.pow(2).sum(0)
    n = pts.shape[0]
    mean = total / n
    var = (total_sq / n - mean.pow(2)).clamp_min(0) * n / max(n - 1, 1)
    return mean, var, expect, names


def mixture_fit(mixture: GaussianMixture, x, *, alpha: float = 1e-3,
                n_reference: int | None = None, full_covariance: bool | None = None,
                generator: torch.Generator | None = None) -> MixtureFit:
    """Test samples ``x`` (n, d) against the exact mixture: weights, means, covariances, likelihood.

    Rejects collapsed, inflated, shifted and dropped modes that a mode count or a sliced
    Wasserstein distance near its noise floor lets through. ``alpha`` is the family-wise
    probability of rejecting true samples; ``n_reference`` (default max(20 000, 4n)) oracle
    draws give −H(p) and the standard errors under p; ``full_covariance`` (default: d ≤ 4) tests
    every covariance entry, otherwise only the variances.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    pts = as_points(x, "x")
    n, d = pts.shape
    if d != mixture.dim:
        raise ValueError(f"samples have {d} dimensions but the mixture has {mixture.dim}")
    if n < 20:
        raise ValueError(f"mixture_fit needs at least 20 samples, got {n}")
    m = n_reference if n_reference is not None else max(20_000, 4 * n)
    full = d <= 4 if full_covariance is None else bool(full_covariance)
    ref = mixture.sample(m, generator=generator, dtype=torch.float64)  # (m, d)
    mean_x, _, expect, names = _feature_moments(mixture, pts, full)
    _, var_ref, _, _ = _feature_moments(mixture, ref, full)
    se = (var_ref / n).sqrt().clamp_min(1e-12)  # standard errors under p
    z = (mean_x - expect) / se  # (F,)
    lp_x, lp_ref = mixture.log_prob(pts), mixture.log_prob(ref)  # (n,), (m,)
    gap = float(lp_x.mean() - lp_ref.mean())
    z_lik = gap / math.sqrt(float(lp_ref.var()) * (1 / n + 1 / m))
    z_all = torch.cat([z, torch.tensor([z_lik], dtype=z.dtype)])
    names = names + ["log-likelihood"]
    threshold = NormalDist().inv_cdf(1 - alpha / (2 * len(names)))
    worst = int(z_all.abs().argmax())
    k = mixture.n_components
    w_hat = mean_x[:k]  # (K,)
    diag = mean_x[k + k * d:-1].reshape(k, -1)  # (K, P) mean of r_k z_i z_j
    var_cols = [i for i, (a, b) in enumerate((p, q) for p in range(d) for q in range(p, d))
                if a == b] if full else list(range(d))
    spread = diag[:, var_cols].mean(1) / w_hat.clamp_min(1e-12)  # (K,)
    max_z = float(z_all.abs().max())
    return MixtureFit(bool(max_z < threshold), max_z, threshold, names[worst],
                      tuple(float(w) for w in w_hat), tuple(float(s) for s in spread), gap,
                      float(mean_x[-1]), float(se[-1]))
