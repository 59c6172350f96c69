"""Progressive distillation: a student learns to take one step where its teacher took two.

A deterministic sampler (DDIM = Euler on the probability-flow ODE, chapter 6) on a ladder of 2N
steps is a fixed map from noise to data. A student initialised from the teacher is trained so
that *one* DDIM step of the student from σ_i to σ_{i+2} lands where *two* DDIM steps of the
teacher (σ_i → σ_{i+1} → σ_{i+2}) land. In the σ view a DDIM step is

    x' = x̂₀ + (σ'/σ)(x − x̂₀),

so the student's x̂₀ must be the x̃ that solves x'' = x̃ + (σ_{i+2}/σ_i)(x − x̃):

    x̃ = (x'' − (σ_{i+2}/σ_i) x) / (1 − σ_{i+2}/σ_i)         (σ_{i+2} = 0 gives x̃ = x'')

— *not* the teacher's own x̂₀ = D(x, σ_i), which would only copy the teacher's one-step (blurry)
guess {cite}`salimans2022`. The student then becomes the teacher and the ladder halves again:
N → N/2 → … → 1. Each student is a denoiser under the course contract, sampled with
``samplers.sample_ddim`` on its ladder, so it spends exactly N network evaluations.

| code | symbol | meaning |
|---|---|---|
| ``sigma``, ``sigma_mid``, ``sigma_next`` | σ_i, σ_{i+1}, σ_{i+2} | one student step spans two teacher steps |
| ``x_two`` | x'' | where two teacher DDIM steps land |
| ``x_tilde`` | x̃ | the student's regression target for x̂₀ |
| ``base_steps`` | 2^K | steps of the teacher's own ladder before the first halving |
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from . import schedules
from .denoisers import Denoiser, coefficients
from .utils import append_dims, as_sigma

__all__ = ["ddim_step", "distillation_target", "student_ladder", "DistillConfig",
           "distill_once", "progressive_distillation"]


def ddim_step(denoiser: Callable[..., torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
              sigma_next: torch.Tensor) -> torch.Tensor:
    """x' = x̂₀ + (σ'/σ)(x − x̂₀), levels scalar or per-sample ``(B,)`` (DDIM, η = 0)
    {cite}`song2021ddim`."""
    sigma, sigma_next = as_sigma(sigma, x), as_sigma(sigma_next, x)
    x0_hat = denoiser(x, sigma)
    return x0_hat + append_dims(sigma_next / sigma, x.ndim) * (x - x0_hat)


def distillation_target(teacher: Callable[..., torch.Tensor], x: torch.Tensor, sigma: torch.Tensor,
                        sigma_mid: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """The progressive-distillation target x̃ (one student step = two teacher steps).

    x'' = DDIM(DDIM(x, σ → σ_mid), σ_mid → σ_next); x̃ = (x'' − (σ_next/σ) x)/(1 − σ_next/σ)
    ({cite}`salimans2022`, Algorithm 2, in the σ view). Levels are scalars or ``(B,)`` tensors.
    """
    sigma, sigma_mid, sigma_next = (as_sigma(s, x) for s in (sigma, sigma_mid, sigma_next))
    if bool((sigma_next >= sigma).any()) or bool((sigma_mid >= sigma).any()):
        raise ValueError("need sigma > sigma_mid, sigma_next: a step goes down the ladder")
    x_two = ddim_step(teacher, ddim_step(teacher, x, sigma, sigma_mid), sigma_mid, sigma_next)
    ratio = append_dims(sigma_next / sigma, x.ndim)
    return (x_two - ratio * x) / (1 - ratio)


def student_ladder(base: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Every (base steps / n_steps)-th level of ``base`` (a ladder ending in 0): n_steps steps."""
    steps = len(base) - 1
    if n_steps < 1 or steps % n_steps:
        raise ValueError(f"n_steps must divide the base ladder's {steps} steps, got {n_steps}")
    return base[:: steps // n_steps]


@dataclass
class DistillConfig:
    base_steps: int = 16              # the teacher's ladder (a power of 2); halved down to final_steps
    final_steps: int = 1              # the last student's steps
    steps_per_halving: int = 400      # optimiser steps per halving
    batch_size: int = 256             # x₀ per optimiser step
    lr: float = 1e-3                  # Adam learning rate (cosine-decayed within each halving)
    sigma_min: float = 0.02           # smallest positive level of the ladder
    sigma_max: float = 20.0           # σ_0, where sampling starts
    rho: float = 7.0                  # EDM spacing of the ladder
    seed: int = 0                     # seeds the generator behind batches, rungs and noise
    progress: bool | None = None      # progress bar: None shows it only when interactive

    def __post_init__(self) -> None:
        for name in ("base_steps", "final_steps"):
            v = getattr(self, name)
            if v < 1 or v & (v - 1):
                raise ValueError(f"{name} must be a power of 2, got {v}")
        if self.final_steps >= self.base_steps:
            raise ValueError("final_steps must be smaller than base_steps (at least one halving)")
        if self.steps_per_halving < 0 or self.batch_size <= 0 or self.lr <= 0:
            raise ValueError("steps_per_halving must be >= 0, batch_size and lr > 0")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")

    def base_ladder(self) -> torch.Tensor:
        return schedules.karras_sigmas(self.base_steps, self.sigma_min, self.sigma_max, self.rho)


def distill_once(teacher: Denoiser, data: Callable, ladder: torch.Tensor, config: DistillConfig,
                 generator: torch.Generator) -> Denoiser:
    """One halving: a copy of ``teacher`` learns to do in ``len(ladder)//2`` steps what the teacher
    does in ``len(ladder) − 1``; loss λ(σ)‖D_student(x, σ_i) − x̃‖² with EDM's λ = 1/c_out²
    {cite}`salimans2022`."""
    student = copy.deepcopy(teacher).requires_grad_(True).train()
    teacher = copy.deepcopy(teacher).requires_grad_(False).eval()
    opt = torch.optim.Adam(student.parameters(), lr=config.lr)
    device = next(student.parameters()).device
    sig = ladder.to(device=device, dtype=torch.get_default_dtype())
    n_student = (len(sig) - 1) // 2
    show = config.progress if config.progress is not None else "ipykernel" in sys.modules
    for step in tqdm(range(config.steps_per_halving), disable=not show, mininterval=1.0,
                     desc=f"distilling {2 * n_student} -> {n_student} steps"):
        frac = step / max(config.steps_per_halving, 1)
        opt.param_groups[0]["lr"] = config.lr * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * frac))).item()
        x0 = data(config.batch_size, generator=generator).to(device)                     # (B, d)
        i = 2 * torch.randint(n_student, (config.batch_size,), generator=generator).to(device)
        sigma, sigma_mid, sigma_next = sig[i], sig[i + 1], sig[i + 2]                    # (B,) each
        x = x0 + append_dims(sigma, x0.ndim) * torch.randn(x0.shape, generator=generator).to(x0)
        with torch.no_grad():
            x_tilde = distillation_target(teacher, x, sigma, sigma_mid, sigma_next)
        _, c_out, _, _ = coefficients("edm", sigma, student.sigma_data)
        err = (student(x, sigma) - x_tilde).flatten(1).pow(2).mean(1)                    # (B,)
        loss = (err / c_out**2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
    return student.requires_grad_(False).eval()


def progressive_distillation(teacher: Denoiser, data: Callable, config: DistillConfig
                             ) -> dict[int, Denoiser]:
    """Halve base_steps → … → final_steps; return {steps: student} (sample each with
    ``samplers.sample_ddim(student, x, student_ladder(config.base_ladder(), steps))``)
    {cite}`salimans2022`."""
    g = torch.Generator().manual_seed(config.seed)
    base, students, current = config.base_ladder(), {}, teacher
    n = config.base_steps
    while n > config.final_steps:
        current = distill_once(current, data, student_ladder(base, n), config, g)
        n //= 2
        students[n] = current
    return students
