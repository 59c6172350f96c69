"""Chapter 10's cached models: flow matching, OT-coupled and 2-rectified flows, and a baseline.

Each is registered with :func:`pretrained.register` at import time, so
``pretrained.pretrained("fm_ring", RingFlowConfig(...))`` trains once and loads afterwards. One
cache entry per seed (the seed lives in the config). The 2D models learn ``mixtures.ring`` (its
parameters are part of the config, hence of the cache key); the digit model learns the digits'
training split with the chapter-7 U-Net as its velocity network {cite}`lipman2023` {cite}`liu2023`.

| name | what | config |
|---|---|---|
| ``fm_ring`` | velocity MLP, independent or minibatch-OT coupling | :class:`RingFlowConfig` |
| ``fm_ring_reflow`` | 2-rectified flow: the above fine-tuned on its own ODE pairs | :class:`ReflowConfig` |
| ``ring_edm`` | the chapter-5 diffusion MLP (EDM), the diffusion baseline | :class:`RingDiffusionConfig` |
| ``fm_digits_unet`` | the digit U-Net trained as a velocity field | :class:`DigitsFlowConfig` |

Notation (code → symbol): ``n_pairs`` size of the reflow set {(x₀ = Φ(ε), ε)} · ``ode_steps``
steps of the ODE that produces it · ``seed`` the run's seed (init, batches, t, ε).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from . import data as digits_data
from . import mixtures, pretrained, samplers, training
from .denoisers import Denoiser
from .couplings import reflow_pairs
from .flow_matching import VelocityDenoiser, uniform_t_sigmas
from .schedules import karras_sigmas
from .flow_training import FlowMatchingConfig, train_flow_matching
from .models import MLP
from .unet import UNet, UNetConfig

__all__ = ["RingFlowConfig", "ReflowConfig", "RingDiffusionConfig", "DigitsFlowConfig",
           "ring_of", "train_ring_flow", "train_ring_reflow", "train_ring_diffusion",
           "train_digits_flow", "LADDERS", "ladder", "sample_with_budget"]


@dataclass(frozen=True)
class RingFlowConfig:
    n_modes: int = 8                  # the data: mixtures.ring(n_modes, radius, std)
    radius: float = 2.0
    std: float = 0.15
    hidden: int = 64                  # MLP width (the chapter-5 network)
    depth: int = 3                    # residual blocks
    train: FlowMatchingConfig = field(default_factory=lambda: FlowMatchingConfig(
        batch_size=256, progress=False))  # 256: an exact OT assignment per step stays cheap


@dataclass(frozen=True)
class ReflowConfig:
    base: RingFlowConfig = field(default_factory=RingFlowConfig)  # the 1-rectified flow to straighten
    n_pairs: int = 20_000             # reflow set size
    ode_steps: int = 32               # DPM-Solver++(2M) steps (uniform in t) giving x₀ = Φ(ε)
    train: FlowMatchingConfig = field(default_factory=lambda: FlowMatchingConfig(
        steps=1000, batch_size=256, lr=1e-3, lr_warmup=0, seed=1, progress=False))  # fine-tune


@dataclass(frozen=True)
class RingDiffusionConfig:
    n_modes: int = 8                  # the data: mixtures.ring(n_modes, radius, std)
    radius: float = 2.0
    std: float = 0.15
    seed: int = 0                     # training.default_2d(..., seed=seed)


def _default_digit_unet() -> UNetConfig:
    return UNetConfig(num_classes=0, attention=False)  # attention doubles the step cost


@dataclass(frozen=True)
class DigitsFlowConfig:
    unet: UNetConfig = field(default_factory=_default_digit_unet)  # unconditional U-Net
    train: FlowMatchingConfig = field(default_factory=lambda: FlowMatchingConfig(
        steps=3000, batch_size=128, lr=2e-3, ema_decay=0.999, progress=False))


def ring_of(config: RingFlowConfig | RingDiffusionConfig) -> mixtures.GaussianMixture:
    """The mixture a config's model learns."""
    return mixtures.ring(config.n_modes, config.radius, config.std)


def _ring_net(config: RingFlowConfig) -> VelocityDenoiser:
    gen = torch.Generator().manual_seed(config.train.seed)
    return VelocityDenoiser(MLP(dim=2, hidden=config.hidden, depth=config.depth, generator=gen),
                            config.train.path)


def train_ring_flow(config: RingFlowConfig) -> tuple[VelocityDenoiser, dict]:
    """Flow matching on the ring (coupling from ``config.train.coupling``); returns the EMA model."""
    result = train_flow_matching(_ring_net(config).net, ring_of(config).sample, config.train)
    return result.ema, {"loss_per_100_steps": _chunks(result.history["loss"])}


