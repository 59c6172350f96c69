"""Seasonal time series, probabilistic imputation and forecasting, and how to score them.

Data: x_t = μ + a₁ sin(2πt/P + φ₁) + a₂ sin(4πt/P + φ₂) + e_t with e_t an AR(1) process
e_t = ρ e_{t−1} + s ξ_t: a level, a season with a random shape and an autocorrelated residual.

A conditional diffusion model in the style of CSDI {cite}`tashiro2021` denoises the whole series
given the observed values and the mask as extra input channels, c = (x ⊙ m, m) (m = 1 observed),
and is trained on random masks: scattered gaps (imputation) and a missing tail (forecasting). Its
samples, with the observed values put back, are draws from p(x_missing | x_observed).

Scores: the empirical coverage of the central 90% interval (it should be 0.9) and the continuous
ranked probability score CRPS(F, y) = E|X − y| − ½ E|X − X'| {cite}`gneiting2007`, for a Gaussian
F = N(μ, s²): s [z(2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − μ)/s. The baseline is the seasonal naive
forecast x̂_{t+k} = x_{t+k−P⌈k/P⌉} with a Gaussian error whose variance grows with ⌈k/P⌉
{cite}`hyndman2021`.

Notation (code → symbol): ``period`` P · ``mask`` m (1 observed, 0 missing) · ``cond`` c ·
``level`` the interval's nominal coverage 1 − α · ``samples`` (S, …) draws of the predictive law.
"""

from __future__ import annotations

import math

import torch

from ..utils import check_generator, check_int

__all__ = ["seasonal_series", "imputation_mask", "forecast_mask", "condition", "crps_empirical",
           "crps_gaussian", "interval", "coverage", "seasonal_naive"]


