"""What the chapter-9 families share: the two data sets, dequantisation, the training-loop pieces.

Every family trains on the same data: the many-mode 2D mixture of :func:`many_modes` (fresh draws
from the exact oracle at every step) or the training split of the 8×8 digits, *dequantised*. The
digits take 17 values (pixel 0–16 mapped to x = pixel/8 − 1), so a continuous density could put
infinite mass on them; adding uniform noise u ~ U(−Δ/2, Δ/2)^d with Δ = 1/8 (one grey level) gives
data whose continuous likelihood bounds the discrete one {cite}`theis2016`:

    −log₂ P(x) ≤ E_u[−log₂ p(x + u)] − d·log₂ Δ     (Jensen; P the model's mass on x's bin)

so a continuous model's bits/dim plus log₂(1/Δ) = 3 compares with a discrete model's bits/dim.

| code name | symbol | meaning |
|---|---|---|
| ``BIN`` | Δ | width of one grey level of the digits in data units (1/8) |
| ``LEVELS`` | L | number of grey levels (17) |
| ``x`` | x | data, ``(n, 2)`` or ``(n, 1, 8, 8)`` |
| ``u`` | u | dequantisation noise, U(−Δ/2, Δ/2) per pixel |
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import data
from ..metrics import Estimate
from ..mixtures import GaussianMixture

__all__ = ["DATASETS", "BIN", "LEVELS", "many_modes", "fingerprint", "dequantise", "to_levels",
           "from_levels", "TrainingData", "mlp", "seeded", "progress_bar", "check_common",
           "minimise", "thin", "seed_interval"]

DATASETS = ("2d", "digits")
BIN = 1.0 / 8.0  # Δ: one grey level of the digits (x = pixel/8 − 1)
LEVELS = 17      # grey levels 0..16


def many_modes() -> GaussianMixture:
    """The chapter's 2D data: 8 Gaussians (std 0.15) on a circle of radius 2, weights ∝ 1, 2, …, 8.

    The lightest mode holds 1/36 ≈ 2.8% of the mass, the heaviest 8/36 ≈ 22%: a sampler that drops
    the light modes, or flattens the weights, shows it in :func:`mode_coverage.mode_coverage`.
    """
    k = torch.arange(8, dtype=torch.float64)
    angle = 2 * math.pi * k / 8
    means = 2.0 * torch.stack([angle.cos(), angle.sin()], dim=1)  # (8, 2)
    return GaussianMixture((k + 1) / (k + 1).sum(), means, torch.full((8,), 0.15**2,
                                                                      dtype=torch.float64))


def fingerprint() -> str:
    """A stable string naming both training sets (the mixture's parameters and the digit pixels)."""
    from ..pretrained import digits_fingerprint

    m = many_modes()
    h = hashlib.sha256()
    for t in (m.weights, m.means, m.variances):
        h.update(t.to(torch.float64).contiguous().numpy().tobytes())
    return h.hexdigest()[:32] + digits_fingerprint()[:32]


def dequantise(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + u with u ~ U(−Δ/2, Δ/2) per pixel: a continuous version of the 17-level digits."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) - 0.5
    return x + BIN * u


def to_levels(x: torch.Tensor) -> torch.Tensor:
    """Digits in [−1, 1] (or dequantised) → integer grey levels 0..16, ``(n, 64)`` int64."""
    return ((x.reshape(len(x), -1) + 1) / BIN).round().clamp(0, LEVELS - 1).long()


def from_levels(levels: torch.Tensor) -> torch.Tensor:
    """Grey levels 0..16 ``(n, 64)`` → digit images in [−1, 1], ``(n, 1, 8, 8)``."""
    return (levels.to(torch.float32) * BIN - 1).reshape(len(levels), 1, 8, 8)


class TrainingData:
    """Batches for one training run: fresh mixture draws (2D) or dequantised training digits.

    ``shape`` is one sample's shape: ``(2,)`` or ``(1, 8, 8)``. ``discrete=True`` returns the
    digits' grey levels ``(n, 64)`` instead (for the discrete autoregressive model).
    """

    def __init__(self, name: str, *, discrete: bool = False) -> None:
        if name not in DATASETS:
            raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")
        self.name, self.discrete = name, discrete
        if name == "2d":
            self.mixture, self.shape = many_modes(), (2,)
        else:
            self.digits = data.load_digits(split="train")[0]  # (1442, 1, 8, 8)
            self.shape = (1, 8, 8)

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.name == "2d":
            return self.mixture.sample(n, generator=generator).to(torch.float32)  # (n, 2)
        x = self.digits[torch.randint(len(self.digits), (n,), generator=generator)]
        return to_levels(x) if self.discrete else dequantise(x, generator=generator)


def mlp(d_in: int, hidden: int, depth: int, d_out: int, *, act: type[nn.Module] = nn.SiLU
        ) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` (``depth=0``: one linear map d_in → d_out)."""
    sizes = [d_in] + [hidden] * depth + [d_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with torch's global generator seeded by ``seed`` and restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def progress_bar(steps: int, show: bool | None, desc: str):
    """The course's tqdm bar over range(steps); ``show=None`` shows it only when interactive."""
    if show is None:
        show = sys.stderr.isatty() or "ipykernel" in sys.modules
    return tqdm(range(steps), disable=not show, desc=desc, mininterval=1.0)


def check_common(config) -> None:
    """Validate the fields every family config has (data, steps, batch_size, lr, seed)."""
    if config.data not in DATASETS:
        raise ValueError(f"data must be one of {DATASETS}, got {config.data!r}")
    if not (isinstance(config.steps, int) and config.steps >= 1):
        raise ValueError(f"steps must be a positive integer, got {config.steps!r}")
    if not (isinstance(config.batch_size, int) and config.batch_size >= 2):
        raise ValueError(f"batch_size must be an integer >= 2, got {config.batch_size!r}")
    if not config.lr > 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")
    if not (isinstance(config.seed, int) and config.seed >= 0):
        raise ValueError(f"seed must be an integer >= 0, got {config.seed!r}")


def minimise(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
             config, source: TrainingData, desc: str, *, clip: float | None = None) -> list[float]:
    """Adam with a cosine learning rate on ``loss_fn(batch, generator)`` over ``config.steps``
    fresh batches (one generator seeded by ``config.seed`` draws them all); returns the losses."""
    g = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
    losses = []
    for _ in progress_bar(config.steps, config.progress, desc):
        loss = loss_fn(source.batch(config.batch_size, g), g)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: the loss became {loss.item()} at step "
                                     f"{len(losses) + 1}; lower lr (now {config.lr})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


def thin(values: list[float], every: int = 50) -> list[float]:
    """Means over blocks of ``every`` steps: a loss curve small enough to store with the weights."""
    return [sum(values[i:i + every]) / len(values[i:i + every]) for i in range(0, len(values), every)]


def seed_interval(values, *, level: float = 0.95) -> Estimate:
    """Mean over independent runs (seeds) with a Student-t interval: mean ± t_{n−1}·s/√n.

    With 3 seeds t₂ = 4.30 at 95%: three runs pin a mean down only roughly, and the interval says so.
    """
    from scipy.stats import t as student_t

    v = torch.as_tensor(list(values), dtype=torch.float64)
    if v.numel() < 2:
        raise ValueError("seed_interval needs values from at least 2 seeds")
    mean, se = float(v.mean()), float(v.std(unbiased=True) / math.sqrt(v.numel()))
    half = float(student_t.ppf((1 + level) / 2, v.numel() - 1)) * se
    return Estimate(mean, mean - half, mean + half, se, level)
