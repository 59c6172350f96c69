"""Autoregressive models: p(x) = ∏_i p(x_i | x_<i), an exact likelihood and sequential sampling.

* **2D points** — :class:`MixtureDensityAR`: each conditional p(x_i | x_<i) is a K-component 1D
  Gaussian mixture whose weights, means and scales an MLP computes from x_<i (a mixture density
  network {cite}`bishop1994`); p(x_1) has free parameters.
* **Digits** — :class:`MADE`: the 64 pixels in raster order, each a categorical over the 17 grey
  levels; one network with masked weights gives every conditional in one pass, and the masks
  guarantee that the logits of pixel i see only pixels < i {cite}`germain2015`. Degrees: input i
  has degree i, a hidden unit degree m ∈ {1, …, d−1}; a weight from degree a to hidden degree m
  exists iff m ≥ a, and from hidden degree m to output i iff i > m.

Likelihood is one pass; sampling takes d passes, one coordinate at a time.

Notation (code → symbol): ``logits`` log-weights of a conditional · ``levels`` grey levels 0..16
of the digits · ``degrees`` m(k) of MADE's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import LEVELS, TrainingData, check_common, from_levels, minimise, mlp, seeded, thin

__all__ = ["MixtureDensityAR", "MADE", "ARConfig", "build_ar", "train_ar"]

_LOG_2PI = math.log(2 * math.pi)


class MixtureDensityAR(nn.Module):
    """p(x) = p(x_1) ∏_{i≥2} p(x_i | x_<i), each a 1D mixture of ``n_components`` Gaussians."""

    def __init__(self, dim: int, n_components: int, hidden: int, depth: int) -> None:
        super().__init__()
        k = n_components
        self.dim, self.k = dim, k
        start = torch.randn(k) * 1.5  # spread the first coordinate's initial means
        self.first = nn.Parameter(torch.cat([torch.zeros(k), start, torch.zeros(k)]))  # (3K,)
        self.conditionals = nn.ModuleList(mlp(i, hidden, depth, 3 * k) for i in range(1, dim))

    def _params(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log-weights, means, log-stds) ``(n, K)`` each of p(x_i | x_<i) (i counted from 0)."""
        out = self.first.expand(len(x), -1) if i == 0 else self.conditionals[i - 1](x[:, :i])
        logits, mean, log_std = out.chunk(3, dim=1)
        return F.log_softmax(logits, dim=1), mean, log_std.clamp(-7, 3)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) ``(n,)`` = Σ_i log Σ_k π_k N(x_i; μ_k, s_k²)."""
        total = torch.zeros(len(x), dtype=x.dtype, device=x.device)
        for i in range(self.dim):
            log_w, mean, log_std = self._params(i, x)
            xi = x[:, i:i + 1]
            comp = -0.5 * ((xi - mean) * torch.exp(-log_std)) ** 2 - log_std - 0.5 * _LOG_2PI
            total = total + torch.logsumexp(log_w + comp, dim=1)
        return total

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_1 ~ p(x_1), then x_2 ~ p(x_2 | x_1), …: ``dim`` sequential evaluations."""
        p = self.first
        x = torch.zeros(n, self.dim, dtype=p.dtype, device=p.device)
        for i in range(self.dim):
            log_w, mean, log_std = self._params(i, x)
            k = torch.multinomial(log_w.exp().cpu(), 1, generator=generator).to(p.device)  # (n, 1)
            eps = torch.randn(n, 1, generator=generator).to(p)
            x[:, i] = (mean.gather(1, k) + log_std.gather(1, k).exp() * eps)[:, 0]
        return x


