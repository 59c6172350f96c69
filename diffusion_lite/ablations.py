"""Cached 2D training runs for chapter 5's architecture ablation: depth and activation.

Popular writing describes the network of a diffusion model as "a sequence of layers with sigmoid or
tanh activations, more layers giving more detail". Chapter 5 tests that: the course's default run
(``training.default_2d``: a residual MLP, width 64, SiLU, EDM preconditioning) on ``mixtures.ring()``
with one thing changed — the activation or the number of residual blocks — each trained with three
seeds and scored against the exact Bayes floor. The runs are cached (:mod:`pretrained`), so the
chapter loads them instead of training 15 networks.

A second family of cached runs separates *parametrisation* from *weighting* (``ring_param``,
:class:`ParamRunConfig`): for the loss as a function of D the parametrisations differ only in their
weight λ(σ) = 1/c_out², but a finite network trained for a finite time also feels how D is built
from its output. Training with the same weighting and another parametrisation (and the reverse)
measures each effect alone.

Notation (code → symbol): ``depth`` L, residual blocks · ``activation`` φ · ``seed`` the run's
seed (initialisation, batches, σ, ε) · ``steps`` optimiser steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import mixtures, pretrained, training
from .denoisers import Denoiser
from .models import ACTIVATIONS, MLP

__all__ = ["RingRunConfig", "build", "train_ring_run", "ablation_configs", "ParamRunConfig",
           "build_param", "train_param_run", "param_configs", "COURSE_MODELS"]


@dataclass(frozen=True)
class RingRunConfig:
    depth: int = 3  # residual blocks L of the MLP (the default run has 3)
    activation: str = "silu"  # φ in every block: "silu" (default), "tanh", "sigmoid", "relu"
    hidden: int = 64  # width of every block
    steps: int = 1000  # Adam steps (half the default run, cosine decay to 0 at the end)
    seed: int = 0  # seeds the initialisation and the generator behind batches, σ and ε

    def __post_init__(self) -> None:
        if not (isinstance(self.depth, int) and self.depth >= 1):
            raise ValueError(f"depth must be an integer >= 1, got {self.depth!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; "
                             f"choose one of {sorted(ACTIVATIONS)}")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")


def _sigma_data() -> float:
    mix = mixtures.ring()
    return (mix.total_variance / mix.dim) ** 0.5


def build(cfg: RingRunConfig) -> nn.Module:
    """The run's denoiser D(x, σ): the MLP in EDM's preconditioning with the ring's σ_d."""
    net = MLP(dim=2, hidden=cfg.hidden, depth=cfg.depth, activation=cfg.activation,
              generator=torch.Generator().manual_seed(cfg.seed))
    return Denoiser(net, "edm", _sigma_data())


def train_ring_run(cfg: RingRunConfig) -> tuple[nn.Module, dict]:
    """Train as ``training.default_2d`` does, with the config's depth, activation and steps."""
    den = build(cfg)
    _, config = training.default_2d(_sigma_data(), seed=cfg.seed, steps=cfg.steps, progress=False)
    state = training.train(den.net, mixtures.ring().sample, config)
    tail = state.history["loss"][-50:]
    return state.ema, {"final_loss": sum(tail) / len(tail)}


def ablation_configs(seeds=(0, 1, 2)) -> list[RingRunConfig]:
    """The five architectures of the ablation (default, tanh, sigmoid, 1 block, 6 blocks) × seeds."""
    arch = [dict(), dict(activation="tanh"), dict(activation="sigmoid"), dict(depth=1),
            dict(depth=6)]
    return [RingRunConfig(seed=s, **a) for a in arch for s in seeds]


@dataclass(frozen=True)
class ParamRunConfig:
    prediction: str = "eps"  # what the network F predicts: "x0", "eps", "v", "edm" (D = c_skip x + c_out F)
    weighting: str | None = None  # λ(σ) on ‖D − x₀‖²; None: the prediction's own 1/c_out²
    seed: int = 0  # seeds the initialisation and the generator behind batches, σ and ε
    steps: int = 1000  # Adam steps at a constant learning rate (chapter 5's comparison)
    lr: float = 2e-3  # constant learning rate

    def __post_init__(self) -> None:
        # TrainConfig validates prediction and weighting and names the fix.
        self.train_config()

    def sigma_data(self) -> float:
        return 1.0 if self.prediction == "v" else _sigma_data()  # v-prediction is written for σ_d = 1

    def train_config(self) -> training.TrainConfig:
        return training.default_2d(_sigma_data(), prediction=self.prediction,
                                   weighting=self.weighting, sigma_data=self.sigma_data(),
                                   seed=self.seed, steps=self.steps, lr=self.lr,
                                   lr_decay="constant", progress=False)[1]


def build_param(cfg: ParamRunConfig) -> nn.Module:
    """The run's denoiser D(x, σ): the default MLP wrapped in the config's parametrisation."""
    net = MLP(dim=2, hidden=64, depth=3, generator=torch.Generator().manual_seed(cfg.seed))
    return Denoiser(net, cfg.prediction, cfg.sigma_data())


def train_param_run(cfg: ParamRunConfig) -> tuple[nn.Module, dict]:
    """Train the default MLP with the config's parametrisation and weighting (EMA weights)."""
    den = build_param(cfg)
    state = training.train(den.net, mixtures.ring().sample, cfg.train_config())
    return state.ema, {}


def param_configs(seeds=(0, 1, 2)) -> list[ParamRunConfig]:
    """ε- and x₀-parametrisation × the weights 1/σ² (ε's own) and 1 (x₀'s own) × seeds: chapter
    5's separation of parametrisation from weighting (2 × 2 × 3 runs of about 5 CPU-s)."""
    return [ParamRunConfig(prediction=p, weighting=w, seed=s)
            for p in ("eps", "x0") for w in ("eps", "x0") for s in seeds]


pretrained.register("ring_mlp", pretrained.Entry(RingRunConfig(), build, train_ring_run,
                                                 lambda: mixtures.ring().fingerprint()))
pretrained.register("ring_param", pretrained.Entry(ParamRunConfig(), build_param, train_param_run,
                                                   lambda: mixtures.ring().fingerprint()))
COURSE_MODELS = ([("ring_mlp", cfg) for cfg in ablation_configs()]
                 + [("ring_param", cfg) for cfg in param_configs()])
