"""Cascaded diffusion: a 4×4 base model, then an 8×8 super-resolution model {cite}`ho2022cascaded`.

Generation runs low resolution first. The **base** model samples a 4×4 digit x_low given its class;
the **super-resolution** (SR) model samples the 8×8 digit given the upsampled x_low (and the
class, as in {cite}`ho2022cascaded`, where every stage is class-conditional). Each stage is an
ordinary denoiser trained with :func:`diffusion_lite.training.train` and sampled with a chapter-6
sampler; the SR stage receives its condition where a class label would go.

**Noise-conditioning augmentation** {cite}`ho2022cascaded`: during training the SR model sees the
low-resolution image with Gaussian noise of a random level σ_aug ~ U(0, σ_aug,max) added, and is
told σ_aug. The base model's samples are imperfect; an SR model trained only on clean
downsampled digits trusts every pixel of its condition, and the base model's errors are
amplified. At sampling the same noise (a chosen σ_aug) is added to the base sample.

Notation (code → symbol):

| code | symbol | meaning |
|---|---|---|
| ``x`` | x | 8×8 image ``(B, 1, 8, 8)`` |
| ``low`` | x_low = pool(x) | 4×4 image (2×2 average pooling) ``(B, 1, 4, 4)`` |
| ``aug_sigma`` | σ_aug | noise added to x_low before it conditions the SR model |
| ``cond`` | [up(x_low + σ_aug ε), σ_aug, y] | the SR model's condition ``(B, 3, 8, 8)`` |
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from diffusion_lite import data, pretrained, samplers, training
from diffusion_lite.denoisers import Denoiser
from diffusion_lite.nets.transformer import Transformer, TransformerConfig
from diffusion_lite.training import TrainConfig

__all__ = ["downsample", "upsample", "make_condition", "SuperResolutionNet", "CascadeConfig",
           "Cascade", "sr_sampler", "train_cascade", "sample_cascade"]


def downsample(x: torch.Tensor) -> torch.Tensor:
    """2×2 average pooling: ``(B, C, H, W)`` → ``(B, C, H/2, W/2)``."""
    return F.avg_pool2d(x, 2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2× upsampling (each pixel becomes a 2×2 block)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def make_condition(low: torch.Tensor, aug_sigma: torch.Tensor | float,
                   labels: torch.Tensor | None = None, *, null_label: int = 10,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The SR condition ``(B, 3, 2h, 2w)``: [up(x_low + σ_aug ε), σ_aug, y] with σ_aug and the
    class y (``null_label`` when ``labels`` is None) as constant planes."""
    aug = torch.as_tensor(aug_sigma, dtype=low.dtype, device=low.device).expand(low.shape[0])
    noisy = low + aug[:, None, None, None] * torch.randn(low.shape, generator=generator,
                                                          dtype=low.dtype).to(low.device)
    up = upsample(noisy)  # (B, 1, H, W)
    y = torch.full((low.shape[0],), float(null_label)) if labels is None else labels.float()
    planes = [aug[:, None, None, None].expand_as(up), y.to(up)[:, None, None, None].expand_as(up)]
    return torch.cat([up, *planes], dim=1)  # (B, 3, H, W)


