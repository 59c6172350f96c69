"""Flow matching and rectified flow on the course's one contract ``denoiser(x, sigma)``.

An interpolant joins data and noise, x_t = a_t x₀ + b_t ε for t ∈ [0, 1] (t = 0 data, t = 1
noise); its conditional velocity is u_cond = ȧ_t x₀ + ḃ_t ε, and regressing a network on it
learns the marginal velocity u(x, t) = E[u_cond | x_t = x] {cite}`lipman2023` {cite}`liu2023`
{cite}`albergo2023`. Because x_t / a_t = x₀ + (b_t/a_t) ε is the σ-view sample with σ = b_t/a_t,
a velocity is one more parametrisation of the denoiser, and every chapter-6 sampler runs it.

| path | a_t | b_t | σ(t) = b/a | t(σ) |
|---|---|---|---|---|
| ``"rectified"`` (linear) | 1 − t | t | t/(1 − t) | σ/(1 + σ) |
| ``"cosine"`` (variance preserving) | cos(πt/2) | sin(πt/2) | tan(πt/2) | (2/π) arctan σ |

Conversions at (x_t, t), all exact: x̂₀ = D(x_t/a, b/a); ε̂ = (x_t − a x̂₀)/b;
u = ȧ x̂₀ + ḃ ε̂; score s_t = −ε̂/b. For the rectified path u = (x_t − x̂₀)/t and x̂₀ = x_t − t u.

Notation (code → symbol): ``x_t`` x_t · ``t`` t · ``a``, ``b`` a_t, b_t · ``da``, ``db`` ȧ_t, ḃ_t
· ``u`` velocity u(x, t) = dx_t/dt · ``x0_hat`` x̂₀ = D · ``eps_hat`` ε̂ · ``score`` ∇ log p_t ·
``sigma`` σ = b/a. Papers that put data at t = 1 (Lipman, Liu) use t' = 1 − t and v = −u.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .utils import append_dims, as_sigma

__all__ = ["PATHS", "KINDS", "path_coefficients", "sigma_of_t", "t_of_sigma", "convert",
           "uniform_t_sigmas", "VelocityDenoiser", "oracle_velocity", "conditional_velocity",
           "interpolate", "flow_matching_loss", "velocity_floor", "euler_t"]

PATHS = ("rectified", "cosine")
KINDS = ("x0", "eps", "velocity", "score")


def _check_path(path: str) -> None:
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; choose one of {PATHS}")


def path_coefficients(t: torch.Tensor, path: str = "rectified"
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(a_t, b_t, ȧ_t, ḃ_t) of x_t = a_t x₀ + b_t ε, each shaped like ``t``."""
    _check_path(path)
    t = torch.as_tensor(t)
    if path == "rectified":
        return 1 - t, t, -torch.ones_like(t), torch.ones_like(t)
    h = math.pi / 2
    return (h * t).cos(), (h * t).sin(), -h * (h * t).sin(), h * (h * t).cos()


def sigma_of_t(t: torch.Tensor, path: str = "rectified") -> torch.Tensor:
    """σ(t) = b_t / a_t: x_t / a_t = x₀ + σ ε is the course's σ-view sample."""
    a, b, _, _ = path_coefficients(t, path)
    return b / a


def t_of_sigma(sigma: torch.Tensor, path: str = "rectified") -> torch.Tensor:
    """The inverse of :func:`sigma_of_t`: σ/(1 + σ) (rectified) or (2/π) arctan σ (cosine)."""
    _check_path(path)
    sigma = torch.as_tensor(sigma)
    return sigma / (1 + sigma) if path == "rectified" else sigma.atan() * (2 / math.pi)


