"""Samplers: plain functions that walk a decreasing noise ladder down to sigma = 0.

Every sampler has one signature, ``sample_<name>(denoiser, x, sigmas, *, generator=None,
callback=None, ...) -> Tensor``, and talks to the model only through the contract
``denoiser(x, sigma) -> x0_hat`` (chapter 4). ``x`` is already noised to ``sigmas[0]``, usually
``x = sigmas[0] * randn``; ``sigmas`` is strictly decreasing and ends in 0 (the clean sample).

| code | symbol | meaning |
|---|---|---|
| ``sigmas[i]``, ``sigma`` | σ_i | noise level of step i (variance-exploding view, x_σ = x0 + σε) |
| ``sigma_next`` | σ_{i+1} | the level this step moves to |
| ``x0_hat`` | D(x, σ) | the denoiser's estimate of E[x0 \\| x_σ = x] |
| ``d`` | (x − D)/σ | slope of the probability-flow ODE dx/dσ (Karras et al. 2022, eq. 3) |
| ``eta`` | η | DDIM stochasticity: 0 deterministic, 1 ancestral (DDPM) |
| ``s_churn`` | S_churn | noise re-injected per step in Karras et al.'s Algorithm 2 |
| ``snr`` | r | Langevin corrector signal-to-noise ratio (Song et al. 2021) |
| ``nfe`` | NFE | number of denoiser evaluations |

The callback receives a dict ``{"i", "sigma", "sigma_next", "x", "x0_hat", "nfe"}`` after each
step (``x`` is the state *after* the step), enough to draw trajectories.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


__all__ = ["SAMPLERS", "sample", "sample_ddpm", "sample_ddim", "sample_euler", "sample_heun",
           "sample_dpmpp_2m", "sample_pc", "nfe_of", "steps_for_nfe", "check_ladder"]

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict], None] | None


# ----------------------------------------------------------------------------- shared helpers
def check_ladder(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Validate ``x`` and the ladder; return ``sigmas`` on ``x``'s device and dtype.

    A ladder is a 1-D tensor σ_0 > σ_1 > ... > σ_N = 0 with N >= 1 (e.g. ``schedules.karras_sigmas``).
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
        raise TypeError("x must be a tensor of shape (batch, ...) with batch >= 1")
    if not torch.is_floating_point(x):
        raise TypeError(f"x must be floating point, got {x.dtype}; use x.double() or x.float()")
    sigmas = torch.as_tensor(sigmas).to(device=x.device, dtype=x.dtype)
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D ladder with at least 2 entries (σ_max ... 0), got "
                         f"shape {tuple(sigmas.shape)}; build one with schedules.karras_sigmas(n, ...)")
    if not bool(torch.isfinite(sigmas).all()) or bool((sigmas < 0).any()):
        raise ValueError("sigmas must be finite and >= 0")
    if not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise ValueError("sigmas must be strictly decreasing (σ_max first); reverse or deduplicate "
                         "the ladder, e.g. sigmas.flip(0)")
    if float(sigmas[-1]) != 0.0:
        raise ValueError(f"sigmas must end in 0 (the clean sample), got {float(sigmas[-1]):.3g}; "
                         "append a zero: torch.cat([sigmas, sigmas.new_zeros(1)])")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN/inf; start from sigmas[0] * torch.randn(...)")
    return sigmas


class _Counted:
    """Calls the denoiser with a per-sample σ, checks what comes back and counts evaluations."""

    def __init__(self, denoiser: Denoiser):
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as denoiser(x, sigma), got "
                            f"{type(denoiser).__name__}")
        self.denoiser, self.nfe = denoiser, 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x0_hat = self.denoiser(x, sigma.expand(x.shape[0]))   # (B, ...)
        self.nfe += 1
        if self.nfe == 1 and (not isinstance(x0_hat, torch.Tensor) or x0_hat.shape != x.shape):
            got = tuple(x0_hat.shape) if isinstance(x0_hat, torch.Tensor) else type(x0_hat).__name__
            raise ValueError(f"denoiser(x, sigma) must return x0_hat with the shape of x "
                             f"{tuple(x.shape)}, got {got}; wrap ε/v-prediction nets with "
                             "diffusion_lite.denoisers first")
        return x0_hat


def _rungs(sigmas: torch.Tensor):
    """(i, (σ_i, σ_{i+1})) as Python floats: step coefficients cost no tensor operations."""
    values = sigmas.tolist()
    return enumerate(zip(values[:-1], values[1:]))


def _randn(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _report(callback: Callback, i: int, sigmas: torch.Tensor, x: torch.Tensor,
            x0_hat: torch.Tensor, counted: _Counted) -> None:
    if callback is not None:
        callback({"i": i, "sigma": sigmas[i], "sigma_next": sigmas[i + 1], "x": x,
                  "x0_hat": x0_hat, "nfe": counted.nfe})


def _finish(x: torch.Tensor, name: str) -> torch.Tensor:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} produced NaN/inf; check that the denoiser is finite at every σ "
                         "in the ladder, sample in float64, or use more steps")
    return x


def _ancestral_split(sigma: float, sigma_next: float, eta: float) -> tuple[float, float]:
    """Split the move σ → σ' into a deterministic part σ_down and fresh noise σ_up.

    σ_up = η · σ' √(σ² − σ'²)/σ, σ_down = √(σ'² − σ_up²): σ_up² is DDIM's σ_t² in the
    variance-exploding view (Song et al. 2021, eq. 16), so η = 1 is the DDPM posterior.
    """
    sigma_up = eta * sigma_next * math.sqrt(sigma**2 - sigma_next**2) / sigma
    return math.sqrt(max(sigma_next**2 - sigma_up**2, 0.0)), sigma_up


# ----------------------------------------------------------------------------- the samplers
@torch.no_grad()
def sample_ddpm(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                generator: torch.Generator | None = None, callback: Callback = None) -> torch.Tensor:
    """Ancestral sampling from the DDPM posterior q(x_σ' | x_σ, x0 = D) (Ho et al. 2020, eqs. 6-7).

    In the σ view the posterior is Gaussian with mean x0_hat + (σ'²/σ²)(x − x0_hat) and variance
    σ'²(σ² − σ'²)/σ². One NFE per step; [ho2020].
    """
    sigmas, den = check_ladder(x, sigmas), _Counted(denoiser)
    for i, (sigma, sigma_next) in _rungs(sigmas):
        x0_hat = den(x, sigmas[i])                                   # 1. predict x0 (eq. 15)
        ratio2 = (sigma_next / sigma) ** 2
        x = x0_hat + ratio2 * (x - x0_hat)                           # 2. posterior mean (eq. 7)
        if sigma_next > 0:                                           # 3. posterior noise
            x = x + sigma_next * math.sqrt(1 - ratio2) * _randn(x, generator)
        _report(callback, i, sigmas, x, x0_hat, den)
    return _finish(x, "sample_ddpm")


@torch.no_grad()
def sample_ddim(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                generator: torch.Generator | None = None, callback: Callback = None,
                eta: float = 0.0) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12) in the σ view: x' = x0_hat + σ_down ε_hat + σ_up z.

    ε_hat = (x − x0_hat)/σ; η = 0 is deterministic (and equals Euler on the probability-flow ODE),
    η = 1 is DDPM's ancestral step. One NFE per step; [song2021ddim].
    """
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0 = deterministic DDIM, 1 = DDPM), got {eta}")
    sigmas, den = check_ladder(x, sigmas), _Counted(denoiser)
    for i, (sigma, sigma_next) in _rungs(sigmas):
        x0_hat = den(x, sigmas[i])                                   # predicted x0
        eps_hat = (x - x0_hat) / sigma                               # predicted noise
        sigma_down, sigma_up = _ancestral_split(sigma, sigma_next, eta)
        x = x0_hat + sigma_down * eps_hat                            # direction pointing to x_t
        if eta > 0 and sigma_next > 0:
            x = x + sigma_up * _randn(x, generator)                  # random noise
        _report(callback, i, sigmas, x, x0_hat, den)
    return _finish(x, "sample_ddim")


def _karras(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, generator, callback,
            s_churn: float, s_tmin: float, s_tmax: float, s_noise: float, heun: bool,
            name: str) -> torch.Tensor:
    """Karras et al. (2022) Algorithm 2; with ``heun=False`` the 2nd-order correction is skipped."""
    if s_churn < 0 or s_noise < 0:
        raise ValueError("s_churn and s_noise must be >= 0 (s_churn=0 is the deterministic ODE)")
    sigmas, den = check_ladder(x, sigmas), _Counted(denoiser)
    gamma_max = min(s_churn / (len(sigmas) - 1), math.sqrt(2) - 1)
    for i, (sigma, sigma_next) in _rungs(sigmas):
        # Increase noise temporarily: σ_hat = (1 + γ_i) σ_i, x_hat = x + √(σ_hat² − σ²) ε.
        gamma = gamma_max if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat, level = sigma, sigmas[i]
        if gamma > 0:
            sigma_hat = sigma * (1 + gamma)
            level = sigmas.new_tensor(sigma_hat)
            x = x + math.sqrt(sigma_hat**2 - sigma**2) * s_noise * _randn(x, generator)
        # Euler step from σ_hat to σ_{i+1}.
        x0_hat = den(x, level)
        d = (x - x0_hat) / sigma_hat
        x_next = x + (sigma_next - sigma_hat) * d
        # Apply 2nd order correction (trapezoid), unless we stepped to σ = 0.
        if heun and sigma_next > 0:
            d_next = (x_next - den(x_next, sigmas[i + 1])) / sigma_next
            x_next = x + (sigma_next - sigma_hat) * (d + d_next) / 2
        x = x_next
        _report(callback, i, sigmas, x, x0_hat, den)
    return _finish(x, name)


@torch.no_grad()
def sample_euler(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                 generator: torch.Generator | None = None, callback: Callback = None,
                 s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"),
                 s_noise: float = 1.0) -> torch.Tensor:
    """Euler on the probability-flow ODE dx/dσ = (x − D(x, σ))/σ, with optional churn.

    x_{i+1} = x + (σ_{i+1} − σ_i)(x − D(x, σ_i))/σ_i: first order, one NFE per step
    (Karras et al. 2022, Algorithm 2 without its correction); [karras2022].
    """
    return _karras(denoiser, x, sigmas, generator, callback, s_churn, s_tmin, s_tmax, s_noise,
                   heun=False, name="sample_euler")


@torch.no_grad()
def sample_heun(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                generator: torch.Generator | None = None, callback: Callback = None,
                s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"),
                s_noise: float = 1.0) -> torch.Tensor:
    """Heun's 2nd-order method on the probability-flow ODE (Karras et al. 2022, Algorithms 1-2).

    Euler predictor x' = x + h d, then the trapezoid x_{i+1} = x + h (d + d')/2 with h = σ_{i+1} − σ_i;
    the last step to σ = 0 stays Euler. NFE = 2N − 1 for N steps; [karras2022].
    """
    return _karras(denoiser, x, sigmas, generator, callback, s_churn, s_tmin, s_tmax, s_noise,
                   heun=True, name="sample_heun")


@torch.no_grad()
def sample_dpmpp_2m(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
                    generator: torch.Generator | None = None,
                    callback: Callback = None) -> torch.Tensor:
    """DPM-Solver++(2M), the multistep 2nd-order data-prediction solver (Lu et al. 2022, Alg. 2).

    With λ = −log σ and h = λ_{i+1} − λ_i: x_{i+1} = (σ_{i+1}/σ_i) x − (e^{−h} − 1) D_i, where
    D_i = (1 + 1/(2r)) x0_hat_i − 1/(2r) x0_hat_{i−1}, r = h_{i−1}/h ("midpoint" variant). The first
    step and the last (to σ = 0) are first order. One NFE per step; [lu2022pp].
    ``generator`` is accepted for a uniform signature and unused (the solver is deterministic).
    """
    sigmas, den = check_ladder(x, sigmas), _Counted(denoiser)
    x0_prev, h_prev = None, None
    for i, (sigma, sigma_next) in _rungs(sigmas):
        x0_hat = den(x, sigmas[i])                                   # data prediction
        if sigma_next == 0:                                          # λ = ∞: land on x0_hat
            x_next = x0_hat
        else:
            h = math.log(sigma / sigma_next)                         # h = λ_{i+1} − λ_i
            d = x0_hat
            if x0_prev is not None:                                  # 2nd order: extrapolate D
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0_hat - 1 / (2 * r) * x0_prev
            x_next = (sigma_next / sigma) * x - math.expm1(-h) * d   # exponential integrator
            h_prev = h
        x0_prev, x = x0_hat, x_next
        _report(callback, i, sigmas, x, x0_hat, den)
    return _finish(x, "sample_dpmpp_2m")


@torch.no_grad()
def sample_pc(denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *,
              generator: torch.Generator | None = None, callback: Callback = None,
              n_corrector: int = 1, snr: float = 0.16) -> torch.Tensor:
    """Predictor–corrector sampling of the VE SDE (Song et al. 2021, Algorithms 4-5).

    Predictor (reverse diffusion): x' = x + (σ_i² − σ_{i+1}²) s + √(σ_i² − σ_{i+1}²) z, with the
    score s = (D(x, σ) − x)/σ². Corrector (Langevin at σ_{i+1}, ``n_corrector`` times):
    ε = 2 (r ‖z‖ / ‖s‖)², x ← x + ε s + √(2ε) z, with the norms averaged over the batch (so the
    step size couples the samples of a batch). NFE = N + n_corrector (N − 1);
    [song2021sde].
    """
    if n_corrector < 0 or snr <= 0:
        raise ValueError("n_corrector must be >= 0 and snr > 0 (Song et al. use snr=0.16)")
    sigmas, den = check_ladder(x, sigmas), _Counted(denoiser)
    for i, (sigma, sigma_next) in _rungs(sigmas):
        # Predictor: one reverse-diffusion step σ_i → σ_{i+1}.
        x0_hat = den(x, sigmas[i])
        var = sigma**2 - sigma_next**2
        x = x + var / sigma**2 * (x0_hat - x)
        if sigma_next > 0:
            x = x + math.sqrt(var) * _randn(x, generator)
            # Corrector: Langevin steps at σ_{i+1}, step size set by the target snr r.
            for _ in range(n_corrector):
                score = (den(x, sigmas[i + 1]) - x) / sigma_next**2
                z = _randn(x, generator)
                eps = 2 * (snr * _norm(z) / _norm(score)) ** 2          # Algorithm 5, α = 1
                x = x + eps * score + (2 * eps).sqrt() * z
        _report(callback, i, sigmas, x, x0_hat, den)
    return _finish(x, "sample_pc")


def _norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample norm averaged over the batch, as in Song et al.'s code: a per-sample step size
    explodes for samples where the score is nearly zero."""
    return t.flatten(1).norm(dim=1).mean()                           # scalar


# ----------------------------------------------------------------------------- dispatch
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": sample_ddpm, "ddim": sample_ddim, "euler": sample_euler, "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m, "pc": sample_pc,
}


def sample(name: str, denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor,
           **kwargs) -> torch.Tensor:
    """Run the sampler registered as ``name`` (see ``SAMPLERS``) with the keyword arguments given."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](denoiser, x, sigmas, **kwargs)


def nfe_of(name: str, n_steps: int, *, n_corrector: int = 1, **_: object) -> int:
    """Denoiser evaluations a sampler spends on a ladder of ``n_steps`` steps (n_steps + 1 σ's)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if name == "heun":
        return 2 * n_steps - 1
    if name == "pc":
        return n_steps + n_corrector * (n_steps - 1)
    return n_steps


def steps_for_nfe(name: str, nfe: int, **kwargs) -> int:
    """The most steps whose cost ``nfe_of(name, steps, **kwargs)`` fits in a budget of ``nfe``."""
    if nfe_of(name, 1, **kwargs) > nfe:
        raise ValueError(f"{name!r} needs at least {nfe_of(name, 1, **kwargs)} NFE, got {nfe}")
    n = 1
    while nfe_of(name, n + 1, **kwargs) <= nfe:
        n += 1
    return n
