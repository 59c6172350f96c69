"""Generative adversarial networks {cite}`goodfellow2014`.

A generator G maps noise z to samples; a discriminator returns a logit ℓ(x), the log-odds that x
is real. With σ the logistic function:

    L_D = −E[log σ(ℓ(x_real))] − E[log(1 − σ(ℓ(G(z))))]
    L_G = −E[log σ(ℓ(G(z)))]              ("non-saturating", the one used in practice)
    L_G =  E[log(1 − σ(ℓ(G(z))))]         ("saturating", the minimax game as written)

A GAN has no likelihood: G pushes a d_z-dimensional noise through a network, so its samples
form (at most) a d_z-dimensional surface in data space, and nothing in training computes a density.

Notation (code → symbol): ``real_logits`` ℓ(x) · ``fake_logits`` ℓ(G(z)) · ``z`` the latent
noise, N(0, I) of dimension ``latent_dim`` = d_z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import BIN, TrainingData, check_common, mlp, progress_bar, seeded, thin

__all__ = ["GENERATOR_LOSSES", "discriminator_loss", "generator_loss", "GANConfig", "GAN",
           "gan_step", "train_gan"]

GENERATOR_LOSSES = ("non-saturating", "saturating")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D = −E[log σ(ℓ_real)] − E[log(1 − σ(ℓ_fake))], computed stably from logits."""
    # log(1 − σ(ℓ)) = log σ(−ℓ), so both terms are softplus of a logit.
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "non-saturating") -> torch.Tensor:
    """The generator's loss from the discriminator's logits on generated samples.

    ``"non-saturating"``: −E[log σ(ℓ_fake)] (strong gradients when the generator is bad);
    ``"saturating"``: E[log(1 − σ(ℓ_fake))] (the minimax objective; its gradient vanishes early).
    """
    if kind == "non-saturating":
        return F.softplus(-fake_logits).mean()
    if kind == "saturating":
        return -F.softplus(fake_logits).mean()
    raise ValueError(f"unknown generator loss {kind!r}; choose one of {GENERATOR_LOSSES}")


@dataclass(frozen=True)
class GANConfig:
    data: str = "2d"                 # training data: "2d" (the many-mode mixture) or "digits"
    latent_dim: int = 8              # d_z, dimension of the generator's noise z
    hidden: int = 64                 # width of both networks' hidden layers
    depth: int = 2                   # hidden layers per network
    steps: int = 2000                # optimiser steps (one for D, then one for G, per step)
    batch_size: int = 128            # real samples (and fakes) per step
    lr: float = 1e-3                 # Adam learning rate of both networks
    beta1: float = 0.5               # Adam β₁ (0.5 is the usual GAN choice: less momentum)
    loss: str = "non-saturating"     # generator loss: "non-saturating" or "saturating"
    seed: int = 0                    # seeds initialisation, batches and z
    progress: bool | None = False    # progress bar (None: only when interactive)

    def __post_init__(self) -> None:
        check_common(self)
        if self.loss not in GENERATOR_LOSSES:
            raise ValueError(f"loss must be one of {GENERATOR_LOSSES}, got {self.loss!r}")
        if self.latent_dim < 1 or self.hidden < 1 or self.depth < 1:
            raise ValueError("latent_dim, hidden and depth must be >= 1")
        if not 0 <= self.beta1 < 1:
            raise ValueError(f"beta1 must be in [0, 1), got {self.beta1}")


class GAN(nn.Module):
    """An MLP generator G: z ↦ x and an MLP discriminator ℓ: x ↦ logit (leaky ReLU)."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.shape = (2,) if config.data == "2d" else (1, 8, 8)
        d = math.prod(self.shape)
        self.latent_dim = config.latent_dim
        self.generator = mlp(config.latent_dim, config.hidden, config.depth, d, act=nn.ReLU)
        if config.data == "digits":  # pixels live in [−1 − Δ/2, 1 + Δ/2]: squash G's output there
            self.generator.append(nn.Tanh())
        self.discriminator = mlp(d, config.hidden, config.depth, 1,
                                 act=lambda: nn.LeakyReLU(0.2))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): ``(n, d_z)`` → samples ``(n, *shape)``."""
        x = self.generator(z)
        return (x if len(self.shape) == 1 else x * (1 + BIN / 2)).reshape(len(z), *self.shape)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ℓ(x) ``(n,)``: the discriminator's log-odds that x is real."""
        return self.discriminator(x.reshape(len(x), -1)).squeeze(1)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples G(z), z ~ N(0, I): one network evaluation."""
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator).to(p)
        return self.generate(z)


def gan_step(gan: GAN, x_real: torch.Tensor, z: torch.Tensor, opt_d: torch.optim.Optimizer,
             opt_g: torch.optim.Optimizer, kind: str = "non-saturating") -> tuple[float, float]:
    """One alternating update: a step on L_D (fakes detached), then a step on L_G. Returns both losses."""
    fake = gan.generate(z)
    loss_d = discriminator_loss(gan.logits(x_real), gan.logits(fake.detach()))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    loss_g = generator_loss(gan.logits(fake), kind)  # D just moved: G answers the new D
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()  # also fills D's grads; opt_d zeroes them before its next step
    opt_g.step()
    return loss_d.item(), loss_g.item()


def train_gan(config: GANConfig) -> tuple[GAN, dict]:
    """Alternate D and G steps of Adam on L_D and L_G for ``config.steps`` steps {cite}`goodfellow2014`."""
    g = torch.Generator().manual_seed(config.seed)
    gan = seeded(lambda: GAN(config), config.seed)
    source = TrainingData(config.data)
    betas = (config.beta1, 0.999)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=config.lr, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=config.lr, betas=betas)
    history = {"loss_d": [], "loss_g": []}
    for _ in progress_bar(config.steps, config.progress, f"GAN ({config.data})"):
        x_real = source.batch(config.batch_size, g)
        z = torch.randn(config.batch_size, config.latent_dim, generator=g)
        loss_d, loss_g = gan_step(gan, x_real, z, opt_d, opt_g, config.loss)
        if not math.isfinite(loss_d + loss_g):
            raise FloatingPointError("GAN losses became NaN/inf: lower lr or use the "
                                     "non-saturating loss")
        history["loss_d"].append(loss_d)
        history["loss_g"].append(loss_g)
    return gan.eval(), {k: thin(v) for k, v in history.items()}