class _MaskedLinear(nn.Linear):
    def __init__(self, d_in: int, d_out: int, mask: torch.Tensor) -> None:
        super().__init__(d_in, d_out)
        self.register_buffer("mask", mask.to(torch.float32))  # (d_out, d_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation over ``dim`` pixels with ``levels`` values."""

    def __init__(self, dim: int = 64, levels: int = LEVELS, hidden: int = 256, depth: int = 1) -> None:
        super().__init__()
        if dim < 2 or levels < 2 or hidden < dim - 1 or depth < 1:
            raise ValueError("MADE needs dim >= 2, levels >= 2, depth >= 1 and hidden >= dim − 1 "
                             "(so every degree 1..dim−1 has a unit)")
        self.dim, self.levels = dim, levels
        deg_in = torch.arange(1, dim + 1)                      # input i has degree i
        deg_h = torch.arange(hidden) % (dim - 1) + 1           # hidden degrees cycle 1..d−1
        layers, prev = [], deg_in
        for _ in range(depth):
            layers += [_MaskedLinear(len(prev), hidden, deg_h[:, None] >= prev[None, :]), nn.ReLU()]
            prev = deg_h
        out_deg = deg_in.repeat(levels)                        # output (level, pixel) → pixel's degree
        layers.append(_MaskedLinear(hidden, dim * levels, out_deg[:, None] > prev[None, :]))
        self.net = nn.Sequential(*layers)
        # A direct input → output path (strictly lower-triangular), as in MADE's paper.
        self.direct = _MaskedLinear(dim, dim * levels, out_deg[:, None] > deg_in[None, :])

    def logits(self, levels: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, levels, dim)``; those of pixel i depend on pixels < i only."""
        v = levels.to(self.direct.weight.dtype) * (2.0 / (self.levels - 1)) - 1  # inputs in [−1, 1]
        return (self.net(v) + self.direct(v)).reshape(len(levels), self.levels, self.dim)

    def log_prob(self, levels: torch.Tensor) -> torch.Tensor:
        """Exact log P(x) ``(n,)`` in nats over integer levels ``(n, dim)``: Σ_i log P(x_i | x_<i)."""
        return -F.cross_entropy(self.logits(levels), levels, reduction="none").sum(dim=1)

    @torch.no_grad()
    def sample_levels(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Integer levels ``(n, dim)``, pixel by pixel: ``dim`` network evaluations."""
        x = torch.zeros(n, self.dim, dtype=torch.long, device=self.direct.weight.device)
        for i in range(self.dim):
            probs = self.logits(x)[:, :, i].softmax(dim=1).cpu()  # (n, levels)
            x[:, i] = torch.multinomial(probs, 1, generator=generator)[:, 0].to(x.device)
        return x

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Digit images ``(n, 1, 8, 8)`` in [−1, 1] (for 64 pixels and 17 levels)."""
        return from_levels(self.sample_levels(n, generator=generator))


@dataclass(frozen=True)
class ARConfig:
    data: str = "2d"                 # "2d": mixture-density conditionals; "digits": MADE on levels
    n_components: int = 10           # K, Gaussians per conditional (2D only)
    hidden: int = 64                 # width of the conditional networks (MADE: ≥ 63)
    depth: int = 2                   # hidden layers
    steps: int = 2000                # Adam steps on −log p(x)
    batch_size: int = 256            # samples per step
    lr: float = 2e-3                 # Adam learning rate (cosine decay to 0)
    seed: int = 0                    # seeds initialisation and batches
    progress: bool | None = False    # progress bar (None: only when interactive)

    def __post_init__(self) -> None:
        check_common(self)
        if self.n_components < 1 or self.hidden < 1 or self.depth < 1:
            raise ValueError("n_components, hidden and depth must be >= 1")
        if self.data == "digits" and self.hidden < 63:
            raise ValueError("MADE over 64 pixels needs hidden >= 63 (one unit per degree 1..63)")


def build_ar(config: ARConfig) -> nn.Module:
    """The 2D mixture-density model or the digits' MADE, as ``config.data`` says."""
    if config.data == "2d":
        return MixtureDensityAR(2, config.n_components, config.hidden, config.depth)
    return MADE(64, LEVELS, config.hidden, config.depth)


def train_ar(config: ARConfig) -> tuple[nn.Module, dict]:
    """Maximum likelihood, −mean log p(x), with Adam; digits as integer grey levels (exact P)."""
    model = seeded(lambda: build_ar(config), config.seed)
    source = TrainingData(config.data, discrete=config.data == "digits")
    losses = minimise(model, lambda x, g: -model.log_prob(x).mean(), config, source,
                      f"autoregressive ({config.data})")
    return model, {"neg_log_lik": thin(losses)}
