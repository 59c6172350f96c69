"""Denoising-diffusion GAN: a few large denoising steps, each one a conditional GAN.

With many small steps the reverse kernel p(x_{t−1} | x_t) is nearly Gaussian, which is why a
denoiser plus Gaussian noise samples well. With a *few large* steps it is a complicated,
multimodal law; Xiao et al. (2022) model it implicitly. A generator G(x_t, z, σ_t) proposes x̂₀,
the forward posterior q(x_{t−1} | x_t, x̂₀) turns it into a step, and a discriminator
D(x_{t−1}, x_t, σ_t) tells these fake pairs from real ones (x₀ from the data, then x_t and
x_{t−1} from the forward process) {cite}`xiao2022ddgan`. In the σ view the posterior is the DDPM
one of chapter 6,

    x_{t−1} = x̂₀ + (σ_{t−1}²/σ_t²)(x_t − x̂₀) + σ_{t−1} √(1 − σ_{t−1}²/σ_t²) ξ,

so a trained generator, with z drawn inside, *is* a (stochastic) denoiser, and sampling is
``samplers.sample_ddpm`` on the training ladder: exactly T network evaluations. The losses are
chapter 9's non-saturating GAN losses, plus an R1 penalty (γ/2) E‖∇_x D(x_real)‖² on real pairs.
(Diffusion-GAN, Wang et al. 2023, is a different idea: instance noise that helps an ordinary GAN
train {cite}`wang2023diffusiongan`.)

| code | symbol | meaning |
|---|---|---|
| ``sigmas`` | σ_T > … > σ_1 > σ_0 = 0 | the T-step ladder (training and sampling) |
| ``z`` | z ~ N(0, I) | the generator's latent |
| ``x_prev`` | x_{t−1} | a real or generated sample one rung down |
| ``r1_gamma`` | γ | weight of the R1 gradient penalty on real pairs |
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from . import samplers, schedules
from .denoisers import coefficients
from .families.gan import discriminator_loss, generator_loss
from .models import FourierEmbedding
from .utils import append_dims, as_sigma

__all__ = ["ConditionalMLP", "DDGANGenerator", "DDGANDiscriminator", "DDGANConfig",
           "posterior_sample", "train_ddgan", "sample_ddgan"]


class ConditionalMLP(nn.Module):
    """out = W_out act(h_L), h_{l+1} = h_l + W₂ act(W₁ act(h_l) + U_l e(c)), h₀ = W_in u + W_e e(c)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 64, depth: int = 2,
                 emb_dim: int = 32, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.embed = FourierEmbedding(emb_dim, generator=generator)
        self.inp, self.emb_in = nn.Linear(in_dim, hidden), nn.Linear(emb_dim, hidden)
        self.blocks = nn.ModuleList(nn.ModuleList([nn.Linear(hidden, hidden), nn.Linear(emb_dim, hidden),
                                                   nn.Linear(hidden, hidden)]) for _ in range(depth))
        self.out = nn.Linear(hidden, out_dim)
        if generator is not None:
            with torch.no_grad():
                for p in self.parameters():
                    bound = 1 / p.shape[-1] ** 0.5 if p.ndim > 1 else 0.02
                    p.uniform_(-bound, bound, generator=generator)

    def forward(self, u: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        emb = self.embed(c_noise.reshape(-1)).to(u.dtype)                  # (B, E)
        h = self.inp(u) + self.emb_in(emb)                                  # (B, H)
        act = nn.functional.silu
        for lin1, lin_e, lin2 in self.blocks:
            h = h + lin2(act(lin1(act(h)) + lin_e(emb)))                    # (B, H)
        return self.out(act(h))                                             # (B, out)


class DDGANGenerator(nn.Module):
    """G(x_t, z, σ) = c_skip x_t + c_out F([c_in x_t, z], ¼ log σ) with EDM's coefficients."""

    def __init__(self, dim: int = 2, latent_dim: int = 2, hidden: int = 64, depth: int = 2,
                 sigma_data: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.dim, self.latent_dim, self.sigma_data = dim, latent_dim, float(sigma_data)
        self.net = ConditionalMLP(dim + latent_dim, dim, hidden, depth, generator=generator)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        sigma = as_sigma(sigma, x)                                           # (B,)
        c_skip, c_out, c_in, c_noise = coefficients("edm", sigma, self.sigma_data)
        F = self.net(torch.cat([c_in[:, None] * x, z], dim=1), c_noise)      # (B, d)
        return c_skip[:, None] * x + c_out[:, None] * F

    def denoiser(self, generator: torch.Generator | None = None) -> Callable[..., torch.Tensor]:
        """The contract ``denoiser(x, sigma) -> x0_hat`` with a fresh z ~ N(0, I) drawn per call."""
        def draw(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
            z = torch.randn(x.shape[0], self.latent_dim, generator=generator).to(x)
            return self(x, sigma, z)
        return draw


class DDGANDiscriminator(nn.Module):
    """ℓ(x_{t−1}, x_t, σ_t): a logit from both rungs, each scaled to unit size by its own c_in."""

    def __init__(self, dim: int = 2, hidden: int = 64, depth: int = 2, sigma_data: float = 0.5, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.sigma_data = float(sigma_data)
        self.net = ConditionalMLP(2 * dim, 1, hidden, depth, generator=generator)

    def forward(self, x_prev: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor,
                sigma_prev: torch.Tensor) -> torch.Tensor:
        scale = lambda s: (s**2 + self.sigma_data**2).rsqrt()[:, None]      # (B, 1)
        u = torch.cat([scale(sigma_prev) * x_prev, scale(sigma) * x], dim=1)  # (B, 2d)
        return self.net(u, sigma.log() / 4).squeeze(1)                       # (B,)


def posterior_sample(x0: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor,
                     sigma_prev: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_{t−1} ~ q(x_{t−1} | x_t, x₀): mean x₀ + r(x_t − x₀), sd σ_{t−1}√(1 − r), r = σ_{t−1}²/σ_t²
    (levels scalar or ``(B,)``; ``noise`` ~ N(0, I) like x) {cite}`ho2020`."""
    sigma, sigma_prev = as_sigma(sigma, x), as_sigma(sigma_prev, x)
    r = append_dims((sigma_prev / sigma) ** 2, x.ndim)
    return x0 + r * (x - x0) + append_dims(sigma_prev, x.ndim) * (1 - r).sqrt() * noise


@dataclass
class DDGANConfig:
    n_steps: int = 4                  # T: denoising steps = NFE of the sampler
    sigma_min: float = 0.05           # σ_1, the last positive level
    sigma_max: float = 20.0           # σ_T, where sampling starts
    rho: float = 7.0                  # EDM spacing of the ladder
    latent_dim: int = 2               # size of z
    hidden: int = 64                  # width of both networks
    depth: int = 2                    # residual blocks of both networks
    steps: int = 1500                 # optimiser steps (one D and one G update each)
    batch_size: int = 256             # x₀ per step
    lr_g: float = 1e-3                # Adam learning rate of G
    lr_d: float = 1e-3                # Adam learning rate of D
    r1_gamma: float = 0.05            # γ of the R1 penalty on real pairs (0: none)
    ema_decay: float = 0.99           # EMA of G's weights (the one returned)
    sigma_data: float = 0.5           # σ_d of the generator's preconditioning
    seed: int = 0                     # seeds initialisation, batches, levels, z and noise
    progress: bool | None = None      # progress bar: None shows it only when interactive

    def __post_init__(self) -> None:
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1 (T denoising steps), got {self.n_steps}")
        if not 0 < self.sigma_min <= self.sigma_max:
            raise ValueError(f"need 0 < sigma_min <= sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if min(self.latent_dim, self.hidden, self.depth, self.batch_size) < 1 or self.steps < 0:
            raise ValueError("latent_dim, hidden, depth and batch_size must be >= 1, steps >= 0")
        if self.lr_g <= 0 or self.lr_d <= 0 or self.r1_gamma < 0 or not 0 <= self.ema_decay < 1:
            raise ValueError("learning rates must be > 0, r1_gamma >= 0, ema_decay in [0, 1)")

    def ladder(self) -> torch.Tensor:
        """σ_T, …, σ_1, 0 (``n_steps + 1`` entries; T = 1 is [σ_max, 0], a one-shot GAN)."""
        if self.n_steps == 1:
            return torch.tensor([self.sigma_max, 0.0], dtype=torch.float64)
        return schedules.karras_sigmas(self.n_steps, self.sigma_min, self.sigma_max, self.rho)


def train_ddgan(data: Callable, config: DDGANConfig, *, dim: int = 2) -> tuple[DDGANGenerator, dict]:
    """Adversarial training of G and D on random rungs of the ladder {cite}`xiao2022ddgan`.

    Per step: x₀ ~ data, a rung t, x_t = x₀ + σ_t ε, real x_{t−1} ~ q(· | x_t, x₀), fake
    x_{t−1} ~ q(· | x_t, G(x_t, z, σ_t)); D minimises the non-saturating loss + R1, G the
    non-saturating generator loss. Returns the EMA generator and ``{"loss_d", "loss_g"}``.
    """
    g = torch.Generator().manual_seed(config.seed)
    G = DDGANGenerator(dim, config.latent_dim, config.hidden, config.depth, config.sigma_data,
                       generator=g)
    D = DDGANDiscriminator(dim, config.hidden, config.depth, config.sigma_data, generator=g)
    G_ema = copy.deepcopy(G).requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=(0.5, 0.9))
    levels = config.ladder().to(torch.get_default_dtype())
    history = {"loss_d": [], "loss_g": []}
    show = config.progress if config.progress is not None else "ipykernel" in sys.modules
    for step in tqdm(range(config.steps), disable=not show, desc="DDGAN", mininterval=1.0):
        x0 = data(config.batch_size, generator=g)                                   # (B, d)
        k = torch.randint(config.n_steps, (config.batch_size,), generator=g)        # rung index
        sigma, sigma_prev = levels[k], levels[k + 1]                                 # (B,) each
        x = x0 + sigma[:, None] * torch.randn(x0.shape, generator=g)
        x_real = posterior_sample(x0, x, sigma, sigma_prev, torch.randn(x0.shape, generator=g))
        z = torch.randn(config.batch_size, config.latent_dim, generator=g)
        x_fake = posterior_sample(G(x, sigma, z), x, sigma, sigma_prev,
                                  torch.randn(x0.shape, generator=g))
        # Discriminator: real pairs up, fake pairs down, plus R1 on the real ones.
        x_real.requires_grad_(config.r1_gamma > 0)
        real_logits = D(x_real, x, sigma, sigma_prev)
        loss_d = discriminator_loss(real_logits, D(x_fake.detach(), x, sigma, sigma_prev))
        if config.r1_gamma > 0:
            grad, = torch.autograd.grad(real_logits.sum(), x_real, create_graph=True)
            loss_d = loss_d + config.r1_gamma / 2 * grad.pow(2).sum(1).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # Generator: make the fake pairs look real to the updated discriminator.
        loss_g = generator_loss(D(x_fake, x, sigma, sigma_prev), "non-saturating")
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            beta = min(config.ema_decay, (1 + step) / (10 + step))
            for p_e, p in zip(G_ema.parameters(), G.parameters()):
                p_e.lerp_(p, 1 - beta)
        history["loss_d"].append(loss_d.item())
        history["loss_g"].append(loss_g.item())
    return G_ema.eval(), history


@torch.no_grad()
def sample_ddgan(G: DDGANGenerator, x: torch.Tensor, sigmas: torch.Tensor, *,
                 generator: torch.Generator | None = None,
                 callback: Callable[[dict], None] | None = None) -> torch.Tensor:
    """Sample on the training ladder: each step draws z, proposes x̂₀ = G(x_t, z, σ_t) and takes
    chapter 6's DDPM posterior step (``samplers.sample_ddpm``): NFE = len(sigmas) − 1
    {cite}`xiao2022ddgan`."""
    return samplers.sample_ddpm(G.denoiser(generator), x, sigmas, generator=generator,
                                callback=callback)
