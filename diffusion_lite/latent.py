"""Latent diffusion: diffuse in an autoencoder's latent space, then decode {cite}`rombach2022`.

A thin composition of pieces that already exist:

1. a KL-regularised autoencoder (:mod:`diffusion_lite.nets.autoencoder`) maps each digit x to
   q(z | x); the training set becomes a set of latents z = μ(x) + σ(x) ⊙ ε;
2. a denoiser is trained on those latents with :func:`diffusion_lite.training.train` (the same
   EDM objective as on pixels; σ_d = the latents' standard deviation);
3. any chapter-6 sampler draws z₀ from the latent model (the one contract D(z, σ));
4. the decoder turns z₀ into an image, x = x̂(z₀).

The network sees c_z·h·w latent numbers instead of C·H·W pixels — for the 8×8 digits 16 instead of
64, and 4 tokens instead of 16 for a transformer — so each network evaluation is cheaper. The
price: samples can be no better than the autoencoder's reconstructions. The article's "DVAE" is
this method (Vahdat et al.'s LSGM {cite}`vahdat2021` trains both parts jointly; here they are
trained one after the other, as in Stable Diffusion).

Notation (code → symbol):

| code | symbol | meaning |
|---|---|---|
| ``z`` | z | latent ``(B, c_z, h, w)`` |
| ``latent_std`` | σ_d | standard deviation of the training latents (the latent model's σ_d) |
| ``sigmas`` | σ_0 > … > σ_n = 0 | the sampler's noise ladder, in latent units |
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from diffusion_lite import data, kid, metrics, pretrained, samplers, training
from diffusion_lite.denoisers import Denoiser
from diffusion_lite.nets.autoencoder import Autoencoder, AutoencoderConfig
from diffusion_lite.nets.transformer import Transformer, TransformerConfig
from diffusion_lite.training import TrainConfig

__all__ = ["LatentDiffusionConfig", "LatentDiffusion", "encode_dataset", "latent_sampler",
           "train_latent_diffusion", "sample_latent", "SampleScores", "score_samples"]


def _latent_train() -> TrainConfig:
    # The U-Net's recipe with σ_d = 1 (replaced by the measured latent scale) and a noise
    # distribution centred a little higher, for latents of unit scale. Label dropout pinned at the
    # U-Net's former 0.1 (the U-Net moved to 0.25; this recipe and its cache key did not).
    return dataclasses.replace(pretrained.DigitsUNetConfig().train, steps=3000, batch_size=256,
                               sigma_data=1.0, p_mean=-1.0, p_std=1.4, label_dropout=0.1)


@dataclass(frozen=True)
class LatentDiffusionConfig:
    """The autoencoder, the latent transformer and its training (``train.sigma_data`` is replaced
    by the measured latent standard deviation)."""

    autoencoder: AutoencoderConfig = AutoencoderConfig()
    net: TransformerConfig = TransformerConfig(in_channels=4, image_size=2, patch_size=1,
                                               width=64, depth=3, heads=4)
    train: TrainConfig = field(default_factory=_latent_train)


class LatentDiffusion(nn.Module):
    """An autoencoder and a latent denoiser network, with the latent scale σ_d as a buffer."""

    def __init__(self, config: LatentDiffusionConfig | None = None) -> None:
        super().__init__()
        cfg = config or LatentDiffusionConfig()
        shape = Autoencoder(cfg.autoencoder).latent_shape()
        if (cfg.net.in_channels, cfg.net.image_size) != (shape[0], shape[1]):
            raise ValueError(f"the latent is {shape}; set net.in_channels={shape[0]} and "
                             f"net.image_size={shape[1]}")
        self.config = cfg
        self.autoencoder = Autoencoder(cfg.autoencoder)
        self.net = Transformer(cfg.net)
        self.register_buffer("latent_std", torch.ones(1))  # (1,): safetensors digests need ndim >= 1

    def denoiser(self) -> Denoiser:
        """The latent model as the contract D(z, σ, labels=None) -> ẑ₀."""
        return Denoiser(self.net, self.config.train.prediction, float(self.latent_std))


@torch.no_grad()
def encode_dataset(autoencoder: Autoencoder, x: torch.Tensor,
                   batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, log σ²) of q(z | x) for every image, each ``(N, c_z, h, w)``."""
    parts = [autoencoder.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat([m for m, _ in parts]), torch.cat([lv for _, lv in parts])


def latent_sampler(mean: torch.Tensor, logvar: torch.Tensor, labels: torch.Tensor | None = None):
    """A data sampler for :func:`training.train`: draws rows and returns z = μ + σ ⊙ ε (and labels).

    A fresh z per draw makes the latent model learn the aggregate posterior ∫ q(z | x) p(x) dx,
    the distribution the decoder was trained to decode.
    """
    def draw(n: int, generator: torch.Generator | None = None):
        idx = torch.randint(len(mean), (n,), generator=generator)  # (n,)
        eps = torch.randn(mean[idx].shape, generator=generator)
        z = mean[idx] + (0.5 * logvar[idx]).exp() * eps  # (n, c_z, h, w)
        return z if labels is None else (z, labels[idx])
    return draw


def train_latent_diffusion(cfg: LatentDiffusionConfig) -> tuple[LatentDiffusion, dict]:
    """Encode the digits with the (cached) autoencoder, train the latent transformer on them.

    Minimises λ(σ)‖D(z + σε, σ | y) − z‖² with :func:`training.train`; σ_d is the latents'
    standard deviation {cite}`rombach2022`, {cite}`karras2022`.
    """
    x_train, y_train = data.load_digits(split="train")  # (N, 1, 8, 8), (N,)
    autoencoder = pretrained.pretrained("ch12_autoencoder", cfg.autoencoder, verbose=False)
    c0 = time.process_time()  # the latent stage alone (the autoencoder has its own cache entry)
    mean, logvar = encode_dataset(autoencoder, x_train)
    draw = latent_sampler(mean, logvar, y_train)
    z = draw(4096, torch.Generator().manual_seed(cfg.train.seed))[0]
    latent_std = float(z.std())
    model = LatentDiffusion(cfg)
    model.autoencoder.load_state_dict(autoencoder.state_dict())
    model.latent_std.fill_(latent_std)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching global state
        torch.manual_seed(cfg.train.seed)
        model.net = Transformer(cfg.net)
    tc = TrainConfig(**{**cfg.train.to_dict(), "sigma_data": latent_std})
    state = training.train(model.net, draw, tc)
    model.net = state.ema.net.eval()
    loss = state.history["loss"]
    chunks = [sum(loss[i:i + 100]) / len(loss[i:i + 100]) for i in range(0, len(loss), 100)]
    return model.eval(), {"loss_per_100_steps": chunks, "latent_std": latent_std,
                          "latent_train_cpu_s": time.process_time() - c0}


@torch.no_grad()
def sample_latent(model: LatentDiffusion, labels: torch.Tensor | None, sigmas: torch.Tensor, *,
                  n: int | None = None, sampler: str = "heun",
                  generator: torch.Generator | None = None, **sampler_kwargs) -> torch.Tensor:
    """Draw z_{σ_0} = σ_0 ε in the latent, run a chapter-6 sampler, decode: images ``(B, C, H, W)``.

    ``labels`` ``(B,)`` gives class-conditional samples; ``None`` with ``n`` unconditional ones.
    """
    if labels is None and n is None:
        raise ValueError("pass labels (B,) for conditional samples or n for unconditional ones")
    B = len(labels) if labels is not None else n
    device = model.latent_std.device  # draw on the CPU (seeded generator), then move
    shape = (B, *model.autoencoder.latent_shape())  # (B, c_z, h, w)
    z = (torch.randn(shape, generator=generator) * sigmas[0]).to(device)
    denoise = functools.partial(model.denoiser(), labels=labels)
    z0 = samplers.sample(sampler, denoise, z, sigmas, generator=generator, **sampler_kwargs)
    return model.autoencoder.decode(z0)


@dataclass(frozen=True)
class SampleScores:
    fd: float          # Fréchet distance to the reference set on the classifier's features
    kid: float         # KID: unbiased MMD² with the cubic kernel on the same features, full sets
    accuracy: float    # share of samples the classifier assigns to the requested label
    ms_per_sample: float  # CPU milliseconds per generated image (process time, all threads)


def score_samples(generate: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
                  labels: torch.Tensor, reference: torch.Tensor, classifier: nn.Module, *,
                  seed: int = 0) -> tuple[torch.Tensor, SampleScores]:
    """Generate one image per label with ``generate(labels, generator)`` and score the set.

    FD {cite}`heusel2017` and KID {cite}`binkowski2018` against ``reference`` on
    ``classifier``'s features, the classifier's accuracy on the requested labels, and the CPU
    time per sample (``time.process_time``: robust to other jobs on the machine, but it adds up
    the time of every thread).
    """
    t0 = time.process_time()
    images = generate(labels, torch.Generator().manual_seed(seed)).clamp(-1, 1)
    ms = 1000 * (time.process_time() - t0) / len(labels)
    with torch.no_grad():
        acc = float((classifier.logits(images).argmax(1) == labels).float().mean())
    fd = metrics.feature_frechet_distance(classifier, reference, images)
    # One "subset" holding every sample: the unbiased MMD² on the full sets (its spread over
    # sampling seeds is the error bar).
    k = kid.feature_kid(classifier, reference, images, subset_size=len(images), n_subsets=1)
    return images, SampleScores(fd, k.value, acc, ms)


pretrained.register("ch12_latent", pretrained.Entry(LatentDiffusionConfig(), LatentDiffusion,
                                                    train_latent_diffusion,
                                                    pretrained.digits_fingerprint))

# What chapter 12 loads from this module, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [("ch12_latent", None)]  # None: the registered default config
