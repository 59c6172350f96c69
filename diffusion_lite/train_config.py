"""The training configuration: one dataclass, every field validated when it is built.

A typo or a nonsense value (``grad_clip=-1``, ``steps=2.5``, ``lr=nan``, an unknown name) fails
at construction with an error that names the fix, never after training silently to nonsense.
Used by :func:`diffusion_lite.training.train` (which re-exports it).

Notation (code → symbol): ``lr`` η · ``ema_decay`` β · ``sigma_data`` σ_d · ``p_mean``,
``p_std`` the mean and standard deviation of ln σ under p_train(σ) {cite}`karras2022`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

from .denoisers import PREDICTIONS
from .losses import WEIGHTINGS, LogNormalSigma, LogUniformSigma
from .utils import check_int

__all__ = ["TrainConfig", "sigma_dist_from_config"]


@dataclass
class TrainConfig:
    steps: int = 2000                 # optimiser steps of the whole run (a resume continues to here)
    batch_size: int = 512             # samples per step, drawn with replacement
    lr: float = 3e-3                  # peak Adam learning rate η
    lr_warmup: int = 100              # steps of linear warm-up from 0 to η
    lr_decay: str = "cosine"          # "cosine" (to 0 at `steps`) or "constant"
    ema_decay: float = 0.995          # β of the EMA θ̄ ← β θ̄ + (1−β) θ (warmed up: min(β, (1+t)/(10+t)))
    grad_clip: float | None = 1.0     # clip the gradient norm to this (None: no clipping)
    prediction: str = "edm"           # what the network predicts: "x0", "eps", "v" or "edm"
    weighting: str | None = None      # λ(σ) on ‖D − x₀‖²; None: the prediction's own, 1/c_out²
    sigma_data: float = 0.5           # σ_d, the data's standard deviation (preconditioning)
    sigma_dist: str = "lognormal"     # p_train(σ): "lognormal" (p_mean, p_std) or "loguniform"
    p_mean: float = -1.2              # mean of ln σ for "lognormal"
    p_std: float = 1.2                # std of ln σ for "lognormal"
    sigma_min: float = 0.002          # lower end for "loguniform"
    sigma_max: float = 80.0           # upper end for "loguniform"
    label_dropout: float = 0.0        # probability a label is replaced by `null_label` (guidance)
    null_label: int | None = None     # the "no class" label; required when label_dropout > 0
    seed: int = 0                     # seeds the one generator behind batches, σ, ε and drops
    checkpoint_every: int = 0         # save every this many steps (0: only at the end)
    progress: bool | None = None      # progress bar: None shows it only when interactive
    # Fields a resumed run may change without changing what was computed so far.
    RESUMABLE: ClassVar[tuple] = ("steps", "checkpoint_every", "progress")

    def __post_init__(self) -> None:
        # Every field is checked here, so a typo fails at construction and never trains silently.
        for name in ("steps", "lr_warmup", "checkpoint_every", "seed"):
            check_int(getattr(self, name), name, minimum=0)
        check_int(self.batch_size, "batch_size", minimum=1)
        _positive(self, "lr", "the peak learning rate, e.g. 3e-3")
        _positive(self, "sigma_data", "the data's standard deviation, e.g. 0.5")
        if self.lr_decay not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_decay {self.lr_decay!r}; choose 'cosine' or 'constant'")
        if not _number(self.ema_decay) or not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.grad_clip is not None:
            _positive(self, "grad_clip", "a gradient-norm bound such as 1.0, or None for no "
                      "clipping; a bound <= 0 would flip or zero every step")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {self.prediction!r}; choose one of {PREDICTIONS}")
        if self.weighting is not None and self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {self.weighting!r}; choose one of "
                             f"{tuple(WEIGHTINGS)} or None (the prediction's own)")
        if not _number(self.label_dropout) or not 0 <= self.label_dropout <= 1:
            raise ValueError(f"label_dropout must lie in [0, 1] (a probability), got "
                             f"{self.label_dropout!r}")
        if self.null_label is not None:
            check_int(self.null_label, "null_label", minimum=0)
        if self.label_dropout > 0 and self.null_label is None:
            raise ValueError("label_dropout > 0 needs null_label (the class index meaning 'none')")
        if self.progress not in (None, True, False):
            raise ValueError(f"progress must be True, False or None (auto), got {self.progress!r}")
        for name in ("p_mean", "p_std", "sigma_min", "sigma_max"):
            if not _number(getattr(self, name)) or not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}")
        if self.p_std <= 0 or not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need p_std > 0 and 0 < sigma_min < sigma_max, got p_std={self.p_std}, "
                             f"sigma_min={self.sigma_min}, sigma_max={self.sigma_max}")
        sigma_dist_from_config(self)  # fail now, not at step 1

    def to_dict(self) -> dict:
        return asdict(self)


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positive(config: TrainConfig, name: str, meaning: str) -> None:
    v = getattr(config, name)
    if not _number(v) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0 ({meaning}), got {v!r}")


def sigma_dist_from_config(config: TrainConfig):
    """The noise-level distribution p_train(σ) a config names."""
    if config.sigma_dist == "lognormal":
        return LogNormalSigma(config.p_mean, config.p_std)
    if config.sigma_dist == "loguniform":
        return LogUniformSigma(config.sigma_min, config.sigma_max)
    raise ValueError(f"unknown sigma_dist {config.sigma_dist!r}; choose 'lognormal' or "
                     "'loguniform' (or pass sigma_dist=... to train)")
