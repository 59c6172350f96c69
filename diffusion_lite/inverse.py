"""Steering a diffusion model: conditioning methods for y = A x₀ + s·n, and classifier guidance.

Every method here approximates sampling the posterior p(x₀ | y). By Bayes' rule for scores,

    ∇ log p_σ(x | y) = ∇ log p_σ(x) + ∇ log p(y | x_σ = x),

and since D = x + σ² s (Tweedie), adding a guidance term g ≈ ∇ log p(y | x_σ) to the score is the
same as using the denoiser D'(x, σ) = D(x, σ) + σ² g. The methods differ in how they guess g:

| method | guess of p(y \\| x_σ) | form here |
|---|---|---|
| DPS {cite}`chung2023dps` | N(y; A D(x, σ), s² I) | wrapper ``DPSDenoiser`` |
| ΠGDM {cite}`song2023pigdm` | N(y; A D(x, σ), s² I + r_σ² A Aᵀ) | wrapper ``PiGDMDenoiser`` |
| classifier guidance {cite}`dhariwal2021` | p_σ(c \\| x) from a noise-aware classifier | wrapper ``ClassifierGuidedDenoiser`` |
| replacement / RePaint {cite}`song2021sde`, {cite}`lugmayr2022` | observed pixels overwritten by noised y | sampler ``sample_replacement`` |
| SDEdit {cite}`meng2022` | start from the guide noised to σ_start | sampler ``sdedit`` |

The wrappers plug into every sampler of chapter 6 (``samplers.sample(name, wrapper, ...)``); the
two samplers mirror their algorithm boxes. ``posterior.linear_gaussian_posterior`` is the exact
answer they are measured against.

| code name | symbol | meaning |
|---|---|---|
| ``A`` | A | observation operator acting on flattened x, shape (m, d) |
| ``y`` | y | observations, shape (m,) (one for the batch) or (B, m) (one per sample) |
| ``noise_std`` | s | observation noise standard deviation |
| ``mask`` | M | 1 where a coordinate is observed (replacement), shape of one sample |
| ``scale`` | ζ, γ | guidance weight (1 = the method's own likelihood) |
| ``sigma_start`` | σ_start | SDEdit's starting noise level (realism up, faithfulness down) |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import samplers, schedules
from .utils import append_dims, as_sigma

__all__ = ["DPSDenoiser", "PiGDMDenoiser", "ClassifierGuidedDenoiser", "sample_replacement",
           "sdedit", "mask_operator", "downsample_operator"]


def _check_operator(A, y, noise_std: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    A, y = torch.as_tensor(A), torch.as_tensor(y)
    if A.ndim != 2:
        raise ValueError(f"A must be a matrix (m, d) acting on flattened samples, got shape "
                         f"{tuple(A.shape)}")
    if y.ndim not in (1, 2) or y.shape[-1] != A.shape[0]:
        raise ValueError(f"y must have shape ({A.shape[0]},) or (B, {A.shape[0]}) to match A's "
                         f"{A.shape[0]} rows, got {tuple(y.shape)}")
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be finite and >= 0, got {noise_std}")
    return A, y, float(noise_std)


class _Guided:
    """D'(x, σ) = D(x, σ) + scale · σ² · ∇_x log p̂(y | x_σ = x), the gradient taken by autograd."""

    def __init__(self, denoiser: Callable[..., torch.Tensor], scale: float) -> None:
        if not callable(denoiser):
            raise TypeError("denoiser must be callable as denoiser(x, sigma)")
        if not (math.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale must be finite and >= 0 (0 = unguided), got {scale}")
        self.denoiser, self.scale = denoiser, float(scale)

    def log_likelihood(self, x0_hat: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor
                       ) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        sigma = as_sigma(sigma, x)  # (B,)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            x0_hat = self.denoiser(xg, sigma)  # (B, ...)
            log_lik = self.log_likelihood(x0_hat, xg, sigma).sum()  # samples are independent
            (grad,) = torch.autograd.grad(log_lik, xg)  # (B, ...): J_Dᵀ ∇_{x0} log p̂
        return x0_hat.detach() + self.scale * append_dims(sigma**2, x.ndim) * grad


class DPSDenoiser(_Guided):
    """Diffusion posterior sampling: p(y | x_σ) ≈ N(y; A D(x, σ), s² I) {cite}`chung2023dps`.

    g = ∇_x log N(y; A D(x, σ), s² I) = J_D(x)ᵀ Aᵀ (y − A D(x, σ)) / s², where J_D = ∂D/∂x is the
    denoiser's Jacobian (autograd through the network), and D' = D + ζ σ² g. ``scale`` = ζ; the
    paper tunes ζ per task because the plug-in likelihood is overconfident at large σ.
    """

    def __init__(self, denoiser: Callable[..., torch.Tensor], A, y, noise_std: float, *,
                 scale: float = 1.0) -> None:
        super().__init__(denoiser, scale)
        self.A, self.y, s = _check_operator(A, y, noise_std)
        if s == 0:
            raise ValueError("DPS's Gaussian likelihood needs noise_std > 0; for exact "
                             "observations pass a small noise_std (e.g. 0.05) or use ΠGDM")
        self.noise_std = s

    def log_likelihood(self, x0_hat, x, sigma):
        A = self.A.to(x0_hat)
        resid = self.y.to(x0_hat) - x0_hat.flatten(1) @ A.T  # (B, m): y − A D
        return -0.5 * resid.pow(2).sum(1) / self.noise_std**2  # (B,)


class PiGDMDenoiser(_Guided):
    """ΠGDM: p(y | x_σ) ≈ N(y; A D(x, σ), s² I + r_σ² A Aᵀ), r_σ² = σ² v / (σ² + v) {cite}`song2023pigdm`.

    r_σ² is the posterior variance of x₀ given x_σ under a Gaussian prior of variance v
    (``data_var``), so the likelihood widens at large σ where D is uncertain, and it is defined
    for exact observations (s = 0) too. g = J_Dᵀ Aᵀ (s² I + r_σ² A Aᵀ)⁻¹ (y − A D).
    """

    def __init__(self, denoiser: Callable[..., torch.Tensor], A, y, noise_std: float, *,
                 data_var: float = 1.0, scale: float = 1.0) -> None:
        super().__init__(denoiser, scale)
        self.A, self.y, self.noise_std = _check_operator(A, y, noise_std)
        if not data_var > 0:
            raise ValueError(f"data_var must be > 0 (the data's variance per coordinate), got "
                             f"{data_var}")
        self.data_var = float(data_var)

    def log_likelihood(self, x0_hat, x, sigma):
        A = self.A.to(x0_hat)
        resid = self.y.to(x0_hat) - x0_hat.flatten(1) @ A.T  # (B, m)
        r2 = sigma**2 * self.data_var / (sigma**2 + self.data_var)  # (B,)
        eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
        cov = self.noise_std**2 * eye + r2[:, None, None] * (A @ A.T)  # (B, m, m)
        # The covariance depends on σ only, not on x: no gradient flows through it.
        sol = torch.linalg.solve(cov.detach(), resid[..., None])[..., 0]  # (B, m)
        return -0.5 * (resid * sol).sum(1)


class ClassifierGuidedDenoiser:
    """Classifier guidance: D' = D + γ σ² ∇_x log p_σ(c | x) {cite}`dhariwal2021`.

    ``log_prob(x, sigma)`` returns log-probabilities (B, C) of a *noise-aware* classifier;
    ``labels`` (B,) are the wanted classes; ``scale`` = γ (1 = Bayes' rule, > 1 sharpens).
    """

    def __init__(self, denoiser: Callable[..., torch.Tensor],
                 log_prob: Callable[..., torch.Tensor], labels: torch.Tensor,
                 scale: float = 1.0) -> None:
        if not (callable(denoiser) and callable(log_prob)):
            raise TypeError("denoiser and log_prob must be callables of (x, sigma)")
        if not (math.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale must be finite and >= 0, got {scale}")
        self.denoiser, self.log_prob, self.scale = denoiser, log_prob, float(scale)
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        sigma = as_sigma(sigma, x)
        if self.labels.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},), got "
                             f"{tuple(self.labels.shape)}")
        with torch.no_grad():
            x0_hat = self.denoiser(x, sigma)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            logp = self.log_prob(xg, sigma)  # (B, C)
            chosen = logp.gather(1, self.labels.to(logp.device)[:, None]).sum()
            (grad,) = torch.autograd.grad(chosen, xg)  # (B, ...) ∇ log p_σ(c | x)
        return x0_hat + self.scale * append_dims(sigma**2, x.ndim) * grad.to(x0_hat.dtype)


