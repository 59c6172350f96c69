"""A small DiT-style transformer denoiser: patches, position embeddings, adaLN-Zero, self-attention.

The image is cut into p×p patches, each patch becomes one *token* (a vector), every token attends
to every other token (or, with ``window``, only to its neighbours on the patch grid), and the
tokens are put back together into an image {cite}`peebles2023`. Self-attention is the learned
non-local operation: a patch can borrow information from any other patch, weighted by similarity,
exactly as non-local means averages similar patches {cite}`buades2005` {cite}`wang2018nonlocal`.

The noise level and the class enter through **adaLN-Zero**: each block normalises its tokens and
then scales and shifts them by amounts predicted from the conditioning vector c,

    modulate(h, shift, scale) = h ⊙ (1 + scale) + shift,
    h ← h + gate ⊙ Block(modulate(LayerNorm(h), shift, scale)),

and the layer that predicts (shift, scale, gate) starts at zero, so every block starts as the
identity and the untrained network outputs F = 0 (like the U-Net's zero output convolution).

Notation (code → symbol):

| code | symbol | meaning |
|---|---|---|
| ``x`` | c_in·x_σ | scaled noisy image ``(B, C, H, W)`` |
| ``p`` / ``patch_size`` | p | side of a square patch |
| ``tokens`` | h | ``(B, N, D)``: N = (H/p)(W/p) tokens of width D |
| ``c`` | c | conditioning vector ``(B, D)`` = embedding of c_noise(σ) + class embedding |
| ``shift``, ``scale``, ``gate`` | β, γ, α | adaLN-Zero modulation, each ``(B, 1, D)`` |
| ``window`` | w | local attention: token (i, j) sees (i', j') iff max(|i−i'|, |j−j'|) ≤ w |
| ``attn`` | A | attention weights softmax(q kᵀ/√d_head) ``(B, heads, N, N)`` |
"""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from diffusion_lite import pretrained
from diffusion_lite.models import SinusoidalEmbedding
from diffusion_lite.training import TrainConfig

__all__ = ["TransformerConfig", "Transformer", "DigitsTransformerConfig", "train_digits_transformer", "patchify", "unpatchify", "modulate",
           "sincos_position_embedding", "window_mask", "attention_maps"]

POSITION_EMBEDDINGS = ("sincos", "learned", "none")


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of the transformer denoiser (every field is part of a cache key)."""

    in_channels: int = 1          # channels of x (and of the output, unless out_channels is set)
    out_channels: int | None = None  # channels of F; None: in_channels (set it when extra inputs ride along)
    image_size: int = 8           # H = W of the input
    patch_size: int = 2           # p: tokens are p×p patches; N = (H/p)² tokens
    width: int = 64               # D, the token width
    depth: int = 4                # number of transformer blocks
    heads: int = 4                # attention heads (D must be divisible by heads)
    mlp_ratio: int = 2            # hidden width of each block's MLP = mlp_ratio·D
    num_classes: int = 10         # K real classes; index K is the null class (0: unconditional)
    window: int | None = None     # local attention radius on the patch grid; None: global attention
    position: str = "sincos"      # position embedding: "sincos" (fixed 2D), "learned" or "none"

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be divisible by patch_size "
                             f"{self.patch_size}; pick a patch size that tiles the image")
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads} with an "
                             "even head width")
        if self.position not in POSITION_EMBEDDINGS:
            raise ValueError(f"unknown position {self.position!r}; choose one of "
                             f"{POSITION_EMBEDDINGS}")
        if self.window is not None and self.window < 0:
            raise ValueError(f"window must be None (global) or >= 0, got {self.window}")
        if min(self.in_channels, self.width, self.depth, self.heads, self.mlp_ratio) < 1:
            raise ValueError("in_channels, width, depth, heads and mlp_ratio must be >= 1")


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """Cut ``(B, C, H, W)`` into tokens ``(B, N, C·p·p)``, N = (H/p)(W/p).

    Tokens run row by row over the patch grid (token n = i·(W/p) + j); inside a token the features
    are ordered (channel, row in patch, column in patch) — the layout of ``F.unfold``.
    """
    B, C, H, W = x.shape
    if H % p or W % p:
        raise ValueError(f"image {H}x{W} is not divisible into {p}x{p} patches")
    h, w = H // p, W // p
    x = x.reshape(B, C, h, p, w, p)  # (B, C, i, u, j, v): pixel (i·p + u, j·p + v)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(B, h * w, C * p * p)  # (B, N, C·p·p)


def unpatchify(tokens: torch.Tensor, p: int, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`patchify`: tokens ``(B, N, C·p·p)`` → image ``(B, C, H, W)``."""
    B, N, K = tokens.shape
    h, w = height // p, width // p
    if N != h * w or K % (p * p):
        raise ValueError(f"{N} tokens of size {K} do not tile a {height}x{width} image with "
                         f"{p}x{p} patches")
    C = K // (p * p)
    x = tokens.reshape(B, h, w, C, p, p).permute(0, 3, 1, 4, 2, 5)  # (B, C, i, u, j, v)
    return x.reshape(B, C, height, width)


