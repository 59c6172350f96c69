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
from dataclasses import dataclass, field, replace

import torch

from . import data as digits_data
from . import mixtures, pretrained, samplers, training
from .denoisers import Denoiser
from .couplings import reflow_pairs, straightness
from .metrics import Estimate, random_projections, sliced_wasserstein
from .mode_coverage import mode_coverage
from .flow_matching import VelocityDenoiser, euler_t, oracle_velocity, uniform_t_sigmas
from .schedules import karras_sigmas
from .flow_training import FlowMatchingConfig, train_flow_matching
from .models import MLP
from .unet import UNet, UNetConfig

__all__ = ["RingFlowConfig", "ReflowConfig", "RingDiffusionConfig", "DigitsFlowConfig",
           "ring_of", "train_ring_flow", "train_ring_reflow", "train_ring_diffusion",
           "train_digits_flow", "LADDERS", "ladder", "sample_with_budget",
           "METHODS", "ring_specs", "ring_models", "path_straightness", "seed_interval", "few_step_study"]


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
    ode_steps: int = 32               # steps of the ODE (uniform in t) giving x₀ = Φ(ε)
    ode_sampler: str = "dpmpp_2m"     # a chapter-6 sampler; Heun's corrector at σ' ≪ σ amplifies
                                      # the model's error by (σ − σ')/2σ', so not Heun here
    train: FlowMatchingConfig = field(default_factory=lambda: FlowMatchingConfig(
        steps=1000, batch_size=256, lr=1e-3, lr_warmup=0, seed=1, progress=False))  # fine-tune


@dataclass(frozen=True)
class RingDiffusionConfig:
    n_modes: int = 8                  # the data: mixtures.ring(n_modes, radius, std)
    radius: float = 2.0
    std: float = 0.15
    seed: int = 0                     # training.default_2d(..., seed=seed)


def _default_digit_unet() -> UNetConfig:
    return UNetConfig(attention=False)  # 10 classes + null, as in chapter 7; attention: 2x cost


@dataclass(frozen=True)
class DigitsFlowConfig:
    unet: UNetConfig = field(default_factory=_default_digit_unet)  # class-conditional U-Net
    # Chapter 7's recipe (steps, batch, lr, EMA). Label dropout 0.1 is that recipe's former rate:
    # chapter 7's U-Net moved to 0.25, this model (and its cache key) stayed as it was.
    train: FlowMatchingConfig = field(default_factory=lambda: FlowMatchingConfig(
        steps=3000, batch_size=128, lr=2e-3, ema_decay=0.999, label_dropout=0.1, null_label=10,
        progress=False))


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
    pairs = reflow_pairs(base, config.n_pairs, (2,), steps=config.ode_steps,
                         sampler=config.ode_sampler, generator=gen)
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
    x_train, y_train = digits_data.load_digits(split="train")  # (N, 1, 8, 8), (N,)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global state untouched
        torch.manual_seed(config.train.seed)
        net = UNet(config.unet)
    result = train_flow_matching(net, x_train, config.train, labels=y_train)
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


METHODS = ("flow matching", "minibatch OT", "2-rectified flow", "diffusion (EDM)")


def ring_specs(seed: int, base: RingFlowConfig | None = None) -> dict[str, tuple[str, object]]:
    """The cached (name, config) of the chapter's four 2D models for one seed, keyed by :data:`METHODS`."""
    base = base or RingFlowConfig()
    plain = replace(base, train=replace(base.train, seed=seed, coupling="independent"))
    return {"flow matching": ("fm_ring", plain),
            "minibatch OT": ("fm_ring", replace(plain, train=replace(plain.train, coupling="ot"))),
            "2-rectified flow": ("fm_ring_reflow", ReflowConfig(base=plain)),
            "diffusion (EDM)": ("ring_edm", RingDiffusionConfig(base.n_modes, base.radius, base.std,
                                                                seed=seed))}


def ring_models(seed: int, base: RingFlowConfig | None = None) -> dict[str, torch.nn.Module]:
    """The chapter's four cached 2D models for one seed, keyed by :data:`METHODS`."""
    return {method: pretrained.pretrained(name, config, verbose=False)
            for method, (name, config) in ring_specs(seed, base).items()}