def train_ring_reflow(config: ReflowConfig) -> tuple[VelocityDenoiser, dict]:
    """2-rectified flow: pairs from the base flow's ODE, then fine-tune a copy of its weights."""
    base = pretrained.pretrained("fm_ring", config.base, verbose=False)
    gen = torch.Generator().manual_seed(config.train.seed)
    pairs = reflow_pairs(base, config.n_pairs, (2,), steps=config.ode_steps, generator=gen)
    net = copy.deepcopy(base.net).train().requires_grad_(True)
    result = train_flow_matching(net, pairs, config.train)
    return result.ema, {"loss_per_100_steps": _chunks(result.history["loss"])}


def train_ring_diffusion(config: RingDiffusionConfig) -> tuple[torch.nn.Module, dict]:
    """The chapter-5 default run (``training.default_2d``) on the ring; returns the EMA denoiser."""
    mix = ring_of(config)
    net, tc = training.default_2d((mix.total_variance / mix.dim) ** 0.5, seed=config.seed,
                                  progress=False)
    state = training.train(net, mix.sample, tc)
    return state.ema, {"loss_per_100_steps": _chunks(state.history["loss"])}


def _build_ring_diffusion(config: RingDiffusionConfig) -> torch.nn.Module:
    mix = ring_of(config)
    net, tc = training.default_2d((mix.total_variance / mix.dim) ** 0.5, seed=config.seed)
    return Denoiser(net, tc.prediction, tc.sigma_data)


def train_digits_flow(config: DigitsFlowConfig) -> tuple[VelocityDenoiser, dict]:
    """Flow matching on the digits' training split with the chapter-7 U-Net as u_θ."""
    x_train, _ = digits_data.load_digits(split="train")  # (N, 1, 8, 8)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global state untouched
        torch.manual_seed(config.train.seed)
        net = UNet(config.unet)
    result = train_flow_matching(net, x_train, config.train)
    return result.ema, {"loss_per_100_steps": _chunks(result.history["loss"])}


LADDERS = ("uniform_t", "karras", "karras_data")


def ladder(name: str, steps: int) -> torch.Tensor:
    """A σ ladder by name: uniform in t (σ_max = 1000), EDM's (σ ∈ [0.002, 80], ρ = 7), or EDM's
    matched to unit-scale data (σ ∈ [0.02, 10], ρ = 7, chapter 6's benchmark)."""
    if name == "uniform_t":
        return uniform_t_sigmas(steps)
    if name == "karras":
        return karras_sigmas(steps, 0.002, 80.0, 7.0)
    if name == "karras_data":
        return karras_sigmas(steps, 0.02, 10.0, 7.0)
    raise ValueError(f"unknown ladder {name!r}; choose one of {LADDERS}")


@torch.no_grad()
def sample_with_budget(model, eps: torch.Tensor, nfe: int, *, sampler: str = "euler",
                       ladder_name: str = "uniform_t") -> torch.Tensor:
    """Samples from ``model`` (any denoiser) with at most ``nfe`` evaluations, from noise ``eps``.

    The most steps of ``sampler`` that fit the budget (Heun spends 2n − 1), on the named ladder,
    starting at x = σ_0 ε: the same ε gives paired comparisons across models.
    """
    steps = samplers.steps_for_nfe(sampler, nfe)
    sigmas = ladder(ladder_name, steps).to(eps.dtype)
    return samplers.sample(sampler, model, sigmas[0] * eps, sigmas)


def _chunks(loss: list[float], size: int = 100) -> list[float]:
    return [sum(loss[i:i + size]) / len(loss[i:i + size]) for i in range(0, len(loss), size)]


def _ring_fingerprint() -> str:
    return "mixtures.ring(n_modes, radius, std) with the parameters in the config"


pretrained.register("fm_ring", pretrained.Entry(RingFlowConfig(), _ring_net, train_ring_flow,
                                                _ring_fingerprint))
pretrained.register("fm_ring_reflow", pretrained.Entry(
    ReflowConfig(), lambda c: _ring_net(c.base), train_ring_reflow, _ring_fingerprint))
pretrained.register("ring_edm", pretrained.Entry(RingDiffusionConfig(), _build_ring_diffusion,
                                                 train_ring_diffusion, _ring_fingerprint))
pretrained.register("fm_digits_unet", pretrained.Entry(
    DigitsFlowConfig(), lambda c: VelocityDenoiser(UNet(c.unet), c.train.path), train_digits_flow,
    pretrained.digits_fingerprint))
