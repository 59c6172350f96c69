"""Variational autoencoders {cite}`kingma2014`: encoder, decoder, the reparameterisation trick, the ELBO.

An encoder gives q(z | x) = N(μ, diag(e^{log σ²})); a decoder gives p(x | z) = N(m(z), diag(τ²))
with a learned per-dimension scale τ; the prior is p(z) = N(0, I). The ELBO is

    ELBO(x) = E_q[log p(x | z)] − KL(q(z | x) ‖ N(0, I)) ≤ log p(x)

with KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), summed over latent dimensions. The gap
log p(x) − ELBO = KL(q(z | x) ‖ p(z | x)) closes only when q is the exact posterior. With K
samples z_k ~ q, the importance-weighted bound {cite}`burda2016`

    IWAE_K(x) = log (1/K) Σ_k p(x | z_k) p(z_k) / q(z_k | x)   (ELBO = IWAE_1 ≤ IWAE_K ↑ log p(x))

shows how much of the gap is the encoder's.

Notation (code → symbol): ``mean`` μ · ``logvar`` log σ² of q(z | x) · ``z`` the latent ·
``log_scale`` log τ of p(x | z) · ``x_mean`` m(z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .common import TrainingData, check_common, minimise, mlp, seeded, thin

__all__ = ["reparameterise", "gaussian_kl", "VAEConfig", "VAE", "train_vae"]

_LOG_2PI = math.log(2 * math.pi)


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I): a sample of q(z | x) that gradients flow through."""
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + (0.5 * logvar).exp() * eps


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per sample, summed over every non-batch dimension: shape (B,)."""
    kl = 0.5 * (mean**2 + logvar.exp() - logvar - 1)
    return kl.flatten(1).sum(dim=1)


def _normal_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(e^{2 log_std})) summed over the last dimension."""
    return (-0.5 * ((x - mean) * torch.exp(-log_std)) ** 2 - log_std - 0.5 * _LOG_2PI).sum(-1)


@dataclass(frozen=True)
class VAEConfig:
    data: str = "2d"                 # training data: "2d" (the many-mode mixture) or "digits"
    latent_dim: int = 2              # dimension of z
    hidden: int = 128                # width of the encoder's and decoder's hidden layers
    depth: int = 2                   # hidden layers per network (0: linear, probabilistic PCA)
    steps: int = 2000                # Adam steps
    batch_size: int = 256            # samples per step
    lr: float = 2e-3                 # Adam learning rate (cosine decay to 0)
    seed: int = 0                    # seeds initialisation, batches and ε
    progress: bool | None = False    # progress bar (None: only when interactive)

    def __post_init__(self) -> None:
        check_common(self)
        if self.latent_dim < 1 or self.hidden < 1 or self.depth < 0:
            raise ValueError("latent_dim and hidden must be >= 1 and depth >= 0")


class VAE(nn.Module):
    """Gaussian encoder q(z | x), Gaussian decoder p(x | z) with a learned per-dimension scale."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.shape = (2,) if config.data == "2d" else (1, 8, 8)
        d = math.prod(self.shape)
        self.latent_dim = config.latent_dim
        self.encoder = mlp(d, config.hidden, config.depth, 2 * config.latent_dim)
        self.decoder = mlp(config.latent_dim, config.hidden, config.depth, d)
        self.log_scale = nn.Parameter(torch.full((d,), -1.0))  # log τ, one per data dimension

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z | x), each ``(n, latent_dim)``."""
        mean, logvar = self.encoder(x.reshape(len(x), -1)).chunk(2, dim=1)
        return mean, logvar

    def elbo(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """One-sample ELBO per sample ``(n,)`` in nats: log p(x | z) − KL(q ‖ p), z = μ + σε."""
        flat = x.reshape(len(x), -1)
        mean, logvar = self.encode(x)
        z = reparameterise(mean, logvar, generator=generator)
        return _normal_log_prob(flat, self.decoder(z), self.log_scale) - gaussian_kl(mean, logvar)

    @torch.no_grad()
    def log_likelihood_bound(self, x: torch.Tensor, *, n_samples: int = 1,
                             generator: torch.Generator | None = None) -> torch.Tensor:
        """IWAE_K(x) ``(n,)`` with K = ``n_samples`` (K = 1: the ELBO); a lower bound on log p(x)."""
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        flat = x.reshape(len(x), -1)
        mean, logvar = self.encode(x)
        log_w = []
        for _ in range(n_samples):
            z = reparameterise(mean, logvar, generator=generator)  # (n, latent)
            log_q = _normal_log_prob(z, mean, 0.5 * logvar)
            log_prior = _normal_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
            log_w.append(_normal_log_prob(flat, self.decoder(z), self.log_scale) + log_prior
                         - log_q)
        return torch.logsumexp(torch.stack(log_w), dim=0) - math.log(n_samples)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None,
               noise: bool = True) -> torch.Tensor:
        """z ~ N(0, I), x ~ p(x | z); ``noise=False`` returns the decoder mean m(z) (one evaluation)."""
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator).to(p)
        x = self.decoder(z)
        if noise:
            x = x + self.log_scale.exp() * torch.randn(x.shape, generator=generator).to(p)
        return x.reshape(n, *self.shape)


def train_vae(config: VAEConfig) -> tuple[VAE, dict]:
    """Maximise the one-sample ELBO with Adam (cosine learning rate) {cite}`kingma2014`."""
    vae = seeded(lambda: VAE(config), config.seed)
    losses = minimise(vae, lambda x, g: -vae.elbo(x, generator=g).mean(), config,
                      TrainingData(config.data), f"VAE ({config.data})")
    return vae, {"neg_elbo": thin(losses)}
