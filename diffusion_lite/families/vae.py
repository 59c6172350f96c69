"""Variational autoencoders {cite}`kingma2014`: the reparameterisation trick and the ELBO's KL term.

An encoder gives q(z | x) = N(μ, diag(e^{log σ²})); the ELBO is

    ELBO(x) = E_q[log p(x | z)] − KL(q(z | x) ‖ N(0, I)) ≤ log p(x)

with KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), summed over latent dimensions.

Notation (code → symbol): ``mean`` μ · ``logvar`` log σ² of q(z | x) · ``z`` the latent.
"""

from __future__ import annotations

import torch

__all__ = ["reparameterise", "gaussian_kl"]


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I): a sample of q(z | x) that gradients flow through."""
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + (0.5 * logvar).exp() * eps


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per sample, summed over every non-batch dimension: shape (B,)."""
    kl = 0.5 * (mean**2 + logvar.exp() - logvar - 1)
    return kl.flatten(1).sum(dim=1)
