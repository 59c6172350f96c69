"""The chapter-9 line-up: five families × two data sets × seeds, cached, behind one interface.

``load(family, data, seed)`` returns a :class:`Model` whatever the family: ``sample(n,
generator=...)``, ``nfe`` (network evaluations per batch of samples), ``log_likelihood(x)`` in
nats per sample (``None`` for the GAN) and what kind of number that is, and the cold training
CPU-seconds. Every model is trained once and cached with :func:`pretrained.pretrained`, one cache
entry per seed. Diffusion on 2D is the course's own run (:func:`training.default_2d` through
:func:`training.train`); diffusion on digits is chapter 7's U-Net, sampled unconditionally (null
label), so its seeds are sampling seeds only.

On digits the continuous models (VAE, flow, diffusion) are trained and scored on dequantised
pixels; ``log_likelihood`` then returns the *discrete-equivalent* value log p(x + u) + d·log Δ, a
lower bound on log P(x) comparable with the autoregressive model's exact discrete one.

| code name | symbol | meaning |
|---|---|---|
| ``family`` | — | "gan", "vae", "flow", "autoregressive" or "diffusion" |
| ``data`` | — | "2d" (:func:`common.many_modes`) or "digits" |
| ``nfe`` | NFE | network evaluations to draw one batch |
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .. import likelihood, pretrained as _pt, samplers, schedules, training
from ..denoisers import Denoiser
from ..models import MLP
from . import autoregressive, flow, gan, vae
from .common import BIN, DATASETS, dequantise, fingerprint, many_modes, to_levels

__all__ = ["FAMILIES", "SEEDS", "Diffusion2DConfig", "Model", "config_for", "load", "oracle_2d",
           "DIFFUSION_SAMPLER"]

FAMILIES = ("gan", "vae", "flow", "autoregressive", "diffusion")
SEEDS = (0, 1, 2)
# Sampler and σ ladder for diffusion: Heun on 18 Karras levels = 35 NFE (EDM's choice for 2D
# toys); DPM-Solver++(2M) with 20 levels = 20 NFE on digits (chapter 7's sampler).
DIFFUSION_SAMPLER = {"2d": ("heun", 18), "digits": ("dpmpp_2m", 20)}


@dataclass(frozen=True)
class Diffusion2DConfig:
    steps: int = 2000      # training steps of training.default_2d (batch 512, cosine lr)
    seed: int = 0          # seeds the MLP's initialisation and the training generator

    def __post_init__(self) -> None:
        if not (isinstance(self.steps, int) and self.steps >= 1 and self.seed >= 0):
            raise ValueError("steps must be a positive integer and seed >= 0")


def _data_std() -> float:
    m = many_modes()
    return (m.total_variance / m.dim) ** 0.5


def _build_diffusion_2d(config: Diffusion2DConfig) -> nn.Module:
    return MLP(dim=2, hidden=64, depth=3)


def _train_diffusion_2d(config: Diffusion2DConfig) -> tuple[nn.Module, dict]:
    net, tc = training.default_2d(_data_std(), seed=config.seed, steps=config.steps,
                                  progress=False)
    mixture = many_modes()

    def draw(n, generator=None):
        return mixture.sample(n, generator=generator).to(torch.float32)

    state = training.train(net, draw, tc)
    loss = state.history["loss"]
    return state.ema.net.eval(), {"loss_per_100_steps": [sum(loss[i:i + 100]) / 100
                                                         for i in range(0, len(loss), 100)]}


# Per-data settings sized for the chapter's cold-training budget (200 CPU-s for everything).
_DIGITS = {
    "gan": dict(latent_dim=16, hidden=128, steps=2000, batch_size=128, lr=2e-3),
    "vae": dict(latent_dim=8, hidden=256, steps=2000, batch_size=128, lr=1e-3),
    "flow": dict(n_layers=6, hidden=256, depth=1, steps=1200, batch_size=128, lr=1e-3),
    "autoregressive": dict(hidden=256, depth=1, steps=1200, batch_size=128, lr=2e-3),
}
_CONFIGS = {"gan": gan.GANConfig, "vae": vae.VAEConfig, "flow": flow.FlowConfig,
            "autoregressive": autoregressive.ARConfig}


def config_for(family: str, data: str, seed: int = 0):
    """The chapter's configuration of ``family`` on ``data`` with ``seed`` (a frozen dataclass)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    if data not in DATASETS:
        raise ValueError(f"unknown data {data!r}; choose one of {DATASETS}")
    if family == "diffusion":
        if data == "digits":
            return _pt.DigitsUNetConfig()  # chapter 7's model: one seed, trained there
        return Diffusion2DConfig(seed=seed)
    extra = _DIGITS[family] if data == "digits" else {}
    return _CONFIGS[family](data=data, seed=seed, **extra)


for _name, _cls, _build, _train in (
        ("families_gan", gan.GANConfig, gan.GAN, gan.train_gan),
        ("families_vae", vae.VAEConfig, vae.VAE, vae.train_vae),
        ("families_flow", flow.FlowConfig, flow.RealNVP, flow.train_flow),
        ("families_autoregressive", autoregressive.ARConfig, autoregressive.build_ar,
         autoregressive.train_ar),
        ("families_diffusion_2d", Diffusion2DConfig, _build_diffusion_2d, _train_diffusion_2d)):
    _pt.register(_name, _pt.Entry(_cls(), _build, _train, fingerprint))


