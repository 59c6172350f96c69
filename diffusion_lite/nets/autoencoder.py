"""A small KL-regularised convolutional autoencoder (a VAE) for the 8×8 digits.

The encoder maps an image to q(z | x) = N(μ(x), diag σ²(x)) over a latent of shape
``(latent_channels, 8/2^levels, 8/2^levels)``; the decoder maps z back to the mean x̂(z) of a
Gaussian p(x | z) = N(x̂(z), σ_x² I). Training maximises a β-weighted ELBO {cite}`kingma2014`

    ELBO_β(x) = E_q[log p(x | z)] − β · KL(q(z | x) ‖ N(0, I)),
    log p(x | z) = −‖x − x̂(z)‖² / (2σ_x²) − (d/2) log(2π σ_x²),

β = 1 being the true ELBO ≤ log p(x). Latent diffusion uses a *weakly* regularised autoencoder
(small β): the KL only keeps the latent near a unit scale, reconstructions stay sharp
{cite}`rombach2022`. The reparameterisation and the KL come from :mod:`diffusion_lite.families.vae`.

Notation (code → symbol):

| code | symbol | meaning |
|---|---|---|
| ``x`` | x | image ``(B, 1, 8, 8)`` in [−1, 1] |
| ``mean``, ``logvar`` | μ, log σ² | parameters of q(z | x), each ``(B, c_z, h, w)`` |
| ``z`` | z | latent sample μ + σ ⊙ ε |
| ``x_hat`` | x̂(z) | decoder mean |
| ``obs_std`` | σ_x | standard deviation of p(x | z) |
| ``kl_weight`` | β | weight of the KL term (1: the ELBO) |
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from diffusion_lite import data, pretrained
from diffusion_lite.families.vae import gaussian_kl, reparameterise
from diffusion_lite.training import _interactive

__all__ = ["AutoencoderConfig", "Autoencoder", "gaussian_log_likelihood", "elbo",
           "train_autoencoder"]


@dataclass(frozen=True)
class AutoencoderConfig:
    """Architecture and training of the autoencoder (every field is part of the cache key)."""

    in_channels: int = 1        # image channels
    channels: int = 32          # conv width at full resolution (doubled after the first halving)
    levels: int = 2             # number of 2× down-samplings: 8×8 → (8/2^levels)²
    latent_channels: int = 4    # c_z; the latent holds c_z·(8/2^levels)² numbers
    obs_std: float = 0.1        # σ_x of p(x | z); smaller weights reconstruction more
    kl_weight: float = 1.0      # β on the KL term (1: the true ELBO)
    steps: int = 1500           # Adam steps
    batch_size: int = 128       # images per step
    lr: float = 2e-3            # peak learning rate (cosine decay to 0)
    seed: int = 0               # seeds initialisation, batches and ε
    progress: bool | None = None  # progress bar; None: only when interactive

    def __post_init__(self) -> None:
        if self.levels < 1 or self.latent_channels < 1 or self.channels < 1:
            raise ValueError("levels, latent_channels and channels must be >= 1")
        if self.obs_std <= 0 or self.kl_weight < 0:
            raise ValueError(f"obs_std must be > 0 and kl_weight >= 0, got {self.obs_std}, "
                             f"{self.kl_weight}")
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps must be >= 0, batch_size >= 1 and lr > 0")


def _conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.SiLU())


class Autoencoder(nn.Module):
    """Conv encoder to (μ, log σ²) and conv decoder back to x̂; each level halves / doubles H, W."""

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        cfg = config or AutoencoderConfig()
        self.config = cfg
        widths = [cfg.channels * min(2**i, 2) for i in range(cfg.levels + 1)]  # per level
        enc = [_conv_block(cfg.in_channels, widths[0])]
        for i in range(cfg.levels):
            enc.append(_conv_block(widths[i], widths[i + 1], stride=2))  # H/2
        self.encoder = nn.Sequential(*enc, nn.Conv2d(widths[-1], 2 * cfg.latent_channels, 1))
        dec = [_conv_block(cfg.latent_channels, widths[-1])]
        for i in reversed(range(cfg.levels)):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), _conv_block(widths[i + 1], widths[i])]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(widths[0], cfg.in_channels, 3, padding=1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z | x), each ``(B, c_z, h, w)``."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-20.0, 10.0)  # keeps e^{log σ²} finite early in training

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x̂(z), the mean of p(x | z): ``(B, c_z, h, w)`` → ``(B, C, H, W)``."""
        return self.decoder(z)

    def latent_shape(self, image_size: int = 8) -> tuple[int, int, int]:
        side = image_size // 2**self.config.levels
        return (self.config.latent_channels, side, side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the posterior mean: x̂(μ(x))."""
        return self.decode(self.encode(x)[0])


def gaussian_log_likelihood(x: torch.Tensor, x_hat: torch.Tensor, obs_std: float) -> torch.Tensor:
    """log N(x; x̂, σ_x² I) per sample, shape ``(B,)``."""
    d = x[0].numel()
    sq = (x - x_hat).pow(2).flatten(1).sum(1)  # (B,)
    return -0.5 * sq / obs_std**2 - 0.5 * d * math.log(2 * math.pi * obs_std**2)


def elbo(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
         decode: Callable[[torch.Tensor], torch.Tensor], *, obs_std: float,
         kl_weight: float = 1.0, n_samples: int = 1,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample ELBO_β = E_q[log p(x | z)] − β KL(q(z|x) ‖ N(0, I)), shape ``(B,)``.

    The expectation is a Monte Carlo average over ``n_samples`` reparameterised z; the KL is exact
    {cite}`kingma2014`. With β = 1 and q the exact posterior, ELBO = log p(x).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    rec = sum(gaussian_log_likelihood(x, decode(reparameterise(mean, logvar, generator=generator)),
                                      obs_std) for _ in range(n_samples)) / n_samples
    return rec - kl_weight * gaussian_kl(mean, logvar)


def train_autoencoder(x: torch.Tensor, config: AutoencoderConfig | None = None
                      ) -> tuple[Autoencoder, list[float]]:
    """Fit the autoencoder to images ``x`` by maximising ELBO_β with Adam (cosine learning rate).

    Returns the model (eval mode) and the loss −ELBO_β/d per step; deterministic given the seed.
    """
    cfg = config or AutoencoderConfig()
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG left alone
        torch.manual_seed(cfg.seed)
        model = Autoencoder(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(cfg.steps, 1))
    show = cfg.progress if cfg.progress is not None else _interactive()
    losses = []
    model.train()
    for _ in tqdm(range(cfg.steps), disable=not show, desc="autoencoder", mininterval=1.0):
        xb = x[torch.randint(len(x), (cfg.batch_size,), generator=gen)]  # (B, 1, 8, 8)
        mean, logvar = model.encode(xb)
        loss = -elbo(xb, mean, logvar, model.decode, obs_std=cfg.obs_std,
                     kl_weight=cfg.kl_weight, generator=gen).mean() / xb[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


def _train_on_digits(cfg: AutoencoderConfig) -> tuple[Autoencoder, dict]:
    x_train, _ = data.load_digits(split="train")  # (N, 1, 8, 8)
    model, losses = train_autoencoder(x_train, cfg)
    chunks = [sum(losses[i:i + 100]) / len(losses[i:i + 100]) for i in range(0, len(losses), 100)]
    return model, {"loss_per_100_steps": chunks}


pretrained.register("ch12_autoencoder", pretrained.Entry(AutoencoderConfig(), Autoencoder,
                                                         _train_on_digits,
                                                         pretrained.digits_fingerprint))

# What chapter 12 loads from this module, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [("ch12_autoencoder", None)]  # None: the registered default config
