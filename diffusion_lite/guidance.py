"""Classifier-free guidance: one wrapper over the denoiser contract, and label dropout for training.

Ho & Salimans 2022 ({cite}`ho2022cfg`) train *one* network both with and without the label: during
training each label is replaced by the null class ∅ with probability p_uncond ("label dropout"), so
the same weights give a conditional denoiser D(x, σ | y) and an unconditional one D(x, σ | ∅).
At sampling time the two are extrapolated with a guidance scale w:

    D_w(x, σ | y) = D(x, σ | ∅) + w · (D(x, σ | y) − D(x, σ | ∅))

w = 0 is the unconditional model, w = 1 the conditional one, w > 1 pushes samples towards what
makes the class recognisable (fidelity) at the cost of variety (diversity). Because D and the score
are linked by Tweedie's formula, s = (D − x)/σ², the same combination holds for scores, and in the
paper's ε-parametrisation the paper's weight is our w − 1.

The wrapper that applies the formula inside a sampler, ``GuidedDenoiser(denoiser, labels, w,
null_label)``, lives with the other wrappers in ``denoisers`` and is re-exported here; it evaluates
both branches in one batch of 2B.

Notation (code → notebook):

| code | symbol | meaning |
|---|---|---|
| ``d_cond`` | D(x, σ \\| y) | conditional denoiser output |
| ``d_uncond`` | D(x, σ \\| ∅) | unconditional (null-class) denoiser output |
| ``scale`` | w | guidance scale (0 = unconditional, 1 = conditional) |
| ``p_uncond`` | p_uncond | label-dropout probability during training |
| ``null_label`` | ∅ | index of the null class (= number of real classes K) |
"""

from __future__ import annotations

import torch

from diffusion_lite.denoisers import GuidedDenoiser  # the wrapper D_w(x, σ), chapter 5's module

__all__ = ["cfg_combine", "drop_labels", "GuidedDenoiser"]


def cfg_combine(d_uncond: torch.Tensor, d_cond: torch.Tensor, scale: float) -> torch.Tensor:
    """The guided prediction D_w = D(x, σ | ∅) + w · (D(x, σ | y) − D(x, σ | ∅)) ({cite}`ho2022cfg`)."""
    if d_uncond.shape != d_cond.shape:
        raise ValueError(f"d_uncond {tuple(d_uncond.shape)} and d_cond {tuple(d_cond.shape)} must "
                         "have the same shape")
    return d_uncond + scale * (d_cond - d_uncond)


def drop_labels(labels: torch.Tensor, p_uncond: float, null_label: int, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Label dropout: replace each label by the null class ∅ with probability ``p_uncond``.

    y' = ∅ if u < p_uncond else y, with u ~ U(0, 1) per sample ({cite}`ho2022cfg`). Returns a new
    tensor; ``labels`` is left unchanged. ``null_label`` must not be a real class (use K, not 0).
    """
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must lie in [0, 1], got {p_uncond}")
    if labels.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"labels must be an integer tensor, got {labels.dtype}")
    if labels.numel() and int(labels.max()) >= null_label:
        raise ValueError(f"null_label={null_label} collides with a real class; use the number of "
                         "classes K as the null label")
    u = torch.rand(labels.shape, generator=generator, device=labels.device)
    return torch.where(u < p_uncond, torch.full_like(labels, null_label), labels)

