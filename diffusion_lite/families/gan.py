"""Generative adversarial networks {cite}`goodfellow2014`.

A generator G maps noise z to samples; a discriminator returns a logit ℓ(x), the log-odds that x
is real. With σ the logistic function:

    L_D = −E[log σ(ℓ(x_real))] − E[log(1 − σ(ℓ(G(z))))]
    L_G = −E[log σ(ℓ(G(z)))]              ("non-saturating", the one used in practice)
    L_G =  E[log(1 − σ(ℓ(G(z))))]         ("saturating", the minimax game as written)

Notation (code → symbol): ``real_logits`` ℓ(x) · ``fake_logits`` ℓ(G(z)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["GENERATOR_LOSSES", "discriminator_loss", "generator_loss"]

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
