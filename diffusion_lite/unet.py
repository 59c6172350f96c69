"""A small U-Net for 8×8 digit images, conditioned on the noise level and (optionally) a class.

The network is the "F" of EDM preconditioning ({cite}`karras2022`): it is called
``net(x, c_noise, labels=None)`` and a wrapper in ``denoisers`` turns it into the one contract
``denoiser(x, sigma) -> x0_hat``. The architecture follows the U-Net of {cite}`ronneberger2015`
as used by {cite}`ho2020`: a down path that halves the
resolution, an up path that doubles it back, skip connections that concatenate each down level into
the matching up level, GroupNorm ({cite}`wu2018`), and one self-attention block at the lowest
resolution. Classifier-free guidance ({cite}`ho2022cfg`) needs a *null class*:
label index ``num_classes`` means "no label", and ``labels=None`` selects it for the whole batch.

Notation (code → notebook):

| code | symbol | meaning |
|---|---|---|
| ``x`` | c_in·x_σ | scaled noisy image, shape (B, C, H, W) |
| ``c_noise`` | c_noise(σ) | noise-level input, e.g. ¼·log σ, shape (B,) |
| ``labels`` | y | class index in 0..K−1, or K = the null class ∅ |
| ``emb`` | e(σ, y) | joint embedding added inside every residual block |
| ``num_classes`` | K | number of real classes (10 digits) |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from diffusion_lite.models import SinusoidalEmbedding

__all__ = ["UNetConfig", "UNet"]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of the digit U-Net (every field is part of the cache key in ``pretrained``)."""

    in_channels: int = 1            # 1 for grey-scale digits
    base_channels: int = 16         # channels at full resolution
    channel_mults: tuple = (1, 2, 2)  # one entry per level; level i has base·mults[i] channels
    emb_dim: int = 128              # width of the noise/class embedding
    num_classes: int = 10           # K real classes; index K is the null class (0 = unconditional net)
    attention: bool = True          # one self-attention block at the lowest resolution
    num_groups: int = 8             # GroupNorm groups
    dropout: float = 0.0            # dropout inside residual blocks


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, add the embedding, GroupNorm → SiLU → conv, plus a skip path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.emb(emb)[:, :, None, None]  # the noise level and class enter here
        h = self.conv2(self.drop(F.silu(self.norm2(h))))  # (B, c_out, H, W)
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H·W positions, with a residual connection."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)  # each (B, C, HW)
        attn = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(C), dim=-1)  # (B, HW, HW)
        h = (v @ attn.transpose(1, 2)).reshape(B, C, H, W)  # (B, C, H, W)
        return x + self.proj(h)


class UNet(nn.Module):
    """Down path, middle (with attention), up path with concatenated skips; ``net(x, c_noise, labels)``.

    With ``channel_mults=(1, 2, 2)`` and 8×8 inputs the resolutions are 8×8 → 4×4 → 2×2. Returns a
    tensor shaped like ``x`` (the raw network output F; the EDM wrapper mixes it with the input).
    """

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        cfg = config or UNetConfig()
        self.config = cfg
        ch = [cfg.base_channels * m for m in cfg.channel_mults]  # channels per level
        g, e, p = cfg.num_groups, cfg.emb_dim, cfg.dropout
        # c_noise = ¼ log σ lies in about [−2, 1.5]: frequencies 1 … 10⁻⁴ (scale 1) resolve it.
        self.noise_emb = SinusoidalEmbedding(e, scale=1.0)
        self.noise_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        # K real classes + 1 null class; an unconditional net (K = 0) still has the null entry.
        self.class_emb = nn.Embedding(cfg.num_classes + 1, e)
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c_prev = ch[0]
        for i, c in enumerate(ch):
            self.down.append(ResBlock(c_prev, c, e, g, p))
            is_last = i == len(ch) - 1
            self.downsample.append(nn.Identity() if is_last else nn.Conv2d(c, c, 3, stride=2, padding=1))
            c_prev = c
        self.mid1 = ResBlock(c_prev, c_prev, e, g, p)
        self.attn = SelfAttention(c_prev, g) if cfg.attention else nn.Identity()
        self.mid2 = ResBlock(c_prev, c_prev, e, g, p)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(ch))):
            self.up.append(ResBlock(c_prev + ch[i], ch[i], e, g, p))
            self.upsample.append(nn.Identity() if i == 0 else nn.Upsample(scale_factor=2, mode="nearest"))
            c_prev = ch[i]
        self.norm_out = nn.GroupNorm(min(g, ch[0]), ch[0])
        self.conv_out = nn.Conv2d(ch[0], cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start as F = 0: the EDM denoiser starts at c_skip·x
        nn.init.zeros_(self.conv_out.bias)

    def null_labels(self, batch: int, device: torch.device) -> torch.Tensor:
        """A batch of null-class labels (index K): the unconditional model."""
        return torch.full((batch,), self.config.num_classes, dtype=torch.long, device=device)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """F(x, c_noise, y): ``x`` (B, C, H, W), ``c_noise`` (B,) or scalar, ``labels`` (B,) long or None."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"x must have shape (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        n_down = len(self.config.channel_mults) - 1
        if x.shape[-1] % 2**n_down or x.shape[-2] % 2**n_down:
            raise ValueError(f"H and W must be divisible by {2**n_down} for {n_down} down-samplings, "
                             f"got {tuple(x.shape[-2:])}; pad the images or use fewer channel_mults")
        B = x.shape[0]
        c_noise = torch.as_tensor(c_noise, dtype=x.dtype, device=x.device).expand(B)  # (B,)
        if labels is None:
            labels = self.null_labels(B, x.device)
        labels = torch.as_tensor(labels, device=x.device)
        if labels.shape != (B,) or labels.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"labels must be an integer tensor of shape ({B},), got "
                             f"{labels.dtype} {tuple(labels.shape)}")
        if bool(((labels < 0) | (labels > self.config.num_classes)).any()):
            raise ValueError(f"labels must lie in 0..{self.config.num_classes} "
                             f"({self.config.num_classes} = null class)")
        emb = self.noise_mlp(self.noise_emb(c_noise).to(x.dtype))  # (B, E)
        emb = F.silu(emb + self.class_emb(labels.long()))  # (B, E)
        h = self.conv_in(x)  # (B, ch0, H, W)
        skips = []
        for block, down in zip(self.down, self.downsample):
            h = block(h, emb)  # (B, ch_i, H_i, W_i)
            skips.append(h)
            h = down(h)  # (B, ch_i, H_i/2, W_i/2), except at the lowest level
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)  # (B, ch_last, H_min, W_min)
        for block, up in zip(self.up, self.upsample):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)  # (B, ch_i, H_i, W_i)
            h = up(h)  # (B, ch_i, 2·H_i, 2·W_i), except at full resolution
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, C, H, W)
