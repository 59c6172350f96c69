"""Classifier-free guidance: one wrapper over the denoiser contract, and label dropout for training.

{cite}`ho2022cfg` train *one* network both with and without the label: during
training each label is replaced by the null class ∅ with probability p_uncond ("label dropout"), so
the same weights give a conditional denoiser D(x, σ | y) and an unconditional one D(x, σ | ∅).
At sampling time the two are extrapolated with a guidance scale w:

    D_w(x, σ | y) = D(x, σ | ∅) + w · (D(x, σ | y) − D(x, σ | ∅))

w = 0 is the unconditional model, w = 1 the conditional one, w > 1 pushes samples towards what
makes the class recognisable (fidelity) at the cost of variety (diversity). Because D and the score
are linked by Tweedie's formula, s = (D − x)/σ², the same combination holds for scores, and in the
paper's ε-parametrisation the paper's weight is our w − 1.

The wrapper that applies the formula inside a sampler, ``GuidedDenoiser(denoiser, labels, w,
null_label)``, lives here next to :func:`cfg_combine` (its one copy of the formula) and is
re-exported by ``denoisers`` with the other wrappers; it evaluates both branches in one batch of 2B.

Notation (code → notebook):

| code | symbol | meaning |
|---|---|---|
| ``d_cond`` | D(x, σ \\| y) | conditional denoiser output |
| ``d_uncond`` | D(x, σ \\| ∅) | unconditional (null-class) denoiser output |
| ``scale`` | w | guidance scale (0 = unconditional, 1 = conditional) |
| ``p_uncond`` | p_uncond | label-dropout probability during training |
| ``null_label`` | ∅ | index of the null class (= number of real classes K) |
| ``sigmas`` | σ_0 > … > σ_N = 0 | the sampler's noise ladder |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .utils import as_sigma

__all__ = ["cfg_combine", "drop_labels", "GuidedDenoiser", "sample_guided"]


def cfg_combine(d_uncond: torch.Tensor, d_cond: torch.Tensor, scale: float) -> torch.Tensor:
    """The guided prediction D_w = D(x, σ | ∅) + w · (D(x, σ | y) − D(x, σ | ∅)) {cite}`ho2022cfg`."""
    if d_uncond.shape != d_cond.shape:
        raise ValueError(f"d_uncond {tuple(d_uncond.shape)} and d_cond {tuple(d_cond.shape)} must "
                         "have the same shape")
    return torch.lerp(d_uncond, d_cond, scale)  # d_uncond + w (d_cond − d_uncond), one operation


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
    # Draw on the generator's device (a CPU generator may drive training on a GPU), then move.
    u = torch.rand(labels.shape, generator=generator,
                   device=generator.device if generator is not None else labels.device)
    return torch.where(u.to(labels.device) < p_uncond, torch.full_like(labels, null_label), labels)



class GuidedDenoiser(nn.Module):
    """Classifier-free guidance: D_w = D(x, σ, ∅) + w · (D(x, σ, y) − D(x, σ, ∅)).

    ``w = 0`` is unconditional, ``w = 1`` conditional, ``w > 1`` guided {cite}`ho2022cfg`.
    ``null_label`` is the class index the network was trained on when the label was dropped.
    Both branches run as one batch of 2B; the combination is :func:`cfg_combine`.
    """

    def __init__(self, denoiser: Callable[..., torch.Tensor], labels: torch.Tensor,
                 scale: float, null_label: int) -> None:
        super().__init__()
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as denoiser(x, sigma, labels), got "
                            f"{type(denoiser).__name__}")
        if not isinstance(labels, torch.Tensor) or labels.ndim != 1 \
                or labels.dtype not in (torch.int32, torch.int64):
            raise TypeError("labels must be a 1-D integer tensor (one class per sample)")
        if not math.isfinite(float(scale)):
            raise ValueError(f"scale must be finite, got {scale}")
        self.denoiser, self.labels, self.scale, self.null_label = denoiser, labels, scale, null_label
        # σ as a Python float passes straight through when the inner denoiser takes it.
        self.accepts_float_sigma = bool(getattr(denoiser, "accepts_float_sigma", False))

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        if self.labels.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(self.labels.shape)}")
        if not (isinstance(sigma, float) and self.accepts_float_sigma):
            sigma = torch.cat([as_sigma(sigma, x)] * 2)               # (2B,)
        y = torch.cat([self.labels, torch.full_like(self.labels, self.null_label)])  # (2B,) y, ∅
        both = self.denoiser(torch.cat([x, x]), sigma, y.to(x.device))  # (2B, ...)
        cond, uncond = both.chunk(2)
        return cfg_combine(uncond, cond, self.scale)


@torch.no_grad()
def sample_guided(denoiser: Callable[..., torch.Tensor], labels: torch.Tensor, scale: float, *,
                  null_label: int, sigmas: torch.Tensor, shape: tuple[int, ...],
                  sampler: str = "heun", generator: torch.Generator | None = None,
                  **options) -> torch.Tensor:
    """Guided samples, one per label: x = σ_0 ε, then ``samplers.sample(sampler, D_w, x, sigmas)``.

    ``shape`` is one sample's shape, e.g. ``(1, 8, 8)``; ``options`` go to the sampler (e.g.
    ``s_churn``, ``s_tmin``, ``s_tmax``, ``s_noise`` for Heun). At w = 0 and w = 1 only the branch
    that matters is evaluated (half the batch); otherwise :class:`GuidedDenoiser` ({cite}`ho2022cfg`).
    The starting noise is drawn first from ``generator``, so a seed fixes the run.
    """
    from . import samplers

    if not isinstance(labels, torch.Tensor) or labels.ndim != 1:
        raise TypeError("labels must be a 1-D integer tensor (one class per sample)")
    x = float(sigmas[0]) * torch.randn(len(labels), *shape, generator=generator)  # (B, *shape)
    x = x.to(sigmas.device)
    labels = labels.to(sigmas.device)
    if scale == 0.0 or scale == 1.0:  # one branch: skip the other half of the batch
        fixed = labels if scale == 1.0 else torch.full_like(labels, null_label)

        def guided(x, sigma):
            return denoiser(x, sigma, fixed)
        guided.accepts_float_sigma = bool(getattr(denoiser, "accepts_float_sigma", False))
    else:
        guided = GuidedDenoiser(denoiser, labels, scale, null_label=null_label)
    return samplers.sample(sampler, guided, x, sigmas, generator=generator, **options)