def modulate(h: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation h ⊙ (1 + scale) + shift: zero shift and scale leave h unchanged."""
    return h * (1 + scale) + shift


def sincos_position_embedding(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2D sine-cosine embedding ``(grid², dim)``: half the features encode the row, half the
    column, each as [sin(i·f_k), cos(i·f_k)] with f_k = 10000^(−k/(dim/4)) {cite}`vaswani2017`."""
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 for a 2D sine-cosine embedding, got {dim}")
    freqs = 10_000 ** (-torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))  # (dim/4,)
    pos = torch.arange(grid, dtype=torch.float64)
    one = torch.cat([(pos[:, None] * freqs).sin(), (pos[:, None] * freqs).cos()], 1)  # (G, dim/2)
    rows = one[:, None, :].expand(grid, grid, dim // 2)  # (i, j) → embedding of i
    cols = one[None, :, :].expand(grid, grid, dim // 2)  # (i, j) → embedding of j
    return torch.cat([rows, cols], -1).reshape(grid * grid, dim).float()


def window_mask(grid: int, window: int | None) -> torch.Tensor | None:
    """Boolean ``(N, N)``: True where token (i, j) may attend to (i', j'), i.e. within ``window``
    patches in both directions (Chebyshev distance); None for global attention."""
    if window is None:
        return None
    i, j = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    i, j = i.reshape(-1), j.reshape(-1)  # (N,)
    return ((i[:, None] - i[None]).abs() <= window) & ((j[:, None] - j[None]).abs() <= window)


class Attention(nn.Module):
    """Multi-head self-attention softmax(q kᵀ/√d) v; set ``record = True`` to keep the weights."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.record, self.last_attention = False, None

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, N, D = h.shape
        q, k, v = self.qkv(h).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / math.sqrt(D // self.heads)  # (B, heads, N, N)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        attn = logits.softmax(dim=-1)  # each row sums to 1 over the keys
        if self.record:
            self.last_attention = attn.detach()
        out = (attn @ v).transpose(1, 2).reshape(B, N, D)  # (B, N, D)
        return self.proj(out)


class Block(nn.Module):
    """One adaLN-Zero transformer block: attention and MLP, each modulated and gated by c."""

    def __init__(self, width: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * width, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight)  # adaLN-*Zero*: shift = scale = gate = 0 at start
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c)[:, None].chunk(6, dim=-1)
        h = h + gate1 * self.attn(modulate(self.norm1(h), shift1, scale1), mask)  # (B, N, D)
        return h + gate2 * self.mlp(modulate(self.norm2(h), shift2, scale2))  # (B, N, D)


class Transformer(nn.Module):
    """DiT-style denoiser network ``net(x, c_noise, labels=None) -> F`` shaped like the output image.

    patchify → linear embedding + position embedding → ``depth`` adaLN-Zero blocks → adaLN final
    layer → unpatchify {cite}`peebles2023`. ``labels=None`` selects the null class (unconditional).
    """

    def __init__(self, config: TransformerConfig | None = None) -> None:
        super().__init__()
        cfg = config or TransformerConfig()
        self.config = cfg
        D, p = cfg.width, cfg.patch_size
        self.grid = cfg.image_size // p
        self.out_channels = cfg.out_channels or cfg.in_channels
        self.embed = nn.Linear(cfg.in_channels * p * p, D)
        pos = sincos_position_embedding(self.grid, D) if cfg.position == "sincos" else \
            torch.zeros(self.grid**2, D)
        if cfg.position == "learned":
            self.pos = nn.Parameter(0.02 * torch.randn(self.grid**2, D))
        else:
            self.register_buffer("pos", pos, persistent=False)
        self.register_buffer("mask", window_mask(self.grid, cfg.window), persistent=False)
        # c_noise = ¼ log σ lies in about [−2, 1.5]: frequencies 1 … 10⁻⁴ (scale 1) resolve it.
        self.noise_emb = nn.Sequential(SinusoidalEmbedding(D, scale=1.0), nn.Linear(D, D),
                                       nn.SiLU(), nn.Linear(D, D))
        self.class_emb = nn.Embedding(cfg.num_classes + 1, D)  # index K is the null class
        self.blocks = nn.ModuleList(Block(D, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))
        self.out = nn.Linear(D, self.out_channels * p * p)
        for layer in (self.ada_out[1], self.out):  # F = 0 at initialisation
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        if x.ndim != 4 or x.shape[1:] != (cfg.in_channels, cfg.image_size, cfg.image_size):
            raise ValueError(f"x must have shape (B, {cfg.in_channels}, {cfg.image_size}, "
                             f"{cfg.image_size}), got {tuple(x.shape)}")
        B = x.shape[0]
        c_noise = torch.as_tensor(c_noise, dtype=x.dtype, device=x.device).expand(B)  # (B,)
        if labels is None:
            labels = torch.full((B,), cfg.num_classes, dtype=torch.long, device=x.device)
        if labels.shape != (B,) or labels.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"labels must be an integer tensor of shape ({B},), got "
                             f"{labels.dtype} {tuple(labels.shape)}")
        c = self.noise_emb(c_noise) + self.class_emb(labels.long())  # (B, D)
        h = self.embed(patchify(x, cfg.patch_size)) + self.pos  # (B, N, D)
        for block in self.blocks:
            h = block(h, c, self.mask)
        shift, scale = self.ada_out(c)[:, None].chunk(2, dim=-1)  # each (B, 1, D)
        tokens = self.out(modulate(self.norm_out(h), shift, scale))  # (B, N, C_out·p·p)
        return unpatchify(tokens, cfg.patch_size, cfg.image_size, cfg.image_size)


@torch.no_grad()
def attention_maps(net: Transformer, x: torch.Tensor, c_noise: torch.Tensor,
                   labels: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Run ``net`` once and return each block's attention weights, a list of ``(B, heads, N, N)``.

    Row n of a map is where token n looks: A[n, m] is the weight of token m in n's update.
    """
    attns = [block.attn for block in net.blocks]
    for a in attns:
        a.record = True
    try:
        net(x, c_noise, labels)
        return [a.last_attention for a in attns]
    finally:
        for a in attns:
            a.record, a.last_attention = False, None


# ---------------------------------------------------------------------------------------------
# The pixel-space transformer on the digits, cached (the counterpart of the chapter-7 U-Net)
# ---------------------------------------------------------------------------------------------

def _pixel_train() -> TrainConfig:
    # The chapter-7 U-Net's recipe (EDM), with fewer steps for the CPU budget and label dropout
    # pinned at 0.1 (the U-Net moved to 0.25; this model and its cache key did not).
    return dataclasses.replace(pretrained.DigitsUNetConfig().train, steps=2000, label_dropout=0.1)


@dataclass(frozen=True)
class DigitsTransformerConfig:
    """The class-conditional pixel transformer on the 8×8 digits: architecture plus EDM training."""

    net: TransformerConfig = TransformerConfig(depth=3)
    train: TrainConfig = field(default_factory=_pixel_train)


def train_digits_transformer(cfg: DigitsTransformerConfig) -> tuple[Transformer, dict]:
    """Train on the digits' training split with :func:`training.train` (label dropout for
    guidance); return the EMA network {cite}`peebles2023`, {cite}`karras2022`."""
    return pretrained.train_on_digits(lambda: Transformer(cfg.net), cfg.train)


pretrained.register("ch12_transformer", pretrained.Entry(
    DigitsTransformerConfig(), lambda c: Transformer(c.net), train_digits_transformer,
    pretrained.digits_fingerprint))

# What chapter 12 loads from this module, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [("ch12_transformer", None)]  # None: the registered default config
