"""Noise schedules: β/ᾱ schedules, the σ view, signal-to-noise ratios and σ ladders.

Pure functions computed in float64 (cast at use). Index convention for discrete schedules: entry
``i`` of a length-``T`` tensor belongs to step ``t = i + 1``, so ``alpha_bar[-1]`` is ᾱ_T and
ᾱ_0 = 1 is implicit.

| code name   | symbol                         | meaning                                         |
|-------------|--------------------------------|-------------------------------------------------|
| ``T``       | T                              | number of discrete forward steps                |
| ``beta``    | β_t                            | variance added at step t                        |
| ``alpha``   | α_t = 1 − β_t                  | signal kept at step t                           |
| ``alpha_bar``| ᾱ_t = ∏_{s≤t} α_s             | signal kept from x_0 to x_t                      |
| ``sigma``   | σ, σ² = (1 − ᾱ)/ᾱ              | noise level of the variance-exploding view      |
| ``snr``     | SNR = ᾱ/(1 − ᾱ) = 1/σ²          | signal-to-noise ratio                           |
| ``log_snr`` | λ = log SNR = −2 log σ          | log signal-to-noise ratio                       |
| ``rho``     | ρ                              | warping exponent of the Karras σ ladder          |
| ``sigma_data``| σ_d                          | the data's standard deviation (per coordinate)  |
| ``lam``     | λ = −log σ                     | DPM-Solver++'s time variable (a ladder's rungs)  |

Ladders (all decreasing, ending in 0, float64): :func:`karras_sigmas` (EDM's ρ-warped ladder),
:func:`log_uniform_sigmas` (uniform in λ = −log σ, the limit ρ → ∞), :func:`data_sigmas` (a
Karras ladder whose ends are set from σ_d) and :func:`default_sigmas`, the course's default,
chosen by benchmark 2 (``benchmarks/accuracy_vs_nfe.md``).
"""

from __future__ import annotations

import math

import torch

from .utils import check_alpha_bar, check_int

__all__ = [
    "SCHEDULES",
    "get_betas",
    "get_alpha_bar",
    "alpha_bar_from_betas",
    "betas_from_alpha_bar",
    "sigma_from_alpha_bar",
    "alpha_bar_from_sigma",
    "snr",
    "log_snr",
    "karras_sigmas",
    "log_uniform_sigmas",
    "data_sigmas",
    "default_sigmas",
    "DEFAULT_LADDER",
    "schedule_sigmas",
]

SCHEDULES = ("linear", "cosine", "sigmoid")
_F64 = torch.float64
_MAX_BETA = 0.999  # Nichol & Dhariwal clip β_t at 0.999 so the last step is not singular


def _check_T(T: int) -> None:
    check_int(T, "T", minimum=1, what="the number of forward steps")


def alpha_bar_from_betas(betas: torch.Tensor) -> torch.Tensor:
    """ᾱ_t = ∏_{s≤t} (1 − β_s) in float64 {cite}`ho2020`; every β must lie in (0, 1)."""
    betas = torch.as_tensor(betas, dtype=_F64)
    if betas.ndim != 1 or betas.numel() == 0:
        raise ValueError(f"betas must be a non-empty 1D tensor, got shape {tuple(betas.shape)}")
    if not bool(torch.all((betas > 0) & (betas < 1))):
        bad = betas[~((betas > 0) & (betas < 1))]
        raise ValueError(
            f"every beta must lie in the open interval (0, 1); got {bad[:3].tolist()}: lower "
            "beta_end, or use more steps T so each step adds less noise"
        )
    return torch.cumprod(1.0 - betas, dim=0)


