"""Samplers: plain functions that walk a decreasing noise ladder down to sigma = 0.

Every sampler has one signature, ``sample_<name>(denoiser, x, sigmas, *, generator=None,
callback=None, ...) -> Tensor``, and talks to the model only through the contract
``denoiser(x, sigma) -> x0_hat`` (chapter 4). ``x`` is already noised to ``sigmas[0]``, usually
``x = sigmas[0] * randn``; ``sigmas`` is strictly decreasing and ends in 0 (the clean sample).

| code | symbol | meaning |
|---|---|---|
| ``sigmas[i]``, ``sigma`` | σ_i | noise level of step i (variance-exploding view, x_σ = x0 + σε) |
| ``sigma_next`` | σ_{i+1} | the level this step moves to |
| ``x0_hat`` | D_θ(x, σ) | the denoiser's estimate of E[x0 \\| x_σ = x] (D* for the exact one) |
| ``d`` | (x − D)/σ | slope of the probability-flow ODE dx/dσ {cite}`karras2022` (eq. 3) |
| ``x0_extrap`` | D_i | DPM-Solver++(2M)'s extrapolated data prediction {cite}`lu2022pp` |
| ``step_size`` | δ_i | Langevin corrector step size (ε_i of {cite}`song2021sde`, Alg. 5; ε stays the noise) |
| ``h`` (DPM-Solver++) | Δλ | a step in λ = −log σ, Δλ_i = log(σ_i/σ_{i+1}) {cite}`lu2022pp` |
| ``h`` (Heun) | h = σ_{i+1} − σ̂_i | the discretisation step in σ |
| ``eta`` | η | DDIM stochasticity: 0 deterministic, 1 ancestral (DDPM) |
| ``s_churn`` | S_churn | noise re-injected per step in Karras et al.'s Algorithm 2 |
| ``s_tmin``, ``s_tmax`` | S_tmin, S_tmax | the window of σ where churn acts (γ_i = 0 outside) |
| ``s_noise`` | S_noise | scale of the churn noise (slightly above 1 compensates detail lost) |
| ``snr`` | r | Langevin corrector signal-to-noise ratio {cite}`song2021sde` |
| ``nfe`` | NFE | number of denoiser evaluations |

The callback receives a dict ``{"i", "sigma", "sigma_next", "x", "x0_hat", "nfe"}`` after each
step (``x`` is the state *after* the step), enough to draw trajectories.

The hot path is bare: ``x`` and the ladder are validated once (:func:`check_ladder`), step
coefficients are Python floats, and a denoiser that sets ``accepts_float_sigma`` (the package's
:class:`~diffusion_lite.denoisers.Denoiser`) receives σ as a Python float; any other denoiser gets a
``(B,)`` tensor, made once per σ. Every call's output shape is checked (a tuple comparison); NaN is
looked for once, at the end, and then traced back to the first evaluation that produced it, without
a device synchronisation per step (the machinery is in :mod:`~diffusion_lite.sampler_checks`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch

from .denoisers import DenoiserFn
from .lincomb import Affine, mix
from .sampler_checks import Counted, check_ladder, start, traced
from .utils import check_int

__all__ = ["SAMPLERS", "sample", "sample_ddpm", "sample_ddim", "sample_euler", "sample_heun",
           "sample_dpmpp_2m", "sample_pc", "nfe_of", "steps_for_nfe", "check_ladder"]

Callback = Callable[[dict], None] | None


# ----------------------------------------------------------------------------- shared helpers
def _rungs(sigmas: torch.Tensor):
    """(i, (σ_i, σ_{i+1})) as Python floats: step coefficients cost no tensor operations."""
    values = sigmas.tolist()
    return enumerate(zip(values[:-1], values[1:]))


def _randn(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _report(callback: Callback, i: int, sigmas: torch.Tensor, x: torch.Tensor,
            x0_hat: torch.Tensor | Affine, counted: Counted) -> None:
    """Call ``callback`` (the caller tests it for None: a step without one pays nothing)."""
    if isinstance(x0_hat, Affine):  # formed only when someone looks at it
        x0_hat = x0_hat.value()
    callback({"i": i, "sigma": sigmas[i], "sigma_next": sigmas[i + 1], "x": x,
              "x0_hat": x0_hat, "nfe": counted.nfe})


def _ancestral_split(sigma: float, sigma_next: float, eta: float) -> tuple[float, float]:
    """Split the move σ → σ' into a deterministic part σ_down and fresh noise σ_up.

    σ_up = η · σ' √(σ² − σ'²)/σ, σ_down = √(σ'² − σ_up²): σ_up² is DDIM's σ_t² in the
    variance-exploding view ({cite}`song2021ddim`, eq. 16), so η = 1 is the DDPM posterior.
    """
    sigma_up = eta * sigma_next * math.sqrt(sigma**2 - sigma_next**2) / sigma
    return math.sqrt(max(sigma_next**2 - sigma_up**2, 0.0)), sigma_up


# ----------------------------------------------------------------------------- the samplers
# The updates are written as the algorithm boxes write them, with one liberty for speed: each is
# a linear combination Σ w_k t_k of the step's tensors (x, the denoiser's output D, noise z) with
# Python-float weights; ``mix(w_x, x, w_D, D)`` evaluates w_x x + w_D D in one elementwise
# operation (usually), and D comes as its parts c_skip·x + c_out·F (``den.parts``), so forming it
# costs nothing extra. Noise is one more ``torch.add``.

@traced
@torch.no_grad()
def sample_ddpm(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                generator: torch.Generator | None = None, callback: Callback = None) -> torch.Tensor:
    """Ancestral sampling from the DDPM posterior q(x_σ' | x_σ, x0 = D) {cite}`ho2020` (eqs. 6-7).

    In the σ view the posterior is Gaussian with mean x0_hat + (σ'²/σ²)(x − x0_hat) and variance
    σ'²(σ² − σ'²)/σ². One NFE per step.
    """
    sigmas, den = start(denoiser, x, sigmas, generator)
    for i, (sigma, sigma_next) in _rungs(sigmas):
        x0_hat = den.parts(x, sigma)                                 # 1. predict x0 (eq. 15)
        ratio2 = (sigma_next / sigma) ** 2
        x = mix(ratio2, x, 1 - ratio2, x0_hat)                       # 2. posterior mean (eq. 7)
        if sigma_next > 0:                                           # 3. posterior noise
            x = torch.add(x, _randn(x, generator), alpha=sigma_next * math.sqrt(1 - ratio2))
        if callback is not None:
            _report(callback, i, sigmas, x, x0_hat, den)
    return den.finish(x)


@traced
@torch.no_grad()
def sample_ddim(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                generator: torch.Generator | None = None, callback: Callback = None,
                eta: float = 0.0) -> torch.Tensor:
    """DDIM {cite}`song2021ddim` (eq. 12) in the σ view: x' = x0_hat + σ_down ε_hat + σ_up z.

    ε_hat = (x − x0_hat)/σ; η = 0 is deterministic (and equals Euler on the probability-flow ODE),
    η = 1 is DDPM's ancestral step. One NFE per step.
    """
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0 = deterministic DDIM, 1 = DDPM), got {eta}")
    sigmas, den = start(denoiser, x, sigmas, generator)
    for i, (sigma, sigma_next) in _rungs(sigmas):
        x0_hat = den.parts(x, sigma)                                 # predicted x0
        sigma_down, sigma_up = _ancestral_split(sigma, sigma_next, eta)
        # x0_hat + σ_down ε_hat with ε_hat = (x − x0_hat)/σ: the direction pointing to x_t
        x = mix(sigma_down / sigma, x, 1 - sigma_down / sigma, x0_hat)
        if eta > 0 and sigma_next > 0:
            x = torch.add(x, _randn(x, generator), alpha=sigma_up)   # random noise
        if callback is not None:
            _report(callback, i, sigmas, x, x0_hat, den)
    return den.finish(x)


def _karras(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, generator, callback,
            s_churn: float, s_tmin: float, s_tmax: float, s_noise: float, heun: bool,
            name: str) -> torch.Tensor:
    """Karras et al.'s Algorithm 2 {cite}`karras2022`; ``heun=False`` skips the 2nd-order correction."""
    if s_churn < 0 or s_noise < 0:
        raise ValueError("s_churn and s_noise must be >= 0 (s_churn=0 is the deterministic ODE)")
    sigmas, den = start(denoiser, x, sigmas, generator)
    gamma_max = min(s_churn / (len(sigmas) - 1), math.sqrt(2) - 1)
    for i, (sigma, sigma_next) in _rungs(sigmas):
        # Increase noise temporarily: σ_hat = (1 + γ_i) σ_i, x_hat = x + √(σ_hat² − σ²) ε.
        gamma = gamma_max if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (1 + gamma)
        if gamma > 0:
            x = torch.add(x, _randn(x, generator), alpha=math.sqrt(sigma_hat**2 - sigma**2) * s_noise)
        # Euler step from σ_hat to σ_{i+1}: x' = x + (σ_{i+1} − σ_hat) d, d = (x − D)/σ_hat,
        # which is D + (σ_{i+1}/σ_hat)(x − D).
        x0_hat = den.parts(x, sigma_hat)
        ratio = sigma_next / sigma_hat
        x_next = mix(ratio, x, 1 - ratio, x0_hat)
        # Apply 2nd order correction (trapezoid), unless we stepped to σ = 0:
        # x + h (d + d')/2 = (x + x')/2 + (h/2) d' with h = σ_{i+1} − σ_hat (as x' = x + h d)
        # and d' = (x' − D')/σ_{i+1}, D' = D(x', σ_{i+1}). That is ½x + (½ + c) x' − c D' with
        # c = h/(2σ_{i+1}).
        if heun and sigma_next > 0:
            c = (sigma_next - sigma_hat) / (2 * sigma_next)
            x0_next = den.parts(x_next, sigma_next)                  # D' = D(x', σ_{i+1})
            x_next = mix(0.5 + c, x_next, -c, x0_next, also=(0.5, x))
        x = x_next
        if callback is not None:
            _report(callback, i, sigmas, x, x0_hat, den)
    return den.finish(x)


@traced
@torch.no_grad()
def sample_euler(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                 generator: torch.Generator | None = None, callback: Callback = None,
                 s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"),
                 s_noise: float = 1.0) -> torch.Tensor:
    """Euler on the probability-flow ODE dx/dσ = (x − D(x, σ))/σ, with optional churn.

    x_{i+1} = x + (σ_{i+1} − σ_i)(x − D(x, σ_i))/σ_i: first order, one NFE per step
    (Algorithm 2 of {cite}`karras2022` without its correction). It equals DDIM with η = 0 and the
    first-order exponential integrator in λ = −log σ (it lands between x and D, never beyond).

    Churn: at each rung with S_tmin ≤ σ_i ≤ S_tmax, γ_i = min(S_churn/N, √2 − 1) (N steps),
    σ̂_i = (1 + γ_i)σ_i and x̂ = x + S_noise √(σ̂_i² − σ_i²) z, then the step runs from (x̂, σ̂_i),
    calling D at σ̂_i (EDM's Algorithm 2; diffusers' Euler scheduler instead calls the model before
    adding the noise). Outside the window γ_i = 0. The defaults (S_tmin = 0, S_tmax = ∞) churn at
    every rung; ``s_churn=0`` is the plain ODE.
    """
    return _karras(denoiser, x, sigmas, generator, callback, s_churn, s_tmin, s_tmax, s_noise,
                   heun=False, name="sample_euler")


@traced
@torch.no_grad()
def sample_heun(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                generator: torch.Generator | None = None, callback: Callback = None,
                s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"),
                s_noise: float = 1.0) -> torch.Tensor:
    """Heun's 2nd-order method on the probability-flow ODE {cite}`karras2022` (Algorithms 1-2).

    Euler predictor x' = x + h d, then the trapezoid x_{i+1} = x + h (d + d')/2 with h = σ_{i+1} − σ_i;
    the last step to σ = 0 stays Euler (the slope d' at σ' = 0 would divide by zero). NFE = 2N − 1
    for N steps. Churn (``s_churn``, window ``s_tmin``/``s_tmax``, ``s_noise``) as in
    :func:`sample_euler`.
    """
    return _karras(denoiser, x, sigmas, generator, callback, s_churn, s_tmin, s_tmax, s_noise,
                   heun=True, name="sample_heun")


@traced
@torch.no_grad()
def sample_dpmpp_2m(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                    generator: torch.Generator | None = None,
                    callback: Callback = None) -> torch.Tensor:
    """DPM-Solver++(2M), the multistep 2nd-order data-prediction solver {cite}`lu2022pp` (Alg. 2).

    In λ = −log σ the probability-flow ODE is dx/dλ = −x + D(x, λ); integrating its linear part
    exactly (an exponential integrator) over a step Δλ = λ_{i+1} − λ_i gives
    x_{i+1} = (σ_{i+1}/σ_i) x − (e^{−Δλ} − 1) D_i, where D_i = (1 + 1/(2r)) x0_hat_i −
    1/(2r) x0_hat_{i−1}, r = Δλ_{i−1}/Δλ_i ("midpoint" variant; D_i = x0_hat_i gives Euler/DDIM).
    The first step and the last (to σ = 0) are first order. One NFE per step. (The code writes
    Δλ as ``h``.)
    ``generator`` is accepted for a uniform signature and unused (the solver is deterministic).
    """
    sigmas, den = start(denoiser, x, sigmas, generator)
    x0_prev, h_prev = None, None
    for i, (sigma, sigma_next) in _rungs(sigmas):
        x0_hat = den(x, sigma)                                       # data prediction
        if sigma_next == 0:                                          # λ = ∞: land on x0_hat
            x_next = x0_hat
        else:
            h = math.log(sigma / sigma_next)                         # h = λ_{i+1} − λ_i
            x0_extrap = x0_hat                                       # D_i, 1st order
            if x0_prev is not None:                                  # 2nd order: extrapolate
                r = h_prev / h                                       # D_i = x0_prev + (1 + 1/2r)(x0_hat − x0_prev)
                x0_extrap = torch.lerp(x0_prev, x0_hat, 1 + 1 / (2 * r))
            # Exponential integrator: (σ'/σ) x − (e^{−h} − 1) D_i = D_i + (σ'/σ)(x − D_i),
            # since e^{−h} = σ'/σ.
            x_next = torch.lerp(x0_extrap, x, sigma_next / sigma)
            h_prev = h
        x0_prev, x = x0_hat, x_next
        if callback is not None:
            _report(callback, i, sigmas, x, x0_hat, den)
    return den.finish(x)


@traced
@torch.no_grad()
def sample_pc(denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor, *,
              generator: torch.Generator | None = None, callback: Callback = None,
              n_corrector: int = 1, snr: float = 0.16) -> torch.Tensor:
    """Predictor–corrector sampling of the VE SDE {cite}`song2021sde` (Algorithms 4-5).

    Predictor (reverse diffusion): x' = x + (σ_i² − σ_{i+1}²) s + √(σ_i² − σ_{i+1}²) z, with the
    score s = (D(x, σ) − x)/σ². Corrector (Langevin at σ_{i+1}, ``n_corrector`` times):
    δ_i = 2 (r ‖z‖ / ‖s‖)² (the paper's ε_i; ε is kept for noise here), x ← x + δ_i s + √(2δ_i) z,
    with the norms averaged over the batch (so the step size couples the samples of a batch).
    NFE = N + n_corrector (N − 1). Step for step this is diffusers' ``ScoreSdeVeScheduler``
    (``step_pred`` then ``step_correct``) on the same ladder, checked in
    ``tests/test_sampler_parity.py``.
    """
    check_int(n_corrector, "n_corrector", minimum=0, what="Langevin steps per level")
    if not snr > 0:
        raise ValueError(f"snr must be > 0 (Song et al. use snr=0.16), got {snr!r}")
    sigmas, den = start(denoiser, x, sigmas, generator)
    for i, (sigma, sigma_next) in _rungs(sigmas):
        # Predictor: one reverse-diffusion step σ_i → σ_{i+1}; x + (σ² − σ'²) s, s = (D − x)/σ².
        x0_hat = den.parts(x, sigma)
        var = sigma**2 - sigma_next**2
        x = mix(1 - var / sigma**2, x, var / sigma**2, x0_hat)
        if sigma_next > 0:
            x = torch.add(x, _randn(x, generator), alpha=math.sqrt(var))
            # Corrector: Langevin steps at σ_{i+1}, step size set by the target snr r.
            for _ in range(n_corrector):
                x = _langevin(den.parts(x, sigma_next), x, sigma_next, snr, _randn(x, generator))
        if callback is not None:
            _report(callback, i, sigmas, x, x0_hat, den)
    return den.finish(x)


def _norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample norm summed over the batch (Song et al.'s code averages it; the step size needs
    only the ratio of two such sums over the same batch, so the sum serves and costs less): a
    per-sample step size would explode for samples where the score is nearly zero."""
    return torch.linalg.vector_norm(t, dim=tuple(range(1, t.ndim))).sum()  # scalar


def _langevin(x0_hat: Affine, x: torch.Tensor, sigma: float, snr: float,
              z: torch.Tensor) -> torch.Tensor:
    """One corrector step of Algorithm 5 (α = 1): x + δ s + √(2δ) z, δ = 2 (r ‖z‖/‖s‖)².

    With g = D − x = σ² s and q = ‖z‖/‖g‖ (a 0-d tensor: no device synchronisation),
    δ = 2 r² σ⁴ q² and √(2δ) = 2 r σ² q, so the step is x + 2 r σ² q (z + r q g): two addcmuls.
    g = (c_skip − 1) x + c_out F; when c_skip = 1 (an ε-network) g is c_out F and is never formed:
    the norms and weights take F and the factor c_out instead.
    """
    if x0_hat.c_skip == 1.0 and x0_hat.c_out != 0.0:
        t, scale = x0_hat.F, x0_hat.c_out                            # g = c_out · F
    else:
        t, scale = mix(-1.0, x, 1.0, x0_hat), 1.0                    # g = D − x
    q = _norm(z) / _norm(t)                                          # ‖z‖/‖t‖ = |scale| ‖z‖/‖g‖
    sign = 1.0 if scale > 0 else -1.0
    inner = torch.addcmul(z, t, q, value=snr * sign)                 # z + r q g
    return torch.addcmul(x, inner, q, value=2 * snr * sigma**2 / abs(scale))


# ----------------------------------------------------------------------------- dispatch
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": sample_ddpm, "ddim": sample_ddim, "euler": sample_euler, "heun": sample_heun,
    "dpmpp_2m": sample_dpmpp_2m, "pc": sample_pc,
}


def sample(name: str, denoiser: DenoiserFn, x: torch.Tensor, sigmas: torch.Tensor,
           **kwargs) -> torch.Tensor:
    """Run the sampler registered as ``name`` (see ``SAMPLERS``) with the keyword arguments given."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](denoiser, x, sigmas, **kwargs)


def _options(name: str) -> tuple[str, ...]:
    """The keyword options sampler ``name`` accepts (what ``nfe_of`` may be given)."""
    params = inspect.signature(SAMPLERS[name]).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)


def nfe_of(name: str, n_steps: int, **options: object) -> int:
    """Denoiser evaluations a sampler spends on a ladder of ``n_steps`` steps (n_steps + 1 σ's).

    ``options`` are the sampler's own keyword arguments (e.g. ``n_corrector`` for ``"pc"``); an
    unknown one is an error, so a typo cannot silently change the count.
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    unknown = sorted(set(options) - set(_options(name)))
    if unknown:
        raise TypeError(f"nfe_of({name!r}) got unknown option(s) {unknown}; "
                        f"{name!r} takes {list(_options(name))}")
    check_int(n_steps, "n_steps", minimum=1)
    if name == "heun":
        return 2 * n_steps - 1
    if name == "pc":
        n_corrector = check_int(options.get("n_corrector", 1), "n_corrector", minimum=0)
        return n_steps + n_corrector * (n_steps - 1)
    return n_steps


def steps_for_nfe(name: str, nfe: int, **options: object) -> int:
    """The most steps whose cost ``nfe_of(name, steps, **options)`` fits in a budget of ``nfe``."""
    if nfe_of(name, 1, **options) > nfe:
        raise ValueError(f"{name!r} needs at least {nfe_of(name, 1, **options)} NFE, got {nfe}")
    n = 1
    while nfe_of(name, n + 1, **options) <= nfe:
        n += 1
    return n