def path_straightness(model, eps: torch.Tensor, *, steps: int = 200, t_max: float = 0.999) -> float:
    """Straightness S of the ODE paths of any denoiser from noise ``eps`` (Euler in t, fine grid).

    The velocity is :func:`oracle_velocity` of the model (exact for a velocity network, the
    equivalent flow for a diffusion denoiser), integrated from x = t_max ε (≈ noise) to t = 0.
    """
    ts = torch.linspace(t_max, 0, steps + 1, dtype=eps.dtype)
    xs = euler_t(lambda x, t: oracle_velocity(model, x, t), t_max * eps, ts, trajectory=True)
    return straightness(ts, xs)


def seed_interval(values, level: float = 0.95) -> Estimate:
    """Mean over seeds with a Student-t interval (n − 1 degrees of freedom) {cite}`efron1993`."""
    from scipy.stats import t as student

    v = torch.as_tensor(values, dtype=torch.float64)
    if v.numel() < 2:
        raise ValueError("an interval over seeds needs at least 2 seeds")
    mean, se = float(v.mean()), float(v.std() / v.numel() ** 0.5)
    half = float(student.ppf((1 + level) / 2, v.numel() - 1)) * se
    return Estimate(mean, mean - half, mean + half, se, level)


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


@torch.no_grad()
def few_step_study(seeds=(0, 1, 2), nfes=(1, 2, 4, 8), *, n: int = 4000, n_ref: int = 20_000,
                   base: RingFlowConfig | None = None,
                   search=(("euler", "uniform_t"), ("euler", "karras_data"), ("heun", "karras_data"),
                           ("dpmpp_2m", "uniform_t"), ("dpmpp_2m", "karras_data"))) -> dict:
    """Sliced W2 ÷ its noise floor and mode coverage, per method, NFE and seed, on the ring.

    Flows use Euler in t (NFE = steps). "diffusion (EDM)" and "flow matching, best sampler" take,
    per NFE, the (sampler, ladder) of ``search`` with the lowest mean over seeds: the diffusion
    baseline at its best. Every method starts from the same noise per seed (paired). Returns
    ``{"floor": SW of fresh data, "rows": {method: {nfe: {"sw": [...], "modes": [...],
    "off": [...], "choice": (sampler, ladder)}}}}`` {cite}`bonneel2015`.
    """
    base = base or RingFlowConfig()
    mix = ring_of(base)
    proj = random_projections(2, 128, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(99)
    ref = mix.sample(n_ref, generator=g)
    floor = sum(sliced_wasserstein(mix.sample(n, generator=g), ref, projections=proj)
                for _ in range(10)) / 10
    models = {s: ring_models(s, base) for s in seeds}
    noise = {s: torch.randn(n, 2, generator=torch.Generator().manual_seed(1000 + s)) for s in seeds}

    def run(method, nfe, sampler, ladder_name):
        cell = {"sw": [], "modes": [], "off": [], "choice": (sampler, ladder_name)}
        for s in seeds:
            x = sample_with_budget(models[s][method], noise[s], nfe, sampler=sampler,
                                   ladder_name=ladder_name)
            cov = mode_coverage(mix, x)
            cell["sw"].append(sliced_wasserstein(x, ref, projections=proj) / floor)
            cell["modes"].append(cov.covered)
            cell["off"].append(cov.off_mode_rate)
        return cell

    rows = {m: {} for m in (*METHODS[:3], "flow matching, best sampler", METHODS[3])}
    for nfe in nfes:
        for method in METHODS[:3]:
            rows[method][nfe] = run(method, nfe, "euler", "uniform_t")
        for row, method in (("flow matching, best sampler", METHODS[0]), (METHODS[3], METHODS[3])):
            cells = [run(method, nfe, *choice) for choice in search]
            rows[row][nfe] = min(cells, key=lambda c: sum(c["sw"]))
    return {"floor": floor, "rows": rows}


# Every (name, config) chapter 10 loads, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [spec for seed in (0, 1, 2) for spec in ring_specs(seed).values()]
COURSE_MODELS.append(("fm_digits_unet", DigitsFlowConfig()))