def betas_from_alpha_bar(alpha_bar: torch.Tensor) -> torch.Tensor:
    """β_t = 1 − ᾱ_t/ᾱ_{t−1} (with ᾱ_0 = 1); ᾱ must be strictly decreasing inside (0, 1]."""
    alpha_bar = torch.as_tensor(alpha_bar, dtype=_F64)
    if alpha_bar.ndim != 1 or alpha_bar.numel() == 0:
        raise ValueError(f"alpha_bar must be a non-empty 1D tensor, got shape {tuple(alpha_bar.shape)}")
    check_alpha_bar(alpha_bar, "(ᾱ = 0 would mean infinite noise, σ = ∞)")
    prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    if not bool(torch.all(alpha_bar < prev)):
        i = int(torch.nonzero(alpha_bar >= prev)[0])
        raise ValueError(
            f"alpha_bar must be strictly decreasing (noise only grows along t), but step {i + 1} "
            f"has ᾱ = {alpha_bar[i].item():.6g} >= {prev[i].item():.6g}"
        )
    return 1.0 - alpha_bar / prev


def _linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    # Ho et al. use T = 1000; scaling both ends by 1000/T (as Nichol & Dhariwal's code does for
    # T != 1000) keeps roughly the same total noise for any T.
    if not 0 < beta_start <= beta_end:
        raise ValueError(f"need 0 < beta_start <= beta_end, got {beta_start}, {beta_end}")
    scale = 1000.0 / T
    if beta_end * scale >= 1:
        raise ValueError(
            f"the linear schedule with T={T} gives β_T = {beta_end * scale:.3g} >= 1; use "
            f"T > {math.floor(1000 * beta_end)} or a smaller beta_end"
        )
    return torch.linspace(beta_start * scale, beta_end * scale, T, dtype=_F64)


def _betas_from_curve(curve: torch.Tensor) -> torch.Tensor:
    # curve holds ᾱ(t/T) for t = 0..T with curve[0] = 1; clip each β_t at 0.999.
    betas = 1.0 - curve[1:] / curve[:-1]
    return betas.clamp(min=1e-12, max=_MAX_BETA)


def _cosine_betas(T: int, s: float = 0.008) -> torch.Tensor:
    # ᾱ(u) = f(u)/f(0), f(u) = cos²(π/2 · (u + s)/(1 + s))  (Nichol & Dhariwal 2021, eq. 17)
    if not s > 0:
        raise ValueError(f"the cosine offset s must be > 0, got {s}")
    u = torch.linspace(0.0, 1.0, T + 1, dtype=_F64)
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return _betas_from_curve(f / f[0])


