"""Consistency models: one network that maps any point of a probability-flow trajectory to its end.

The probability-flow ODE dx/dσ = (x − D(x, σ))/σ carries every x_σ along one trajectory to a point
x_{σ_min} near the data. The *consistency function* f(x_σ, σ) = x_{σ_min} returns that end point
in one evaluation {cite}`song2023consistency`. It is parametrised so that the boundary condition
f(x, σ_min) = x holds exactly, whatever the network:

    f_θ(x, σ) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x, c_noise(σ))
    c_skip(σ) = σ_d² / ((σ − σ_min)² + σ_d²),   c_out(σ) = σ_d (σ − σ_min) / √(σ² + σ_d²)

(c_in and c_noise as in EDM), so c_skip(σ_min) = 1 and c_out(σ_min) = 0. It is trained by asking
two neighbouring points of one trajectory, at σ_{n+1} > σ_n, to give the same answer:

    L = E λ(σ_n) d(f_θ(x_{σ_{n+1}}, σ_{n+1}), f_θ⁻(x̂_{σ_n}, σ_n)),   θ⁻ a stop-gradient (EMA) copy

* consistency *distillation*: x̂_{σ_n} is one Heun step of a teacher's ODE from x_{σ_{n+1}};
* consistency *training*: no teacher; x̂_{σ_n} = x₀ + σ_n ε with the *same* ε as x_{σ_{n+1}} =
  x₀ + σ_{n+1} ε (the one-sample estimate of the ODE step, exact as N → ∞).

On a Gaussian mixture the exact denoiser gives the exact trajectories (:func:`exact_trajectories`),
so the learned f can be compared with the truth (:func:`consistency_error`).

| code | symbol | meaning |
|---|---|---|
| ``sigma_min`` | σ_min | where trajectories end; f(x, σ_min) = x |
| ``sigma_data`` | σ_d | the data's per-coordinate standard deviation |
| ``c_skip``, ``c_out`` | c_skip(σ), c_out(σ) | the boundary-respecting skip and output scales |
| ``f`` | f_θ(x, σ) | the consistency function (called like a denoiser: f(x, σ) → x̂₀) |
| ``target_net`` | θ⁻ | the stop-gradient copy that gives the training target |
| ``mu`` | μ | target EMA rate, θ⁻ ← μ θ⁻ + (1 − μ) θ (0: θ⁻ = θ, as in improved CT) |
| ``n_scales`` | N | number of σ levels σ_min = σ_0 < … < σ_{N−1} = σ_max of the discretisation |
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from . import samplers, schedules
from .utils import append_dims, as_sigma

__all__ = ["boundary_coefficients", "ConsistencyFunction", "ConsistencyConfig",
           "consistency_levels", "train_consistency", "sample_consistency", "exact_trajectories",
           "consistency_error", "heun_step"]


def boundary_coefficients(sigma: float | torch.Tensor, sigma_min: float, sigma_data: float
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip(σ), c_out(σ)) with c_skip(σ_min) = 1 and c_out(σ_min) = 0 exactly.

    c_skip = σ_d²/((σ − σ_min)² + σ_d²), c_out = σ_d (σ − σ_min)/√(σ² + σ_d²)
    ({cite}`song2023consistency`, appendix C). ``sigma``: a float or a tensor of levels.
    """
    sigma = torch.as_tensor(sigma)
    if not sigma.is_floating_point():
        sigma = sigma.to(torch.float64)
    shifted = sigma - sigma_min
    c_skip = sigma_data**2 / (shifted**2 + sigma_data**2)
    c_out = sigma_data * shifted / (sigma**2 + sigma_data**2).sqrt()
    return c_skip, c_out


