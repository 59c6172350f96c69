r"""A small transformer over token sequences: bidirectional (masked diffusion) or causal (AR).

Both chapter-15 models share this one network so that "the same size" is literally true: the
masked-diffusion denoiser is ``TokenTransformer(config)`` with ``causal=False`` and the
autoregressive baseline the same module with ``causal=True`` — identical parameter counts
{cite}`vaswani2017`. The input vocabulary has one id more than the output: the extra id
``vocab_size`` is the mask token [M] for the masked model and the begin-of-sentence token for
the AR model; the network never predicts it.

Notation (code → symbol):

| code | symbol / meaning |
|---|---|
| ``tokens`` | z (B, L): token ids in 0 … V (V = [M] or BOS) |
| ``vocab_size`` | V, the number of real tokens (output classes) |
| ``length`` | L, positions per sequence |
| ``width``, ``depth``, ``heads`` | d_model, number of layers, attention heads |
| returned ``logits`` | (B, L, V): unnormalised log p_θ(x_l = v \| z) |
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["TokenTransformerConfig", "TokenTransformer"]


@dataclass(frozen=True)
class TokenTransformerConfig:
    vocab_size: int          # V real tokens (outputs); inputs also take the extra id V ([M] / BOS)
    length: int              # L positions (learned position embeddings)
    width: int = 64          # d_model, the residual stream's width
    depth: int = 2           # transformer blocks
    heads: int = 4           # attention heads (must divide width)
    causal: bool = False     # True: position l attends to positions ≤ l only (autoregressive)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "length", "width", "depth", "heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"heads={self.heads} must divide width={self.width}; "
                             f"try heads={next(h for h in (4, 2, 1) if self.width % h == 0)}")


class TokenTransformer(nn.Module):
    """Pre-norm transformer encoder: embed tokens and positions, ``depth`` blocks, project to V.

    ``forward(tokens)`` with ``tokens`` of shape (B, L) returns logits (B, L, V). With ``causal``
    the attention mask hides future positions, so logits at l depend on tokens ≤ l only.
    """

    def __init__(self, config: TokenTransformerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size + 1, c.width)  # +1: the [M] / BOS id
        self.position = nn.Parameter(torch.randn(c.length, c.width) * 0.02)  # (L, d)
        block = nn.TransformerEncoderLayer(c.width, c.heads, 4 * c.width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, c.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, c.vocab_size)
        if c.causal:  # -inf above the diagonal: position l sees 0 … l
            self.register_buffer("attn_mask", nn.Transformer.generate_square_subsequent_mask(
                c.length), persistent=False)
        else:
            self.attn_mask = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.position[: tokens.shape[1]]  # (B, L, d)
        mask = None if self.attn_mask is None else self.attn_mask[: tokens.shape[1], : tokens.shape[1]]
        h = self.blocks(h, mask=mask, is_causal=self.config.causal)  # (B, L, d)
        return self.head(self.norm(h))  # (B, L, V)
