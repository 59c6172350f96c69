"""A small 1D denoising network for signals: residual blocks, DiffWave-style {cite}`kong2021`.

Each block mixes along time, adds the noise-level embedding, applies a gated activation
tanh(a) ⊙ sigmoid(b) and splits into a residual and a skip path, as in DiffWave. How a block
mixes along time is the one choice:

- ``mixer="conv"``: a dilated convolution (dilations 1, 2, 4, … cycling), a kernel in *index*
  space. Its reach is a number of samples, so the same weights mean a different physical filter
  at another sampling rate: right for audio and series at a fixed rate, wrong across resolutions.
- ``mixer="integral"``: a kernel integral (K h)(t_i) = Σ_j κ(t_i − t_j) h(t_j) w_j with κ a learned
  mix of Gaussian bumps whose widths are in *physical* units and w_j quadrature weights of the
  grid: a small neural operator {cite}`kerrigan2023`. It takes the grid as its first label
  channel, so one trained network runs at any resolution and on irregular grids.

Conditioning channels (``labels``, shape (B, C_cond, T)) are concatenated to the input: CSDI's
observed values and mask {cite}`tashiro2021`. For ``mixer="integral"`` the first label channel is
the grid t and is not concatenated. The network is called ``net(x, c_noise, labels=None)``.

Notation (code → symbol): ``x`` the (preconditioned) signal (B, 1, T) · ``c_noise`` ¼ log σ ·
``h`` hidden channels (B, C, T) · ``widths`` the bump widths of κ · ``w`` quadrature weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..models import SinusoidalEmbedding

__all__ = ["SignalNetConfig", "SignalNet", "quadrature_weights"]


@dataclass(frozen=True)
class SignalNetConfig:
    channels: int = 32  # hidden width C of every block
    blocks: int = 6  # residual blocks
    mixer: str = "conv"  # "conv" (dilated, index space) or "integral" (physical-unit kernel)
    kernel_size: int = 3  # conv mixer: taps of each dilated convolution
    dilation_cycle: int = 6  # conv mixer: dilations 1, 2, …, 2^(cycle−1), then again
    cond_channels: int = 0  # label channels concatenated to the input (integral: plus the grid)
    widths: tuple = (0.03, 0.06, 0.12, 0.25)  # integral mixer: bump widths of κ, physical units

    def __post_init__(self) -> None:
        if self.mixer not in ("conv", "integral"):
            raise ValueError(f"unknown mixer {self.mixer!r}; choose 'conv' or 'integral'")
        for name in ("channels", "blocks", "kernel_size", "dilation_cycle"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-length output), got {self.kernel_size}")
        if not (isinstance(self.cond_channels, int) and self.cond_channels >= 0):
            raise ValueError(f"cond_channels must be an integer >= 0, got {self.cond_channels!r}")
        if self.mixer == "integral" and not all(w > 0 for w in self.widths):
            raise ValueError(f"widths must be positive lengths, got {self.widths!r}")


def quadrature_weights(grid: torch.Tensor) -> torch.Tensor:
    """Trapezoid weights w_j of a sorted grid (B, T): ∫ f ≈ Σ_j f(t_j) w_j."""
    d = grid.diff(dim=-1)  # (B, T−1)
    zero = torch.zeros_like(grid[..., :1])
    return 0.5 * (torch.cat([zero, d], -1) + torch.cat([d, zero], -1))  # (B, T)


class _Block(nn.Module):
    def __init__(self, cfg: SignalNetConfig, dilation: int) -> None:
        super().__init__()
        C = cfg.channels
        if cfg.mixer == "conv":
            self.mix = nn.Conv1d(C, C, cfg.kernel_size, dilation=dilation,
                                 padding=dilation * (cfg.kernel_size // 2), padding_mode="reflect")
        else:
            self.bump = nn.Parameter(torch.randn(C, len(cfg.widths)) / len(cfg.widths))
            self.local = nn.Conv1d(C, C, 1)
        self.noise = nn.Linear(C, C)
        self.gate = nn.Conv1d(C, 2 * C, 1)
        self.out = nn.Conv1d(C, 2 * C, 1)

    def forward(self, h: torch.Tensor, emb: torch.Tensor, bumps: torch.Tensor | None):
        if bumps is None:
            m = self.mix(h)  # (B, C, T)
        else:  # Σ_j κ_c(t_i − t_j) w_j h_cj with κ_c = Σ_m a_cm G_m (bumps carry w_j)
            kernel = torch.einsum("bmij,cm->bcij", bumps, self.bump)  # (B or 1, C, T, T)
            if kernel.shape[0] == 1:  # one grid: C matrix products (T, T) @ (T, B)
                mixed = (kernel[0] @ h.permute(1, 2, 0)).permute(2, 0, 1)  # (B, C, T)
            else:
                mixed = (kernel @ h[..., None]).squeeze(-1)  # (B, C, T)
            m = self.local(h) + mixed
        a, b = self.gate(m + self.noise(emb)[:, :, None]).chunk(2, dim=1)
        res, skip = self.out(torch.tanh(a) * torch.sigmoid(b)).chunk(2, dim=1)
        return (h + res) / math.sqrt(2), skip


class SignalNet(nn.Module):
    """F(x, c_noise, labels) for 1D signals (B, 1, T); see the module docstring."""

    def __init__(self, cfg: SignalNetConfig = SignalNetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        C = cfg.channels
        extra = cfg.cond_channels
        self.inp = nn.Conv1d(1 + extra, C, 1)
        self.embed = nn.Sequential(SinusoidalEmbedding(C), nn.Linear(C, C), nn.SiLU())
        self.blocks = nn.ModuleList(_Block(cfg, 2 ** (i % cfg.dilation_cycle))
                                    for i in range(cfg.blocks))
        self.head = nn.Sequential(nn.SiLU(), nn.Conv1d(C, C, 1), nn.SiLU(), nn.Conv1d(C, 1, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def _bumps(self, grid: torch.Tensor) -> torch.Tensor:
        """G_m(t_i − t_j) w_j / Z_m for every width: (B, M, T, T), normalised to unit mass."""
        widths = torch.tensor(self.cfg.widths, dtype=grid.dtype, device=grid.device)
        d = grid[:, None, :, None] - grid[:, None, None, :]  # (B, 1, T, T)
        g = torch.exp(-0.5 * (d / widths[None, :, None, None]) ** 2)  # (B, M, T, T)
        g = g * quadrature_weights(grid)[:, None, None, :]
        return g / (widths[None, :, None, None] * math.sqrt(2 * math.pi))

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        need = cfg.cond_channels + (1 if cfg.mixer == "integral" else 0)
        got = 0 if labels is None else labels.shape[1]
        if got != need or (labels is not None and labels.shape[-1] != x.shape[-1]):
            raise ValueError(f"this SignalNet takes labels of shape (B, {need}, T) (the grid first "
                             f"for mixer='integral', then {cfg.cond_channels} condition "
                             f"channels), got {None if labels is None else tuple(labels.shape)}")
        bumps, cond = None, labels
        if cfg.mixer == "integral":
            grid = labels[:, 0].to(x.dtype)  # (B, T)
            shared = bool((grid == grid[:1]).all())  # one grid for the batch: build κ once
            bumps, cond = self._bumps(grid[:1] if shared else grid), labels[:, 1:]
        h = self.inp(x if cfg.cond_channels == 0 else torch.cat([x, cond.to(x.dtype)], 1))
        emb = self.embed(c_noise.reshape(-1).expand(x.shape[0]))  # (B, C)
        skip = 0
        for block in self.blocks:
            h, s = block(h, emb, bumps)
            skip = skip + s
        return self.head(skip / math.sqrt(len(self.blocks)))