def seasonal_series(n: int, length: int = 48, *, period: int = 12, rho: float = 0.6,
                    resid_std: float = 0.25, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
    """n series of ``length`` points, shape (n, 1, length); see the module docstring."""
    check_int(n, "n", minimum=1)
    check_int(length, "length", minimum=2)
    check_int(period, "period", minimum=2)
    if not -1 < rho < 1:
        raise ValueError(f"rho must lie in (-1, 1) for a stationary AR(1) residual, got {rho}")
    check_generator(generator)
    u = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    t = torch.arange(length, dtype=torch.float32)  # (T,)
    level = 0.5 * torch.randn(n, 1, generator=generator)  # (n, 1)
    a1, a2 = 0.6 + 0.8 * u(n, 1), 0.4 * u(n, 1)
    p1, p2 = 2 * math.pi * u(n, 1), 2 * math.pi * u(n, 1)
    season = a1 * torch.sin(2 * math.pi * t / period + p1) + a2 * torch.sin(4 * math.pi * t / period + p2)
    xi = torch.randn(n, length, generator=generator)
    e = torch.empty(n, length)
    e[:, 0] = resid_std / math.sqrt(1 - rho**2) * xi[:, 0]  # the stationary start
    for i in range(1, length):
        e[:, i] = rho * e[:, i - 1] + resid_std * xi[:, i]
    return (level + season + e).unsqueeze(1)  # (n, 1, T)


def imputation_mask(n: int, length: int, missing: float = 0.3, *,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """m (n, 1, length) with each point missing (0) independently with probability ``missing``."""
    if not 0 < missing < 1:
        raise ValueError(f"missing must be a probability in (0, 1), got {missing}")
    return (torch.rand(n, 1, length, generator=generator) >= missing).float()


def forecast_mask(n: int, length: int, horizon: int) -> torch.Tensor:
    """m (n, 1, length): the last ``horizon`` points missing (the forecast), the rest observed."""
    check_int(horizon, "horizon", minimum=1)
    if horizon >= length:
        raise ValueError(f"horizon {horizon} leaves no context in a series of length {length}")
    m = torch.ones(n, 1, length)
    m[..., length - horizon:] = 0
    return m


def condition(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CSDI's condition c = (x ⊙ m, m), shape (B, 2, T); missing values never leak in."""
    if x.shape != mask.shape or x.shape[1] != 1:
        raise ValueError(f"x and mask must both be (B, 1, T), got {tuple(x.shape)} and "
                         f"{tuple(mask.shape)}")
    return torch.cat([x * mask, mask], dim=1)


def crps_empirical(samples: torch.Tensor, y: torch.Tensor, *, fair: bool = True) -> torch.Tensor:
    """CRPS from ``samples`` (S, …) at y (…): E|X − y| − ½E|X − X'|.

    Uses the sorted form Σ_{i,j}|x_i − x_j| = 2 Σ_i (2i − S − 1) x_(i), O(S log S). ``fair``
    divides that sum by S(S − 1) (pairs of distinct draws), which makes the score an unbiased
    estimate of the CRPS of the law the samples come from; ``fair=False`` divides by S², the CRPS
    of the empirical law itself, larger by E|X − X'|/(2S) {cite}`gneiting2007`.
    """
    if samples.shape[1:] != y.shape:
        raise ValueError(f"samples must be (S, *y.shape) = (S, {tuple(y.shape)}), got "
                         f"{tuple(samples.shape)}")
    S = samples.shape[0]
    xs = samples.to(torch.float64).sort(dim=0).values
    w = (2 * torch.arange(1, S + 1, dtype=torch.float64) - S - 1).reshape(-1, *[1] * y.ndim)
    if fair and S < 2:
        raise ValueError("the fair CRPS needs at least 2 samples")
    spread = 2 * (w * xs).sum(0) / (S * (S - 1) if fair else S**2)  # E|X − X'|
    return (xs - y.to(torch.float64)).abs().mean(0) - 0.5 * spread


def crps_gaussian(mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Closed-form CRPS of N(mean, std²) at y {cite}`gneiting2007`."""
    mean, std, y = (torch.as_tensor(v, dtype=torch.float64) for v in (mean, std, y))
    if bool((std <= 0).any()):
        raise ValueError("std must be positive")
    z = (y - mean) / std
    normal = torch.distributions.Normal(0.0, 1.0)
    pdf, cdf = normal.log_prob(z).exp(), normal.cdf(z)
    return std * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def interval(samples: torch.Tensor, level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """The central interval [q_{α/2}, q_{1−α/2}], α = 1 − level, from samples (S, …)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    alpha = 1 - level
    q = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64)
    lo, hi = torch.quantile(samples.to(torch.float64), q, dim=0)
    return lo, hi


def coverage(samples: torch.Tensor, y: torch.Tensor, level: float = 0.9) -> float:
    """Share of targets y inside the central ``level`` interval of their samples (S, *y.shape)."""
    if samples.shape[1:] != y.shape:
        raise ValueError(f"samples must be (S, *y.shape), got {tuple(samples.shape)} and "
                         f"{tuple(y.shape)}")
    lo, hi = interval(samples, level)
    y = y.to(torch.float64)
    return float(((y >= lo) & (y <= hi)).double().mean())


def seasonal_naive(context: torch.Tensor, horizon: int, period: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seasonal naive forecast of (B, L) contexts: mean x_{L+k−P⌈k/P⌉}, std s·√⌈k/P⌉, where s is
    the standard deviation of the contexts' seasonal differences x_t − x_{t−P} {cite}`hyndman2021`."""
    check_int(horizon, "horizon", minimum=1)
    B, L = context.shape
    if L < 2 * period:
        raise ValueError(f"a context of {L} points is too short for period {period}: need 2P")
    k = torch.arange(1, horizon + 1)
    seasons = torch.ceil(k / period).long()  # ⌈k/P⌉
    mean = context[:, L + k - 1 - period * seasons]  # (B, H)
    diff = context[:, period:] - context[:, :-period]  # (B, L − P)
    s = diff.std(dim=1, keepdim=True)  # (B, 1)
    return mean, s * seasons.sqrt()[None, :]
