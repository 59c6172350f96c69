"""Distribution metrics: how far is a set of generated samples from the data? (chapter 8)

Every metric compares two *sets* of samples, flattened to vectors ``(n, d)``, and is computed in
float64. Each estimate is noisy: compare it with its **noise floor** (the same metric between two
independent real sets of the same size) and a **bootstrap interval** ({func}`bootstrap_ci`);
:mod:`~diffusion_lite.uncertainty` adds the permutation test and intervals over seeds.
Argument order is always ``(real, generated)``; only precision/recall are not symmetric.

| code name | symbol | meaning |
|---|---|---|
| ``real``, ``gen`` | x ~ p, y ~ q | real and generated samples, ``(n, d)`` and ``(m, d)`` |
| ``bandwidth`` | h | RBF kernel width: k(a, b) = exp(−‖a − b‖² / 2h²) |
| ``mmd2`` | MMD²_u | unbiased squared maximum mean discrepancy |
| ``projections`` | θ | unit directions for sliced Wasserstein, ``(d, L)`` |
| ``mu``, ``cov`` | μ, Σ | feature mean and (n − 1)-normalised covariance |
| ``k`` | k | neighbour rank that sets the radius of each k-NN ball |
| ``train``, ``heldout`` | — | training set and an equally large held-out set (memorisation) |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from .utils import check_finite, check_int, check_positive

__all__ = ["as_points", "median_bandwidth", "mmd2", "random_projections", "sliced_wasserstein",
           "frechet_distance", "extract_features", "feature_frechet_distance", "PrecisionRecall",
           "precision_recall", "memorisation_ratios", "Estimate", "bootstrap_ci", "noise_floor",
           "binomial_ci"]


def as_points(x: torch.Tensor | np.ndarray, name: str = "x") -> torch.Tensor:
    """Flatten a batch ``(n, ...)`` to float64 points ``(n, d)``; reject NaN and empty input."""
    x = torch.as_tensor(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a batch of samples (n, ...) with n >= 1, "
                         f"got shape {tuple(x.shape)}")
    check_finite(x, name)
    return x.detach().reshape(x.shape[0], -1).to(torch.float64)


def _pair(real, gen, min_n: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = as_points(real, "real"), as_points(gen, "gen")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real has {x.shape[1]} dimensions per sample but gen has {y.shape[1]}; "
                         "both sets must live in the same space")
    for name, t in (("real", x), ("gen", y)):
        if t.shape[0] < min_n:
            raise ValueError(f"{name} has {t.shape[0]} samples; this metric needs at least {min_n}")
    return x, y


# --------------------------------------------------------------------------------------------
# Kernel two-sample statistic
# --------------------------------------------------------------------------------------------

def median_bandwidth(real, gen=None) -> float:
    """Median heuristic: h = median of the pairwise distances ‖a − b‖ (a ≠ b) in the pooled set."""
    pts = as_points(real, "real") if gen is None else torch.cat(_pair(real, gen))
    d = torch.cdist(pts, pts)
    off = d[~torch.eye(len(pts), dtype=torch.bool)]
    h = float(off.median()) if off.numel() else 0.0
    if h <= 0:
        raise ValueError("median pairwise distance is 0 (all points equal?); pass bandwidth=")
    return h


def mmd2(real, gen, *, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD with an RBF kernel k(a, b) = exp(−‖a − b‖²/2h²).

    MMD²_u = Σ_{i≠j} k(x_i, x_j)/(n(n−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1))
             − 2 Σ_{i,j} k(x_i, y_j)/(nm)
    {cite}`gretton2012`. Its expectation is 0 when p = q, so it can be slightly negative.
    h defaults to the median heuristic on the pooled set; fix it when comparing several models.
    """
    x, y = _pair(real, gen, min_n=2)
    h = median_bandwidth(x, y) if bandwidth is None else check_positive(bandwidth, "bandwidth")
    n, m = len(x), len(y)

    def k(a, b):
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * h * h))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))  # i ≠ j only
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within_x + within_y - 2 * kxy.mean())


# --------------------------------------------------------------------------------------------
# Sliced Wasserstein
# --------------------------------------------------------------------------------------------