@dataclass
class Model:
    family: str
    data: str
    seed: int
    module: nn.Module | None                            # the trained network(s); None: oracle
    sample: Callable[..., torch.Tensor]                 # sample(n, generator=...) -> (n, *shape)
    nfe: int                                            # network evaluations per batch
    log_likelihood: Callable[..., torch.Tensor] | None  # x -> (n,) nats, or None (GAN)
    likelihood_kind: str                                # "exact", "bound", "ODE" or "none"
    train_cpu_s: float                                  # cold training CPU-seconds (cached info)


def _unconditional_unet() -> tuple[Callable, nn.Module]:
    net = _pt.pretrained("digits_unet", verbose=False)
    den = _pt.digits_denoiser(net)
    null = net.num_classes if hasattr(net, "num_classes") else 10

    def denoiser(x, sigma):
        return den(x, sigma, torch.full((len(x),), null, dtype=torch.long, device=x.device))
    return denoiser, net


def _diffusion(data: str, seed: int) -> Model:
    if data == "2d":
        net = _pt.pretrained("families_diffusion_2d", Diffusion2DConfig(seed=seed), verbose=False)
        den, shape = Denoiser(net, "edm", _data_std()), (2,)
    else:
        den, net = _unconditional_unet()
        shape = (1, 8, 8)
    name, n_steps = DIFFUSION_SAMPLER[data]
    sigmas = schedules.karras_sigmas(n_steps, sigma_min=0.002, sigma_max=80.0)

    @torch.no_grad()
    def sample(n, *, generator=None):
        x = sigmas[0].float() * torch.randn(n, *shape, generator=generator)
        return samplers.sample(name, den, x, sigmas, generator=generator)

    def log_lik(x, *, generator=None):
        if data == "2d":
            return likelihood.log_likelihood(den, x, sigma_max=80.0, n_steps=100)
        # Dequantised digits; σ_min = 0.01 (a fifth of a grey level): the model's density
        # convolved with N(0, σ_min²), itself a proper density, with Hutchinson's divergence.
        xu = dequantise(x, generator=generator)
        ll = likelihood.log_likelihood(den, xu, sigma_min=0.01, sigma_max=80.0, n_steps=40,
                                       n_probes=1, generator=generator)
        return ll + 64 * math.log(BIN)

    info = getattr(net, "pretrained_info", {})
    return Model("diffusion", data, seed, net, sample, samplers.nfe_of(name, n_steps), log_lik,
                 "ODE", float(info.get("train_cpu_s", float("nan"))))


def oracle_2d(seed: int = 0) -> Model:
    """The mixture itself as a sixth "family": exact samples and exact log-density (no network)."""
    m = many_modes()
    return Model("oracle", "2d", seed, None,
                 lambda n, generator=None: m.sample(n, generator=generator).to(torch.float32), 0,
                 lambda x, generator=None: m.log_prob(x.to(torch.float64)), "exact", 0.0)


def load(family: str, data: str, seed: int = 0) -> Model:
    """The cached (or freshly trained) ``family`` model on ``data`` for ``seed``, as a :class:`Model`."""
    config = config_for(family, data, seed)
    if family == "diffusion":
        return _diffusion(data, seed)
    m = _pt.pretrained(f"families_{family}", config, verbose=False)
    cpu = float(m.pretrained_info.get("train_cpu_s", float("nan")))
    d = 2 if data == "2d" else 64
    offset = 0.0 if data == "2d" else d * math.log(BIN)  # dequantised → discrete-equivalent

    if family == "gan":
        return Model(family, data, seed, m, m.sample, 1, None, "none", cpu)
    if family == "vae":
        def vae_ll(x, *, generator=None):
            xu = x if data == "2d" else dequantise(x, generator=generator)
            return m.log_likelihood_bound(xu, generator=generator) + offset
        # 2D: x ~ p(x | z) with its noise; digits: the decoder mean (the usual picture of a VAE).
        return Model(family, data, seed, m, lambda n, generator=None: m.sample(
            n, generator=generator, noise=data == "2d"), 1, vae_ll, "bound", cpu)
    if family == "flow":
        def flow_ll(x, *, generator=None):
            with torch.no_grad():
                xu = x if data == "2d" else dequantise(x, generator=generator)
                return m.log_prob(xu) + offset
        return Model(family, data, seed, m, m.sample, config.n_layers, flow_ll, "exact", cpu)

    def ar_ll(x, *, generator=None):
        with torch.no_grad():
            return m.log_prob(x if data == "2d" else to_levels(x))
    return Model(family, data, seed, m, m.sample, d, ar_ll, "exact", cpu)


# Every (name, config) chapter 9 loads, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [(f"families_{f}", config_for(f, d, s))
                 for f in ("gan", "vae", "flow", "autoregressive") for d in DATASETS for s in SEEDS]
COURSE_MODELS += [("families_diffusion_2d", config_for("diffusion", "2d", s)) for s in SEEDS]