class SuperResolutionNet(nn.Module):
    """``net(x, c_noise, labels=cond)``: the transformer on [x, up(x_low), σ_aug] as channels,
    conditioned on the class y through adaLN like any label.

    The contract passes one extra argument to a network (``labels``); for the SR stage that
    argument is the condition from :func:`make_condition`, which carries the class as its last
    plane.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if config.in_channels != 3 or (config.out_channels or 1) != 1:
            raise ValueError("the SR transformer needs in_channels=3 (x, up(x_low), σ_aug) and "
                             "out_channels=1")
        self.net = Transformer(config)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None or labels.shape != (x.shape[0], 3, *x.shape[2:]):
            raise ValueError("the SR net needs its condition: labels=make_condition(x_low, σ_aug, "
                             f"y) of shape ({x.shape[0]}, 3, {x.shape[2]}, {x.shape[3]})")
        y = labels[:, 2, 0, 0].round().long()  # (B,) the class plane
        return self.net(torch.cat([x, labels[:, :2]], dim=1), c_noise, y)


def _base_train() -> TrainConfig:
    # label_dropout pinned at chapter 7's former 0.1: the digit U-Net moved to 0.25, this recipe
    # (and its cache key) did not.
    return dataclasses.replace(pretrained.DigitsUNetConfig().train, steps=1500, label_dropout=0.1)


def _sr_train() -> TrainConfig:
    # No labels: the condition is the low-resolution image (label dropout off).
    return dataclasses.replace(pretrained.DigitsUNetConfig().train, steps=2000, label_dropout=0.0,
                               null_label=None)


@dataclass(frozen=True)
class CascadeConfig:
    """Both stages and their training (every field is part of the cache key)."""

    base: TransformerConfig = TransformerConfig(image_size=4, patch_size=1, width=48, depth=2)
    sr: TransformerConfig = TransformerConfig(in_channels=3, out_channels=1, image_size=8,
                                              patch_size=2, width=48, depth=3)
    train_base: TrainConfig = field(default_factory=_base_train)
    train_sr: TrainConfig = field(default_factory=_sr_train)
    aug_sigma_max: float = 0.5  # training draws σ_aug ~ U(0, aug_sigma_max); 0 switches it off

    def __post_init__(self) -> None:
        if self.aug_sigma_max < 0:
            raise ValueError(f"aug_sigma_max must be >= 0, got {self.aug_sigma_max}")
        if self.base.image_size * 2 != self.sr.image_size:
            raise ValueError("the SR stage must have twice the base stage's image_size")


class Cascade(nn.Module):
    """The base network (low resolution, class-conditional) and the SR network."""

    def __init__(self, config: CascadeConfig | None = None) -> None:
        super().__init__()
        self.config = config or CascadeConfig()
        self.base = Transformer(self.config.base)
        self.sr = SuperResolutionNet(self.config.sr)

    def base_denoiser(self) -> Denoiser:
        tc = self.config.train_base
        return Denoiser(self.base, tc.prediction, tc.sigma_data)

    def sr_denoiser(self) -> Denoiser:
        tc = self.config.train_sr
        return Denoiser(self.sr, tc.prediction, tc.sigma_data)


def sr_sampler(x: torch.Tensor, labels: torch.Tensor, aug_sigma_max: float):
    """A data sampler for :func:`training.train`: (x, cond) with σ_aug ~ U(0, aug_sigma_max)."""
    def draw(n: int, generator: torch.Generator | None = None):
        idx = torch.randint(len(x), (n,), generator=generator)
        x0 = x[idx]  # (n, 1, 8, 8)
        aug = aug_sigma_max * torch.rand(n, generator=generator)  # (n,)
        return x0, make_condition(downsample(x0), aug, labels[idx], generator=generator)
    return draw


def train_cascade(cfg: CascadeConfig) -> tuple[Cascade, dict]:
    """Train the base model on pooled digits and the SR model on (digit, noisy pooled digit) pairs."""
    x_train, y_train = data.load_digits(split="train")  # (N, 1, 8, 8), (N,)
    model = Cascade(cfg)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation
        torch.manual_seed(cfg.train_base.seed)
        model.base = Transformer(cfg.base)
        model.sr = SuperResolutionNet(cfg.sr)
    base = training.train(model.base, downsample(x_train), cfg.train_base, labels=y_train)
    sr = training.train(model.sr, sr_sampler(x_train, y_train, cfg.aug_sigma_max), cfg.train_sr)
    model.base, model.sr = base.ema.net.eval(), sr.ema.net.eval()
    return model.eval(), {"base_final_loss": sum(base.history["loss"][-100:]) / 100,
                          "sr_final_loss": sum(sr.history["loss"][-100:]) / 100}


@torch.no_grad()
def sample_cascade(model: Cascade, labels: torch.Tensor, sigmas_base: torch.Tensor,
                   sigmas_sr: torch.Tensor, *, aug_sigma: float = 0.1, sampler: str = "heun",
                   generator: torch.Generator | None = None,
                   return_low: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Base sample x_low | y, then SR sample x | [up(x_low + σ_aug ε), σ_aug], y {cite}`ho2022cascaded`."""
    if not 0 <= aug_sigma <= model.config.aug_sigma_max:
        raise ValueError(f"aug_sigma={aug_sigma} lies outside the trained range "
                         f"[0, {model.config.aug_sigma_max}]")
    B, s = len(labels), model.config.base.image_size
    device = next(model.parameters()).device  # draw on the CPU (seeded generator), then move
    low = (torch.randn((B, 1, s, s), generator=generator) * sigmas_base[0]).to(device)
    low = samplers.sample(sampler, functools.partial(model.base_denoiser(), labels=labels), low,
                          sigmas_base, generator=generator)
    cond = make_condition(low, aug_sigma, labels, generator=generator)  # (B, 3, 2s, 2s)
    x = (torch.randn((B, 1, 2 * s, 2 * s), generator=generator) * sigmas_sr[0]).to(device)
    x = samplers.sample(sampler, functools.partial(model.sr_denoiser(), labels=cond), x,
                        sigmas_sr, generator=generator)
    return (x, low) if return_low else x


pretrained.register("ch12_cascade", pretrained.Entry(CascadeConfig(), Cascade, train_cascade,
                                                     pretrained.digits_fingerprint))

# What chapter 12 loads from this module, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [("ch12_cascade", None)]  # None: the registered default config