class ConsistencyFunction(nn.Module):
    """f_θ(x, σ) = c_skip(σ) x + c_out(σ) F_θ(c_in x, ¼ log σ) for a network ``net(x, c_noise)``.

    Callable like a denoiser, ``f(x, sigma) -> x0_hat`` (σ scalar or ``(B,)``), so it plugs into
    the course's contract; :func:`sample_consistency` is its few-step sampler
    {cite}`song2023consistency`.
    """

    def __init__(self, net: nn.Module, sigma_data: float, sigma_min: float = 0.002) -> None:
        super().__init__()
        if not sigma_data > 0 or not sigma_min > 0:
            raise ValueError(f"sigma_data and sigma_min must be > 0, got {sigma_data}, {sigma_min}")
        self.net, self.sigma_data, self.sigma_min = net, float(sigma_data), float(sigma_min)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        sigma = as_sigma(sigma, x)  # (B,)
        c_skip, c_out = boundary_coefficients(sigma, self.sigma_min, self.sigma_data)
        c_in = 1 / (sigma**2 + self.sigma_data**2).sqrt()
        F = self.net(append_dims(c_in, x.ndim) * x, sigma.clamp_min(1e-20).log() / 4, labels)
        return append_dims(c_skip, x.ndim) * x + append_dims(c_out, x.ndim) * F