def convert(value: torch.Tensor, source: str, target: str, x_t: torch.Tensor,
            t: float | torch.Tensor, path: str = "rectified") -> torch.Tensor:
    """Turn one prediction at (x_t, t) into another: ``"x0"``, ``"eps"``, ``"velocity"``, ``"score"``.

    All four are affine in each other given x_t: ε̂ = (x_t − a x̂₀)/b, u = ȧ x̂₀ + ḃ ε̂,
    s = −ε̂/b, and x̂₀ = (b u − ḃ x_t)/(ȧ b − a ḃ) {cite}`albergo2023`. ``t`` is a scalar or
    ``(B,)`` with 0 < t < 1 (the ends are singular for some pairs).
    """
    for kind in (source, target):
        if kind not in KINDS:
            raise ValueError(f"unknown prediction kind {kind!r}; choose one of {KINDS}")
    t = append_dims(as_sigma(t, x_t), x_t.ndim)  # (B, 1, ...) — as_sigma checks finite, >= 0
    a, b, da, db = path_coefficients(t, path)
    if source == "x0":                                   # everything via (x̂₀, ε̂)
        x0_hat = value
    elif source == "eps":
        x0_hat = (x_t - b * value) / a
    elif source == "velocity":
        x0_hat = (b * value - db * x_t) / (da * b - a * db)
    else:                                                # score: ε̂ = −b s
        x0_hat = (x_t + b**2 * value) / a
    if target == "x0":
        return x0_hat
    eps_hat = (x_t - a * x0_hat) / b
    if target == "eps":
        return eps_hat
    return da * x0_hat + db * eps_hat if target == "velocity" else -eps_hat / b


def uniform_t_sigmas(n: int, *, sigma_max: float = 1e3, path: str = "rectified") -> torch.Tensor:
    """The σ ladder of n Euler steps uniform in t, from t_max = t(σ_max) down to 0 (float64).

    Rectified flow's usual grid t_i = t_max (1 − i/n); σ_i = σ(t_i) ends in 0, so
    ``samplers.sample_euler(model, sigmas[0] * eps, sigmas)`` is Euler in t {cite}`liu2023`.
    """
    if not (isinstance(n, int) and n >= 1) or not sigma_max > 0:
        raise ValueError(f"need an integer n >= 1 and sigma_max > 0, got n={n!r}, "
                         f"sigma_max={sigma_max}")
    t_max = float(t_of_sigma(torch.tensor(float(sigma_max), dtype=torch.float64), path))
    t = t_max * (1 - torch.arange(n + 1, dtype=torch.float64) / n)  # (n + 1,)
    sig = sigma_of_t(t, path)
    sig[0], sig[-1] = float(sigma_max), 0.0  # exact ends (no round-off in σ(t(σ_max)))
    return sig


def _c_noise(t: torch.Tensor, path: str) -> torch.Tensor:
    """The network's time input: ¼ log σ(t), the same c_noise as the course's denoisers."""
    return sigma_of_t(t.clamp(1e-12, 1 - 1e-7), path).log() / 4