@torch.no_grad()
def sample_replacement(denoiser: Callable[..., torch.Tensor], x: torch.Tensor,
                       sigmas: torch.Tensor, mask: torch.Tensor, known: torch.Tensor, *,
                       resample: int = 1, generator: torch.Generator | None = None,
                       callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Inpainting by replacement, with RePaint's resampling when ``resample`` > 1.

    Each step (Lugmayr et al. 2022, Algorithm 1, in the σ view {cite}`lugmayr2022`):
      1. unknown part: one DDPM ancestral step x → x_{σ'} with the unconditional denoiser;
      2. known part: the observation noised to the new level, ``known + σ' ε``;
      3. x_{σ'} = M ⊙ known_{σ'} + (1 − M) ⊙ unknown_{σ'};
      4. if more resamples remain, jump back: x_σ = x_{σ'} + √(σ² − σ'²) ε, and repeat.
    ``resample = 1`` is the plain replacement method of Song et al. 2021 {cite}`song2021sde`.
    ``mask`` (shape of one sample) is 1 on observed coordinates; ``known`` holds them (B, ...).
    """
    sigmas = samplers.check_ladder(x, sigmas)
    mask = torch.as_tensor(mask, dtype=x.dtype, device=x.device)
    if mask.shape != x.shape[1:] or known.shape != x.shape:
        raise ValueError(f"mask must have the shape of one sample {tuple(x.shape[1:])} and known "
                         f"the shape of x {tuple(x.shape)}; got {tuple(mask.shape)}, "
                         f"{tuple(known.shape)}")
    if not isinstance(resample, int) or resample < 1:
        raise ValueError(f"resample must be an int >= 1 (1 = plain replacement), got {resample}")

    def randn():
        return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)

    x = mask * (known + sigmas[0] * randn()) + (1 - mask) * x
    for i, (sigma, sigma_next) in enumerate(zip(sigmas[:-1].tolist(), sigmas[1:].tolist())):
        for u in range(resample):
            x0_hat = denoiser(x, sigmas[i].expand(x.shape[0]))
            ratio2 = (sigma_next / sigma) ** 2
            unknown = x0_hat + ratio2 * (x - x0_hat)  # DDPM posterior mean
            unknown = unknown + sigma_next * math.sqrt(1 - ratio2) * randn()
            x = mask * (known + sigma_next * randn()) + (1 - mask) * unknown
            if u < resample - 1 and sigma_next > 0:  # RePaint: jump back to σ and redo
                x = x + math.sqrt(sigma**2 - sigma_next**2) * randn()
        if callback is not None:
            callback({"i": i, "sigma": sigmas[i], "sigma_next": sigmas[i + 1], "x": x,
                      "x0_hat": x0_hat})
    return x


@torch.no_grad()
def sdedit(denoiser: Callable[..., torch.Tensor], guide: torch.Tensor, sigma_start: float, *,
           n_steps: int = 20, sampler: str = "ddpm", sigma_min: float = 0.002,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """SDEdit: noise the guide to σ_start, then run the reverse process down to 0 {cite}`meng2022`.

    x_{σ_start} = guide + σ_start ε, then ``samplers.sample(sampler, denoiser, x, ladder)`` on a
    Karras ladder from σ_start. Small σ_start keeps the guide (faithful); large σ_start forgets it
    (realistic but unrelated): the trade-off is the one knob.
    """
    if not (math.isfinite(sigma_start) and sigma_start > sigma_min):
        raise ValueError(f"sigma_start must be > sigma_min = {sigma_min}, got {sigma_start}")
    sigmas = schedules.karras_sigmas(n_steps, sigma_min, sigma_start).to(guide.dtype)
    eps = torch.randn(guide.shape, generator=generator, dtype=guide.dtype).to(guide.device)
    return samplers.sample(sampler, denoiser, guide + sigma_start * eps, sigmas,
                           generator=generator)


def mask_operator(mask: torch.Tensor) -> torch.Tensor:
    """The (m, d) matrix that keeps the coordinates where ``mask`` is 1 (rows of the identity)."""
    flat = torch.as_tensor(mask).flatten().bool()
    return torch.eye(flat.numel())[flat]


def downsample_operator(height: int, width: int, factor: int) -> torch.Tensor:
    """The (hw/f², hw) matrix of f×f average pooling: super-resolution's forward operator."""
    if height % factor or width % factor:
        raise ValueError(f"factor {factor} must divide the image size {height}×{width}")
    h, w = height // factor, width // factor
    A = torch.zeros(h * w, height * width)
    for i in range(height):
        for j in range(width):
            A[(i // factor) * w + j // factor, i * width + j] = 1.0 / factor**2
    return A