def _sigmoid_betas(T: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> torch.Tensor:
    # ᾱ(u) = (v(end) − v(u))/(v(end) − v(start)), v(u) = sigmoid((start + u(end − start))/τ)
    # ({cite}`jabri2023`, Algorithm "sigmoid_schedule").
    if not (end > start and tau > 0):
        raise ValueError(f"the sigmoid schedule needs end > start and tau > 0, got {start}, {end}, {tau}")
    u = torch.linspace(0.0, 1.0, T + 1, dtype=_F64)
    v_start, v_end = torch.sigmoid(torch.tensor(start / tau, dtype=_F64)), torch.sigmoid(
        torch.tensor(end / tau, dtype=_F64))
    v = torch.sigmoid((start + u * (end - start)) / tau)
    return _betas_from_curve((v_end - v) / (v_end - v_start))


_BUILDERS = {"linear": _linear_betas, "cosine": _cosine_betas, "sigmoid": _sigmoid_betas}


def get_betas(name: str, T: int, **params: float) -> torch.Tensor:
    """β_1..β_T of schedule ``name`` (``"linear"``, ``"cosine"``, ``"sigmoid"``), shape ``(T,)``.

    linear: β_t evenly spaced from ``beta_start`` to ``beta_end`` (×1000/T) {cite}`ho2020`;
    cosine: ᾱ(u) ∝ cos²(π/2 · (u + s)/(1 + s)) {cite}`nichol2021`; sigmoid: ᾱ(u) a rescaled
    decreasing sigmoid {cite}`jabri2023`. β is clipped at 0.999 for the last two.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")
    _check_T(T)
    try:
        betas = _BUILDERS[name](T, **params)
    except TypeError as exc:  # an unknown keyword: say which ones exist
        import inspect
        allowed = list(inspect.signature(_BUILDERS[name]).parameters)[1:]
        raise TypeError(f"schedule {name!r} takes parameters {allowed}, got {sorted(params)}") from exc
    alpha_bar_from_betas(betas)  # validates β in (0, 1)
    return betas


def get_alpha_bar(name: str, T: int, **params: float) -> torch.Tensor:
    """ᾱ_1..ᾱ_T of schedule ``name``, float64, shape ``(T,)``: ᾱ_t = ∏_{s≤t}(1 − β_s) {cite}`ho2020`."""
    return alpha_bar_from_betas(get_betas(name, T, **params))


def sigma_from_alpha_bar(alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """σ = sqrt((1 − ᾱ)/ᾱ): the VE noise level of a VP sample divided by sqrt(ᾱ) {cite}`karras2022`."""
    ab = torch.as_tensor(alpha_bar, dtype=_F64)
    check_alpha_bar(ab, "to convert it to a noise level sigma")
    return torch.sqrt((1.0 - ab) / ab)


def alpha_bar_from_sigma(sigma: torch.Tensor | float) -> torch.Tensor:
    """ᾱ = 1/(1 + σ²), the inverse of :func:`sigma_from_alpha_bar` {cite}`karras2022`.

    For tiny σ, ᾱ rounds towards 1 and σ cannot be recovered from it to full precision (relative
    error about 1e-16/σ²): keep σ itself when working near σ = 0.
    """
    s = torch.as_tensor(sigma, dtype=_F64)
    if not bool(torch.all((s >= 0) & torch.isfinite(s))):
        raise ValueError("sigma must be finite and >= 0")
    return 1.0 / (1.0 + s * s)


def snr(alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """SNR = ᾱ/(1 − ᾱ) = 1/σ² {cite}`kingma2021`; infinite at ᾱ = 1 (no noise)."""
    ab = torch.as_tensor(alpha_bar, dtype=_F64)
    check_alpha_bar(ab, "to compute an SNR")
    return ab / (1.0 - ab)


def log_snr(alpha_bar: torch.Tensor | float) -> torch.Tensor:
    """λ = log SNR = log ᾱ − log(1 − ᾱ) = −2 log σ {cite}`kingma2021`."""
    ab = torch.as_tensor(alpha_bar, dtype=_F64)
    check_alpha_bar(ab, "to compute a log-SNR")
    return torch.log(ab) - torch.log1p(-ab)


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0) -> torch.Tensor:
    """Decreasing σ ladder of ``n`` levels plus a final 0, shape ``(n + 1,)`` {cite}`karras2022`.

    σ_i = (σ_max^{1/ρ} + i/(n − 1) · (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ for i = 0..n−1, then σ_n = 0
    (EDM eq. 5). ρ = 7 spends more steps at small σ; ρ = 1 is evenly spaced.
    """
    check_int(n, "n", minimum=1, what="the number of noise levels")
    if not 0 < sigma_min <= sigma_max or not math.isfinite(sigma_max):
        raise ValueError(f"need 0 < sigma_min <= sigma_max < inf, got {sigma_min}, {sigma_max}")
    if not rho > 0:
        raise ValueError(f"rho must be > 0 (EDM uses 7), got {rho}")
    ramp = torch.linspace(0.0, 1.0, n, dtype=_F64) if n > 1 else torch.zeros(1, dtype=_F64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    sigmas[0], sigmas[-1] = sigma_max, sigma_min if n > 1 else sigma_max  # exact ends, no rounding
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _check_ends(sigma_min: float, sigma_max: float) -> None:
    for name, v in (("sigma_min", sigma_min), ("sigma_max", sigma_max)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got sigma_min={sigma_min}, "
                         f"sigma_max={sigma_max}: the ladder walks down from sigma_max")


def log_uniform_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0) -> torch.Tensor:
    """``n`` levels evenly spaced in λ = −log σ from σ_max to σ_min, then 0: shape ``(n + 1,)``.

    σ_i = σ_max (σ_min/σ_max)^{i/(n−1)}: every step has the same Δλ = log(σ_max/σ_min)/(n − 1),
    the ladder DPM-Solver++ analyses {cite}`lu2022pp` and the limit ρ → ∞ of
    :func:`karras_sigmas` {cite}`karras2022`.
    """
    check_int(n, "n", minimum=1, what="the number of noise levels")
    _check_ends(sigma_min, sigma_max)
    if n == 1:
        return torch.tensor([float(sigma_max), 0.0], dtype=_F64)
    lam = torch.linspace(-math.log(sigma_max), -math.log(sigma_min), n, dtype=_F64)  # λ = −log σ
    sigmas = torch.exp(-lam)
    sigmas[0], sigmas[-1] = sigma_max, sigma_min                     # exact ends, no rounding
    return torch.cat([sigmas, sigmas.new_zeros(1)])


# The course's default ladder, in units of σ_d; chosen by benchmark 2 (accuracy_vs_nfe.md): among
# the ladders measured there, the one with the smallest mean error over all samplers at 10 and 20
# NFE (see default_sigmas).
DEFAULT_LADDER = {"min_factor": 0.01, "max_factor": 10.0, "rho": 7.0}


def data_sigmas(n: int, sigma_data: float, *, min_factor: float = 0.01,
                max_factor: float = 10.0, rho: float = 7.0) -> torch.Tensor:
    """A Karras ladder whose ends are set from the data's scale σ_d: shape ``(n + 1,)``.

    σ_max = ``max_factor``·σ_d: the start x = σ_max z misses the true p_σmax (variance
    σ_max² + σ_d²) by a relative variance of 1/max_factor², 1% at the default 10. σ_min =
    ``min_factor``·σ_d: below it the noise is a hundredth of the data's spread and the last step
    (to 0) is a single denoising. ``rho=math.inf`` gives the ladder uniform in log σ between the
    same ends. EDM's images {cite}`karras2022` have σ_d = 0.5 and use σ from
    0.002 to 80, i.e. factors 0.004 and 160; for 2D data of σ_d ≈ 1.4 those rungs are wasted.
    """
    if isinstance(sigma_data, bool) or not isinstance(sigma_data, (int, float)) or not (
            math.isfinite(sigma_data) and sigma_data > 0):
        raise ValueError(f"sigma_data must be a finite number > 0 (the data's standard "
                         f"deviation per coordinate), got {sigma_data!r}")
    if not 0 < min_factor <= max_factor:
        raise ValueError(f"need 0 < min_factor <= max_factor, got {min_factor}, {max_factor}")
    if rho == math.inf:                                   # the limit ρ → ∞: uniform in log σ
        return log_uniform_sigmas(n, min_factor * sigma_data, max_factor * sigma_data)
    return karras_sigmas(n, min_factor * sigma_data, max_factor * sigma_data, rho)


def default_sigmas(n: int, sigma_data: float) -> torch.Tensor:
    """The course's default ladder: :func:`data_sigmas` with the factors of ``DEFAULT_LADDER``.

    Chosen by benchmark 2 (``benchmarks/accuracy_vs_nfe.md``, exact denoiser, every sampler,
    several seeds): the candidate ladder with the smallest mean error over all samplers at 10
    and 20 NFE {cite}`karras2022`.
    """
    return data_sigmas(n, sigma_data, **DEFAULT_LADDER)


def schedule_sigmas(name: str, T: int, **params: float) -> torch.Tensor:
    """The σ ladder of a discrete VP schedule: σ_T, …, σ_1, 0 (decreasing, shape ``(T + 1,)``).

    σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) {cite}`karras2022`: the ladder a σ-view sampler walks down to
    reproduce the discrete process of {cite}`ho2020`.
    """
    sigmas = sigma_from_alpha_bar(get_alpha_bar(name, T, **params)).flip(0)
    return torch.cat([sigmas, sigmas.new_zeros(1)])