class VelocityDenoiser(nn.Module):
    """A velocity network ``net(x_t, c_noise, labels=None) -> u`` seen two ways.

    ``velocity(x_t, t)`` is u(x_t, t) (what flow matching trains); ``forward(x, sigma)`` is the
    contract D(x, σ): t = t(σ), x_t = a_t x, x̂₀ = convert(u, "velocity", "x0"). For the
    rectified path this is EDM's form with c_skip = c_in = 1/(1 + σ), c_out = −σ/(1 + σ)
    {cite}`karras2022` {cite}`lipman2023`. ``c_noise = ¼ log σ(t)``, as for every denoiser.
    """

    def __init__(self, net: nn.Module, path: str = "rectified") -> None:
        super().__init__()
        _check_path(path)
        self.net, self.path = net, path

    def velocity(self, x_t: torch.Tensor, t: float | torch.Tensor,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
        t = as_sigma(t, x_t)  # (B,)
        return self.net(x_t, _c_noise(t, self.path), labels)  # (B, ...) like x_t

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        sigma = as_sigma(sigma, x)  # (B,)
        t = t_of_sigma(sigma, self.path)
        a, _, _, _ = path_coefficients(t, self.path)
        x_t = append_dims(a, x.ndim) * x  # x_t = a_t x_σ
        return convert(self.velocity(x_t, t, labels), "velocity", "x0", x_t, t, self.path)


def oracle_velocity(denoiser: Callable[..., torch.Tensor], x_t: torch.Tensor,
                    t: float | torch.Tensor, path: str = "rectified") -> torch.Tensor:
    """The marginal velocity u(x, t) = ȧ D + ḃ ε̂ from a denoiser D(x, σ) (exact for a mixture).

    With ``denoiser = mixtures.GaussianMixture(...)`` this is the exact field every flow-matching
    model tries to learn {cite}`lipman2023`.
    """
    t = as_sigma(t, x_t)
    a, b, _, _ = path_coefficients(t, path)
    x0_hat = denoiser(x_t / append_dims(a, x_t.ndim), b / a)
    return convert(x0_hat, "x0", "velocity", x_t, t, path)


def interpolate(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor,
                path: str = "rectified") -> torch.Tensor:
    """x_t = a_t x₀ + b_t ε with ``t`` of shape (B,)."""
    a, b, _, _ = path_coefficients(append_dims(t, x0.ndim), path)
    return a * x0 + b * eps


def conditional_velocity(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor,
                         path: str = "rectified") -> torch.Tensor:
    """u_cond = ȧ_t x₀ + ḃ_t ε, the regression target (ε − x₀ for the rectified path)."""
    _, _, da, db = path_coefficients(append_dims(t, x0.ndim), path)
    return da * x0 + db * eps


def flow_matching_loss(model: VelocityDenoiser, x0: torch.Tensor, eps: torch.Tensor,
                       t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample ‖u_θ(x_t, t) − u_cond‖²/d, shape (B,) {cite}`lipman2023`.

    Its minimiser over all functions is the marginal velocity; what is left is the floor
    :func:`velocity_floor`. Equal to λ(σ)‖D − x₀‖²/d with λ = (ȧ − a ḃ/b)² (1/t² rectified).
    """
    if eps.shape != x0.shape or t.shape != (x0.shape[0],):
        raise ValueError(f"eps must have x0's shape {tuple(x0.shape)} and t shape "
                         f"({x0.shape[0]},); got {tuple(eps.shape)} and {tuple(t.shape)}")
    x_t = interpolate(x0, eps, t, model.path)
    u = model.velocity(x_t, t, labels)
    return (u - conditional_velocity(x0, eps, t, model.path)).pow(2).flatten(1).mean(1)


@torch.no_grad()
def velocity_floor(denoiser: Callable[..., torch.Tensor], x0: torch.Tensor, eps: torch.Tensor,
                   t: torch.Tensor, path: str = "rectified") -> torch.Tensor:
    """Per-sample ‖u*(x_t, t) − u_cond‖²/d with u* the exact marginal velocity (the floor).

    Pass the mixture oracle as ``denoiser`` and the *same* (x₀, ε, t) as the model's loss: the
    ratio of the means is a paired estimate of loss ÷ irreducible loss.
    """
    x_t = interpolate(x0, eps, t, path)
    u = oracle_velocity(denoiser, x_t, t, path)
    return (u - conditional_velocity(x0, eps, t, path)).pow(2).flatten(1).mean(1)


@torch.no_grad()
def euler_t(velocity: Callable[..., torch.Tensor], x: torch.Tensor, ts: torch.Tensor,
            *, trajectory: bool = False) -> torch.Tensor:
    """Euler in t on dx/dt = u(x, t) along a grid ``ts`` (e.g. t_max → 0): x' = x + (t' − t) u.

    The reference integrator of flow matching, for tests and straightness; production sampling
    goes through ``samplers`` with :func:`uniform_t_sigmas` (the same numbers for the rectified
    path). With ``trajectory`` returns all states, shape (len(ts), B, ...).
    """
    ts = torch.as_tensor(ts, dtype=x.dtype, device=x.device)
    if ts.ndim != 1 or ts.numel() < 2:
        raise ValueError("ts must be a 1-D grid with at least 2 times, e.g. torch.linspace(1, 0, 9)")
    states = [x]
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t) * velocity(x, t.expand(x.shape[0]))
        states.append(x)
    return torch.stack(states) if trajectory else x
