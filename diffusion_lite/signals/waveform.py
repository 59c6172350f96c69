"""A small DiffWave-style waveform model of synthesised notes, cached per seed.

The network is :class:`~diffusion_lite.nets.signal_net.SignalNet` with dilated convolutions
(dilations 1, 2, …, 128 over 8 blocks: a receptive field longer than the clip), unconditional,
trained with :func:`~diffusion_lite.training.train` on a fixed set of notes from
:func:`~.sound.synth_notes` {cite}`kong2021`. Samples come from the unchanged samplers.

Notation (code → symbol): ``sample_rate`` f_s · ``length`` T samples per clip · ``n_train`` N.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import pretrained, samplers, training
from ..denoisers import Denoiser
from ..nets.signal_net import SignalNetConfig
from ..schedules import karras_sigmas
from ..utils import check_generator, check_int
from .common import build_denoiser, edm_recipe, train_denoiser
from .sound import synth_notes

__all__ = ["WaveformConfig", "build", "train_waveform", "note_data", "sample_waveforms",
           "COURSE_MODELS", "waveform_configs", "DATA_SEED"]

DATA_SEED = 1234  # the training notes; evaluation notes use other seeds


def _net() -> SignalNetConfig:
    return SignalNetConfig(channels=24, blocks=8, dilation_cycle=8)


def _train() -> training.TrainConfig:
    # 2800 steps (about 2 CPU-minutes): at 700 steps about a third of the samples had a valid
    # pitch, at 2800 most do (measured on 256 samples of seed 0: 32% -> 87%)
    return edm_recipe(steps=2800, batch_size=32, lr=4e-3, sigma_data=0.28, p_mean=-1.6, p_std=1.2)


@dataclass(frozen=True)
class WaveformConfig:
    seed: int = 0  # initialisation, batches, σ and ε (the training notes are fixed)
    sample_rate: int = 2000  # f_s in Hz
    length: int = 256  # samples per clip (0.128 s)
    n_train: int = 2048  # training notes, drawn with DATA_SEED
    net: SignalNetConfig = field(default_factory=_net)
    train: training.TrainConfig = field(default_factory=_train)

    def __post_init__(self) -> None:
        check_int(self.n_train, "n_train", minimum=1)
        if self.net.cond_channels != 0:
            raise ValueError("the waveform model is unconditional: cond_channels must be 0")


def note_data(cfg: WaveformConfig, n: int | None = None, seed: int = DATA_SEED) -> torch.Tensor:
    """Notes (n, 1, T) drawn with ``seed`` (the training set by default)."""
    gen = torch.Generator().manual_seed(seed)
    return synth_notes(n or cfg.n_train, sample_rate=cfg.sample_rate, length=cfg.length,
                       generator=gen)[0]


def build(cfg: WaveformConfig) -> Denoiser:
    return build_denoiser(cfg.net, cfg.seed, cfg.train.prediction, cfg.train.sigma_data)


def train_waveform(cfg: WaveformConfig) -> tuple[nn.Module, dict]:
    """Train with :func:`training.train` on the fixed training notes."""
    state, info = train_denoiser(build(cfg).net, note_data(cfg), cfg.train, cfg.seed)
    return state.ema, info


@torch.no_grad()
def sample_waveforms(denoiser, cfg: WaveformConfig, n: int, *, steps: int = 24,
                     sigma_max: float = 10.0, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """n clips (n, 1, T) with DPM-Solver++(2M)."""
    check_int(n, "n", minimum=1)
    check_generator(generator)
    sigmas = karras_sigmas(steps, 0.002, sigma_max).to(torch.float32)
    x = sigmas[0] * torch.randn(n, 1, cfg.length, generator=generator)
    return samplers.sample("dpmpp_2m", denoiser, x, sigmas, generator=generator)


def waveform_configs(seeds=(0, 1)) -> list[WaveformConfig]:
    return [WaveformConfig(seed=s) for s in seeds]


@torch.no_grad()
def _fingerprint() -> str:
    return hashlib.sha256(note_data(WaveformConfig()).numpy().tobytes()).hexdigest()


pretrained.register("note_waveforms", pretrained.Entry(WaveformConfig(), build, train_waveform,
                                                       _fingerprint))
COURSE_MODELS = [("note_waveforms", cfg) for cfg in waveform_configs()]
