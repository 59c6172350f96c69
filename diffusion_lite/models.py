"""Small networks for denoising: a noise-level embedding and an MLP for points in any dimension.

A network here is *not* a denoiser. It is called ``net(x, c_noise, labels=None)`` on an already
scaled input; :mod:`diffusion_lite.denoisers` wraps it into the one contract
``denoiser(x, sigma) -> x0_hat`` (and chooses ``c_noise = log(sigma) / 4``).

Notation (code name → symbol in the notebooks):

| code          | symbol            | meaning                                                      |
|---------------|-------------------|--------------------------------------------------------------|
| ``x``         | c_in(σ)·x_σ       | the (scaled) noisy input, shape ``(B, d)``                    |
| ``c_noise``   | c_noise(σ)        | the network's view of the noise level, e.g. ¼ log σ, ``(B,)`` |
| ``emb``       | e(c_noise)        | the embedding of the noise level, ``(B, E)``                  |
| ``freqs``     | f_k               | frequencies of the Fourier / sinusoidal features             |
| ``labels``    | y                 | optional class labels ``(B,)`` (``n_classes`` = the null class) |
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "FourierEmbedding", "SinusoidalEmbedding", "MLP", "make_embedding"]


class FourierEmbedding(nn.Module):
    """Random Fourier features of the noise level: e(c) = [cos(2π f c), sin(2π f c)].

    The frequencies f_k ~ N(0, scale²) are drawn once (from ``generator``) and frozen; they are a
    buffer, so they are saved in checkpoints with the weights {cite}`tancik2020`.
    """

    def __init__(self, dim: int = 32, scale: float = 4.0, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if dim <= 0 or dim % 2:
            raise ValueError(f"embedding dim must be a positive even number, got {dim}")
        self.register_buffer("freqs", torch.randn(dim // 2, generator=generator) * scale)  # (E/2,)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        arg = 2 * math.pi * c_noise[:, None].to(self.freqs.dtype) * self.freqs[None, :]  # (B, E/2)
        return torch.cat([arg.cos(), arg.sin()], dim=1)  # (B, E)


class SinusoidalEmbedding(nn.Module):
    """Deterministic sinusoidal features with geometric frequencies f_k = max_freq^(−k/(E/2)).

    e(c) = [cos(f_k c), sin(f_k c)], the transformer position embedding applied to c_noise
    scaled by ``scale`` (c_noise is a small real number, not an integer position) {cite}`ho2020`.
    """

    def __init__(self, dim: int = 32, scale: float = 1000.0, max_period: float = 10_000.0) -> None:
        super().__init__()
        if dim <= 0 or dim % 2:
            raise ValueError(f"embedding dim must be a positive even number, got {dim}")
        half = dim // 2
        freqs = scale * torch.exp(-math.log(max_period) * torch.arange(half) / half)  # (E/2,)
        self.register_buffer("freqs", freqs)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        arg = c_noise[:, None].to(self.freqs.dtype) * self.freqs[None, :]  # (B, E/2)
        return torch.cat([arg.cos(), arg.sin()], dim=1)  # (B, E)


EMBEDDINGS = ("fourier", "sinusoidal")


def make_embedding(kind: str, dim: int, *, generator: torch.Generator | None = None) -> nn.Module:
    """Build a noise-level embedding by name: ``"fourier"`` or ``"sinusoidal"``."""
    if kind == "fourier":
        return FourierEmbedding(dim, generator=generator)
    if kind == "sinusoidal":
        return SinusoidalEmbedding(dim)
    raise ValueError(f"unknown embedding {kind!r}; choose one of {EMBEDDINGS}")


ACTIVATIONS = {"silu": nn.functional.silu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
               "relu": nn.functional.relu}


class MLP(nn.Module):
    """A small residual MLP F(x, c_noise, y) for points in d dimensions.

    h₀ = W_in x + W_e e(c_noise) [+ embed(y)]; h_{l+1} = h_l + W₂ SiLU(W₁ SiLU(h_l) + U_l e);
    out = W_out SiLU(h_L). The noise embedding enters every block, so one network serves every
    noise level. ``activation`` replaces SiLU everywhere (``"tanh"``, ``"sigmoid"``, ``"relu"``;
    chapter 5 measures what the choice buys). ``out_dim`` (default ``dim``) sets the output size,
    e.g. 1 for an energy network. ``n_classes`` adds a label embedding with one extra row for the null class
    (index ``n_classes``) used by classifier-free guidance.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, emb_dim: int = 32,
                 embedding: str = "fourier", n_classes: int | None = None, *,
                 activation: str = "silu", out_dim: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if dim <= 0 or hidden <= 0 or depth <= 0:
            raise ValueError(f"dim, hidden and depth must be positive, got {dim}, {hidden}, {depth}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.dim, self.n_classes, self.activation = dim, n_classes, activation
        self.embed = make_embedding(embedding, emb_dim, generator=generator)
        self.inp = nn.Linear(dim, hidden)
        self.emb_in = nn.Linear(emb_dim, hidden)
        self.label_emb = nn.Embedding(n_classes + 1, hidden) if n_classes else None
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"lin1": nn.Linear(hidden, hidden), "emb": nn.Linear(emb_dim, hidden),
                           "lin2": nn.Linear(hidden, hidden)})
            for _ in range(depth)
        )
        self.out = nn.Linear(hidden, dim if out_dim is None else out_dim)
        if generator is not None:  # initialise from the given generator, not the global RNG
            with torch.no_grad():
                for p in self.parameters():
                    bound = 1 / math.sqrt(p.shape[-1]) if p.ndim > 1 else 0.02
                    p.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"MLP expects x of shape (batch, {self.dim}), got {tuple(x.shape)}")
        emb = self.embed(c_noise.reshape(-1)).to(x.dtype)  # (B, E)
        h = self.inp(x) + self.emb_in(emb)  # (B, H)
        if labels is not None:
            if self.label_emb is None:
                raise ValueError("labels given but the MLP was built without n_classes")
            h = h + self.label_emb(labels)  # (B, H)
        act = ACTIVATIONS[self.activation]
        for blk in self.blocks:
            h = h + blk["lin2"](act(blk["lin1"](act(h)) + blk["emb"](emb)))  # (B, H)
        return self.out(act(h))  # (B, out_dim)
