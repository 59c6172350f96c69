"""Normalising flows with affine coupling layers (RealNVP) {cite}`dinh2017`.

A flow is an invertible map f from data x to a base variable z = f(x) ~ N(0, I); the change of
variables gives the exact log-density

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|.

An affine coupling layer keeps the coordinates selected by a binary mask κ and moves the others
with a log-scale γ and a shift ν computed from the kept ones:

    y = κ ⊙ x + (1 − κ) ⊙ (x ⊙ exp(γ(κ ⊙ x)) + ν(κ ⊙ x)),     log |det ∂y/∂x| = Σ_i (1 − κ_i) γ_i

(the Jacobian is triangular with diagonal 1 or e^{γ_i}). Its inverse is as cheap:
x = κ ⊙ y + (1 − κ) ⊙ (y − ν(κ ⊙ y)) ⊙ exp(−γ(κ ⊙ y)). Stacking layers with alternating masks
moves every coordinate; sampling is z ~ N(0, I) pushed through the inverses in reverse order.

Notation (code → symbol): ``mask`` κ · ``log_scale`` γ · ``shift`` ν · ``log_det``
log |det ∂f/∂x| · ``z`` the base variable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .common import TrainingData, check_common, minimise, mlp, seeded, thin

__all__ = ["AffineCoupling", "RealNVP", "FlowConfig", "alternating_masks", "train_flow"]

_LOG_2PI = math.log(2 * math.pi)


class AffineCoupling(nn.Module):
    """y = κ⊙x + (1−κ)⊙(x⊙e^{γ} + ν), with (γ, ν) = net(κ⊙x); γ bounded by a learned tanh scale."""

    def __init__(self, mask: torch.Tensor, hidden: int, depth: int) -> None:
        super().__init__()
        d = mask.numel()
        self.register_buffer("mask", mask.to(torch.float32).reshape(d))
        self.net = mlp(d, hidden, depth, 2 * d)
        nn.init.zeros_(self.net[-1].weight)  # start at the identity map: γ = ν = 0
        nn.init.zeros_(self.net[-1].bias)
        self.scale = nn.Parameter(torch.ones(d))  # γ = scale ⊙ tanh(raw): no exp overflow

    def _log_scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(kept).chunk(2, dim=1)  # (n, d) each
        free = 1 - self.mask
        return free * self.scale * torch.tanh(raw_s), free * t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, log |det ∂y/∂x|) for x ``(n, d)``: the data → noise direction."""
        s, t = self._log_scale_shift(self.mask * x)
        y = self.mask * x + (1 - self.mask) * (x * s.exp() + t)
        return y, s.sum(dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """x from y: the noise → data direction (the kept coordinates give γ and ν back)."""
        s, t = self._log_scale_shift(self.mask * y)
        return self.mask * y + (1 - self.mask) * (y - t) * torch.exp(-s)


def alternating_masks(d: int, n_layers: int) -> list[torch.Tensor]:
    """Masks b for ``n_layers`` couplings: a checkerboard over the d coordinates and its complement,
    alternating (for d = 2: keep x₁, move x₂; then keep x₂, move x₁)."""
    if d < 2:
        raise ValueError(f"a coupling flow needs d >= 2 dimensions, got {d}")
    base = torch.arange(d) % 2 == 0
    if d == 64:  # an 8×8 image: a spatial checkerboard, so every moved pixel has kept neighbours
        r, c = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
        base = ((r + c) % 2 == 0).reshape(64)
    return [base if i % 2 == 0 else ~base for i in range(n_layers)]


@dataclass(frozen=True)
class FlowConfig:
    data: str = "2d"                 # training data: "2d" (the many-mode mixture) or "digits"
    n_layers: int = 6                # coupling layers (alternating masks)
    hidden: int = 64                 # width of each coupling network
    depth: int = 2                   # hidden layers per coupling network
    steps: int = 2000                # Adam steps on −log p(x)
    batch_size: int = 256            # samples per step
    lr: float = 2e-3                 # Adam learning rate (cosine decay to 0)
    seed: int = 0                    # seeds initialisation and batches
    progress: bool | None = False    # progress bar (None: only when interactive)

    def __post_init__(self) -> None:
        check_common(self)
        if self.n_layers < 2 or self.hidden < 1 or self.depth < 1:
            raise ValueError("n_layers must be >= 2 (one per mask), hidden and depth >= 1")


class RealNVP(nn.Module):
    """A stack of affine couplings f = f_L ∘ … ∘ f_1 with a standard normal base."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.shape = (2,) if config.data == "2d" else (1, 8, 8)
        d = math.prod(self.shape)
        self.layers = nn.ModuleList(AffineCoupling(m, config.hidden, config.depth)
                                    for m in alternating_masks(d, config.n_layers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z = f(x) ``(n, d)``, log |det ∂f/∂x| ``(n,)``)."""
        z = x.reshape(len(x), -1)
        log_det = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for layer in self.layers:
            z, ld = layer(z)
            log_det = log_det + ld
        return z, log_det

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) ``(n,)`` = log N(f(x); 0, I) + log |det ∂f/∂x| (nats)."""
        z, log_det = self(x)
        return -0.5 * (z**2).sum(dim=1) - 0.5 * z.shape[1] * _LOG_2PI + log_det

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I) through the inverse couplings in reverse order: L network evaluations."""
        p = next(self.parameters())
        x = torch.randn(n, math.prod(self.shape), generator=generator).to(p)
        for layer in reversed(self.layers):
            x = layer.inverse(x)
        return x.reshape(n, *self.shape)


def train_flow(config: FlowConfig) -> tuple[RealNVP, dict]:
    """Maximum likelihood: Adam on −mean log p(x) over fresh batches {cite}`dinh2017`."""
    flow = seeded(lambda: RealNVP(config), config.seed)
    losses = minimise(flow, lambda x, g: -flow.log_prob(x).mean(), config,
                      TrainingData(config.data), f"flow ({config.data})", clip=10.0)
    return flow, {"neg_log_lik": thin(losses)}