@torch.no_grad()
def sample_consistency(f: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor, *,
                       generator: torch.Generator | None = None,
                       callback: Callable[[dict], None] | None = None,
                       sigma_min: float = 0.002) -> torch.Tensor:
    """Multistep consistency sampling ({cite}`song2023consistency`, Algorithm 1): NFE = len(sigmas) − 1.

    x̂₀ = f(x, σ_0); then for each later level σ_i > 0: x = x̂₀ + √(σ_i² − σ_min²) z, x̂₀ = f(x, σ_i).
    ``sigmas`` is a course ladder (decreasing, ending in 0); ``x`` is already scaled by σ_0.
    """
    sigmas = samplers.check_ladder(x, sigmas)
    if float(sigmas[-2]) < sigma_min:
        raise ValueError(f"the last positive level {float(sigmas[-2]):.3g} is below sigma_min = "
                         f"{sigma_min}; build the ladder with sigma_min >= the model's")
    levels = sigmas.tolist()
    for i in range(len(levels) - 1):
        if i > 0:  # jump back up the ladder with fresh noise, then map to the end again
            x = x0_hat + math.sqrt(levels[i] ** 2 - sigma_min**2) * torch.randn(
                x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x0_hat = f(x, sigmas[i].expand(x.shape[0]))  # (B, ...)
        if callback is not None:
            callback({"i": i, "sigma": sigmas[i], "sigma_next": sigmas[i + 1], "x": x0_hat,
                      "x0_hat": x0_hat, "nfe": i + 1})
    return x0_hat


def heun_step(denoiser: Callable[..., torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
              sigma_next: torch.Tensor) -> torch.Tensor:
    """One Heun step of dx/dσ = (x − D(x, σ))/σ from σ to σ_next > 0 (per-sample ``(B,)`` levels).

    The training-time ODE step of consistency distillation (EDM's Algorithm 1 body,
    {cite}`karras2022`); samplers walk whole ladders, this moves each sample one rung of its own.
    """
    sigma, sigma_next = as_sigma(sigma, x), as_sigma(sigma_next, x)
    s, s_next = append_dims(sigma, x.ndim), append_dims(sigma_next, x.ndim)
    d = (x - denoiser(x, sigma)) / s
    x_euler = x + (s_next - s) * d
    d_next = (x_euler - denoiser(x_euler, sigma_next)) / s_next
    return x + (s_next - s) * (d + d_next) / 2


@dataclass
class ConsistencyConfig:
    steps: int = 1500                 # optimiser steps
    batch_size: int = 256             # x₀ per step
    lr: float = 1e-3                  # Adam learning rate (constant after a short warm-up)
    lr_warmup: int = 50               # steps of linear warm-up
    sigma_min: float = 0.002          # σ_min: where trajectories end (boundary f(x, σ_min) = x)
    sigma_max: float = 20.0           # σ_max: the largest level trained (and sampled from)
    rho: float = 7.0                  # spacing of the levels (EDM's ρ)
    n_scales: int = 40                # N for distillation; the final N for training without teacher
    n_scales_start: int = 10          # consistency training: N doubles from here up to n_scales
    mu: float = 0.0                   # target EMA μ (θ⁻ ← μθ⁻ + (1−μ)θ); 0: θ⁻ = stop-grad(θ)
    ema_decay: float = 0.995          # EMA of the weights returned for sampling
    loss: str = "pseudo-huber"        # d(·,·): "l2" (squared) or "pseudo-huber" √(‖a−b‖²+c²) − c
    huber_c: float = 0.01             # c of the pseudo-Huber distance (in data units)
    sigma_data: float = 0.5           # σ_d of the parametrisation
    seed: int = 0                     # seeds the one generator behind batches, levels and noise
    progress: bool | None = None      # progress bar: None shows it only when interactive

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size <= 0 or self.lr <= 0:
            raise ValueError("steps must be >= 0, batch_size and lr > 0")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if not 2 <= self.n_scales_start <= self.n_scales:
            raise ValueError("need 2 <= n_scales_start <= n_scales (N levels, at least two)")
        if not 0 <= self.mu < 1 or not 0 <= self.ema_decay < 1:
            raise ValueError("mu and ema_decay must lie in [0, 1)")
        if self.loss not in ("l2", "pseudo-huber"):
            raise ValueError(f"unknown loss {self.loss!r}; choose 'l2' or 'pseudo-huber'")
        if not self.huber_c > 0 or not self.sigma_data > 0 or not self.rho > 0:
            raise ValueError("huber_c, sigma_data and rho must be > 0")


def consistency_levels(n: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """σ_min = σ_0 < σ_1 < … < σ_{N−1} = σ_max, EDM-spaced (increasing, float64, shape (N,))."""
    return schedules.karras_sigmas(n, sigma_min, sigma_max, rho)[:-1].flip(0)


def _n_scales_at(step: int, config: ConsistencyConfig, distill: bool) -> int:
    """N(k): fixed for distillation; doubling from n_scales_start to n_scales for training."""
    if distill:
        return config.n_scales
    doublings = max(1, math.ceil(math.log2(config.n_scales / config.n_scales_start)) + 1)
    k = min(step * doublings // max(config.steps, 1), doublings - 1)
    return min(config.n_scales_start * 2**k, config.n_scales)


def _distance(a: torch.Tensor, b: torch.Tensor, config: ConsistencyConfig) -> torch.Tensor:
    sq = (a - b).flatten(1).pow(2).sum(1)  # (B,)
    return sq if config.loss == "l2" else (sq + config.huber_c**2).sqrt() - config.huber_c


def train_consistency(net: nn.Module, data: Callable, config: ConsistencyConfig, *,
                      teacher: Callable[..., torch.Tensor] | None = None
                      ) -> tuple[ConsistencyFunction, dict]:
    """Consistency distillation (``teacher`` given) or consistency training (``teacher=None``).

    Minimises E λ_n d(f_θ(x₀ + σ_{n+1} ε, σ_{n+1}), f_θ⁻(x̂_n, σ_n)) with λ_n = 1/(σ_{n+1} − σ_n),
    n uniform, x̂_n a teacher Heun step or x₀ + σ_n ε ({cite}`song2023consistency`,
    {cite}`song2023improved`). ``data(n, generator=...)`` draws x₀. Returns the EMA consistency
    function and ``{"loss": [...]}``.
    """
    g = torch.Generator().manual_seed(config.seed)
    f = ConsistencyFunction(net, config.sigma_data, config.sigma_min)
    target, ema = copy.deepcopy(f).requires_grad_(False), copy.deepcopy(f).requires_grad_(False)
    opt = torch.optim.Adam(f.parameters(), lr=config.lr)
    device = next(f.parameters()).device
    history = []
    show = config.progress if config.progress is not None else "ipykernel" in sys.modules
    for step in tqdm(range(config.steps), disable=not show, desc="consistency", mininterval=1.0):
        for group in opt.param_groups:
            group["lr"] = config.lr * min(1.0, (step + 1) / max(config.lr_warmup, 1))
        levels = consistency_levels(_n_scales_at(step, config, teacher is not None),
                                    config.sigma_min, config.sigma_max, config.rho).to(device)
        x0 = data(config.batch_size, generator=g).to(device)                        # (B, d)
        n = torch.randint(len(levels) - 1, (config.batch_size,), generator=g).to(device)  # (B,)
        s_lo, s_hi = levels[n].to(x0.dtype), levels[n + 1].to(x0.dtype)              # σ_n < σ_{n+1}
        eps = torch.randn(x0.shape, generator=g).to(x0)
        x_hi = x0 + append_dims(s_hi, x0.ndim) * eps
        with torch.no_grad():
            x_lo = (heun_step(teacher, x_hi, s_hi, s_lo) if teacher is not None
                    else x0 + append_dims(s_lo, x0.ndim) * eps)
            want = target(x_lo, s_lo)
        loss = (_distance(f(x_hi, s_hi), want, config) / (s_hi - s_lo)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p_t, p_e, p in zip(target.parameters(), ema.parameters(), f.parameters()):
                p_t.lerp_(p, 1 - config.mu)
                p_e.lerp_(p, 1 - min(config.ema_decay, (1 + step) / (10 + step)))
        history.append(loss.item())
    return ema.eval(), {"loss": history}


@torch.no_grad()
def exact_trajectories(denoiser: Callable[..., torch.Tensor], x: torch.Tensor, sigma_max: float,
                       sigma_min: float, *, n_steps: int = 256, rho: float = 7.0
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability-flow trajectories from x (at σ_max) down to σ_min with a fine Heun ladder.

    With a mixture's exact denoiser this is the exact ODE solution up to Heun's O(h²) error
    (checked against ``scipy.integrate.solve_ivp`` in the tests) {cite}`karras2022`.
    Returns (levels ``(n_steps,)`` decreasing from σ_max to σ_min, states ``(n_steps, B, ...)``).
    """
    ladder = schedules.karras_sigmas(n_steps, sigma_min, sigma_max, rho).to(x.dtype)  # ends in 0
    states = [x]

    def record(info: dict) -> None:  # keep every state down to σ_min (not the final jump to 0)
        if float(info["sigma_next"]) > 0:
            states.append(info["x"])

    samplers.sample_heun(denoiser, x, ladder, callback=record)
    return ladder[:-1], torch.stack(states)


@torch.no_grad()
def consistency_error(f: Callable[..., torch.Tensor], mixture, sigmas: list[float], *,
                      n: int = 2000, sigma_max: float = 20.0, sigma_min: float = 0.002,
                      n_steps: int = 256, generator: torch.Generator | None = None) -> torch.Tensor:
    """RMS distance ‖f(x_σ, σ) − x_{σ_min}‖ along exact trajectories of ``mixture``, per σ.

    Trajectories start at x_{σ_max} = x₀ + σ_max ε (the exact noisy law) and are solved with the
    oracle (:func:`exact_trajectories`); for each requested σ the state at the nearest level is
    fed to f. Returns a float64 tensor ``(len(sigmas),)`` {cite}`song2023consistency`.
    """
    x_start = mixture.sample(n, generator=generator, dtype=torch.float64)
    x_start = x_start + sigma_max * torch.randn(x_start.shape, generator=generator, dtype=torch.float64)
    levels, states = exact_trajectories(mixture, x_start, sigma_max, sigma_min, n_steps=n_steps)
    end = states[-1]
    errors = []
    for s in sigmas:
        i = int((levels.log() - math.log(s)).abs().argmin())
        x_s = states[i].to(torch.get_default_dtype())
        errors.append(float((f(x_s, float(levels[i])).double() - end).pow(2).sum(1).mean().sqrt()))
    return torch.tensor(errors, dtype=torch.float64)