def random_projections(d: int, n_projections: int = 128, *,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit directions θ_l uniform on the sphere S^{d−1}, as the columns of a ``(d, L)`` tensor."""
    check_int(d, "d", minimum=1, what="dimensions per sample")
    check_int(n_projections, "n_projections", minimum=1)
    theta = torch.randn(d, n_projections, generator=generator, dtype=torch.float64)
    return theta / theta.norm(dim=0, keepdim=True)


def _wasserstein_1d_pp(u: torch.Tensor, v: torch.Tensor, p: float) -> torch.Tensor:
    """W_p^p between empirical laws of the rows of ``u (L, n)`` and ``v (L, m)``, exactly.

    W_p^p = ∫₀¹ |F⁻¹(t) − G⁻¹(t)|^p dt; both quantile functions are steps, so the integral is a
    sum over the merged breakpoints {i/n} ∪ {j/m}.
    """
    n, m = u.shape[1], v.shape[1]
    u, v = u.sort(dim=1).values, v.sort(dim=1).values
    f64 = dict(dtype=torch.float64, device=u.device)
    t = torch.cat([torch.arange(1, n + 1, **f64) / n, torch.arange(1, m + 1, **f64) / m])
    t = t.sort().values  # (n + m,) breakpoints of both step functions
    dt = torch.diff(t, prepend=t.new_zeros(1))  # (n + m,) interval lengths (some 0)
    mid = t - dt / 2
    iu = torch.clamp((mid * n).floor().long(), max=n - 1)
    iv = torch.clamp((mid * m).floor().long(), max=m - 1)
    return ((u[:, iu] - v[:, iv]).abs().pow(p) * dt).sum(dim=1)  # (L,)


def sliced_wasserstein(real, gen, *, projections: torch.Tensor | None = None,
                       n_projections: int = 128, p: float = 2.0,
                       generator: torch.Generator | None = None) -> float:
    """Sliced Wasserstein distance SW_p = (mean_l W_p^p(θ_l·x, θ_l·y))^{1/p}.

    Projects both sets on L random unit directions and compares the 1D laws exactly
    {cite}`bonneel2015`. Pass ``projections`` (``(d, L)``) to reuse directions across calls, e.g.
    for a bootstrap or to compare with POT on the same directions.
    """
    x, y = _pair(real, gen)
    p = check_positive(p, "p")  # the order of W_p: 1 or 2 usually
    if projections is None:
        projections = random_projections(x.shape[1], n_projections, generator=generator)
    projections = torch.as_tensor(projections, dtype=torch.float64)
    if projections.ndim != 2 or projections.shape[0] != x.shape[1]:
        raise ValueError(f"projections must have shape (d, L) = ({x.shape[1]}, L), "
                         f"got {tuple(projections.shape)}")
    wpp = _wasserstein_1d_pp((x @ projections).T, (y @ projections).T, p)  # (L,)
    return float(wpp.mean() ** (1 / p))


# --------------------------------------------------------------------------------------------
# Fréchet distance between Gaussian fits of features
# --------------------------------------------------------------------------------------------

def frechet_distance(real_features, gen_features) -> float:
    """Fréchet (2-Wasserstein) distance between Gaussians fitted to two feature sets.

    FD = ‖μ_x − μ_y‖² + Tr(Σ_x + Σ_y − 2 (Σ_x^{1/2} Σ_y Σ_x^{1/2})^{1/2}) {cite}`heusel2017`,
    with (n − 1)-normalised covariances. On Inception features this is the FID; here the features
    come from any network (e.g. the chapter 7 digit classifier).
    """
    x, y = _pair(real_features, gen_features, min_n=2)
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = torch.cov(x.T).reshape(x.shape[1], -1), torch.cov(y.T).reshape(y.shape[1], -1)
    evals, evecs = torch.linalg.eigh(cov_x)
    root_x = evecs @ torch.diag(evals.clamp(min=0).sqrt()) @ evecs.T  # Σ_x^{1/2}
    middle = root_x @ cov_y @ root_x  # symmetric PSD, same spectrum as Σ_x Σ_y
    tr_root = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    return float((mu_x - mu_y).pow(2).sum() + cov_x.trace() + cov_y.trace() - 2 * tr_root)


@torch.no_grad()
def extract_features(feature_net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                     batch_size: int = 512) -> torch.Tensor:
    """Run ``feature_net`` over ``x`` in batches (no gradients) and return ``(n, F)`` float64."""
    check_finite(x, "x")
    out = [feature_net(x[i:i + batch_size]).reshape(len(x[i:i + batch_size]), -1)
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).to(torch.float64)


def feature_frechet_distance(feature_net: Callable[[torch.Tensor], torch.Tensor], real, gen, *,
                             batch_size: int = 512) -> float:
    """Fréchet distance between the features ``feature_net`` gives the two image sets."""
    fx = extract_features(feature_net, torch.as_tensor(real), batch_size=batch_size)
    fy = extract_features(feature_net, torch.as_tensor(gen), batch_size=batch_size)
    return frechet_distance(fx, fy)


# --------------------------------------------------------------------------------------------
# Precision and recall with k-NN manifolds
# --------------------------------------------------------------------------------------------

class PrecisionRecall(NamedTuple):
    precision: float  # share of generated samples inside the real manifold (fidelity)
    recall: float  # share of real samples inside the generated manifold (coverage)


def _knn_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)  # (n, n), zeros on the diagonal
    return d.kthvalue(k + 1, dim=1).values  # k-th neighbour, the point itself excluded


def precision_recall(real, gen, *, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall of Kynkäänniemi et al. with k-NN balls.

    The real manifold is ∪_i B(x_i, r_k(x_i)), r_k the distance to the k-th nearest other real
    sample; precision = share of generated y_j strictly inside it. Recall swaps the roles
    {cite}`kynkaanniemi2019`.
    """
    check_int(k, "k", minimum=1, what="the neighbour whose distance sets a ball's radius")
    x, y = _pair(real, gen)
    for name, t in (("real", x), ("gen", y)):
        if len(t) <= k:
            raise ValueError(f"{name} has {len(t)} samples; k={k} needs at least k + 1 = {k + 1}")
    r_x, r_y = _knn_radius(x, k), _knn_radius(y, k)
    d_xy = torch.cdist(x, y)  # (n, m)
    precision = (d_xy < r_x[:, None]).any(dim=0).double().mean()
    recall = (d_xy < r_y[None, :]).any(dim=1).double().mean()
    return PrecisionRecall(float(precision), float(recall))


# --------------------------------------------------------------------------------------------
# Memorisation
# --------------------------------------------------------------------------------------------

def memorisation_ratios(gen, train, heldout) -> torch.Tensor:
    """Per generated sample: distance to the nearest training sample / to the nearest held-out one.

    ρ(y) = min_i ‖y − x_i^train‖ / min_j ‖y − x_j^held-out‖. With equally large sets, a model that
    generalises gives ρ around 1; copies of training images give ρ ≈ 0 {cite}`carlini2023`.
    Returns ``(m,)``; summarise with the median or the share below a threshold.
    """
    tr, ho = _pair(train, heldout)
    y = as_points(gen, "gen")
    if len(tr) != len(ho):
        raise ValueError(f"train has {len(tr)} samples and heldout {len(ho)}; use equally large "
                         "sets (subsample the larger), or the ratio is biased")
    if y.shape[1] != tr.shape[1]:
        raise ValueError("gen and train must have the same number of dimensions per sample")
    d_train = torch.cdist(y, tr).min(dim=1).values
    d_held = torch.cdist(y, ho).min(dim=1).values
    return d_train / d_held.clamp(min=1e-12)


# --------------------------------------------------------------------------------------------
# Uncertainty: bootstrap intervals and noise floors
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    value: float  # the metric on the full sets
    low: float  # lower end of the interval
    high: float  # upper end
    se: float  # bootstrap standard error
    level: float  # nominal coverage of the interval, e.g. 0.95

    def __str__(self) -> str:
        return f"{self.value:.4g} ± {self.high - self.value:.2g}"


def bootstrap_ci(metric: Callable[[torch.Tensor, torch.Tensor], float], real, gen, *,
                 n_boot: int = 50, level: float = 0.95,
                 generator: torch.Generator | None = None) -> Estimate:
    """Bootstrap interval value ± z·SE: resample both sets with replacement, take the spread.

    SE is the standard deviation of the metric over ``n_boot`` resampled pairs {cite}`efron1993`
    and z the normal quantile for ``level``. Only the spread is taken from the resamples, not their
    location: resampling duplicates points, which shrinks k-NN radii and adds k(x, x) = 1 terms
    to MMD, so resampled values are biased (a percentile interval can miss the estimate itself).
    """
    from scipy.stats import norm

    x, y = _pair(real, gen, min_n=2)
    check_int(n_boot, "n_boot")
    if n_boot < 20:
        raise ValueError(f"n_boot={n_boot} is too few to estimate a standard error; use >= 20")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    values = []
    for _ in range(n_boot):
        ix = torch.randint(len(x), (len(x),), generator=generator)
        iy = torch.randint(len(y), (len(y),), generator=generator)
        values.append(float(metric(x[ix], y[iy])))
    se = float(np.std(values, ddof=1))
    value, z = float(metric(x, y)), float(norm.ppf((1 + level) / 2))
    return Estimate(value, value - z * se, value + z * se, se, level)


def noise_floor(metric: Callable[[torch.Tensor, torch.Tensor], float], real_a, real_b, *,
                n_boot: int = 100, level: float = 0.95,
                generator: torch.Generator | None = None) -> Estimate:
    """The metric between two independent real sets, with its bootstrap interval.

    No generator can be told apart from the data by less than this: it is the value a perfect
    model gets at this sample size. ``real_b`` must be as large as the generated set.
    """
    return bootstrap_ci(metric, real_a, real_b, n_boot=n_boot, level=level, generator=generator)


def binomial_ci(successes: int, trials: int, *, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval for a success probability from k successes in n trials.

    [B⁻¹((1−level)/2; k, n−k+1), B⁻¹((1+level)/2; k+1, n−k)] with B⁻¹ the Beta quantile; used
    for the accuracy of a human two-alternative forced-choice test (chance = 0.5).
    """
    from scipy.stats import beta

    if not (isinstance(trials, int) and trials >= 1 and isinstance(successes, int)
            and 0 <= successes <= trials):
        raise ValueError(f"need integers 0 <= successes <= trials, trials >= 1; "
                         f"got {successes}, {trials}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a = (1 - level) / 2
    low = 0.0 if successes == 0 else float(beta.ppf(a, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1 - a, successes + 1, trials - successes))
    return low, high

