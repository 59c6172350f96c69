"""Train once, then load: a cache of trained models keyed by a hash of their full configuration.

``pretrained(name)`` trains the named model deterministically when no cached weights exist and
loads them otherwise. The cache key is a SHA-256 of the model name, the cache format, every field of
the configuration (nested dataclasses included) and a fingerprint of the training data, so changing
any of them trains a new model instead of loading a stale one. Weights are safetensors files (no
pickle) in a user cache folder — ``$DIFFUSION_LITE_CACHE`` if set, else
``$XDG_CACHE_HOME/diffusion-lite`` or ``~/.cache/diffusion-lite``. Files are written and read
through :mod:`~diffusion_lite.checkpoints` (a temporary name, then an atomic ``os.replace``), so an
interrupted training never leaves a half file under the real name; each file stores a SHA-256 of
its tensors, so a truncated or tampered file is detected, reported and retrained instead of loaded.
Nothing is ever downloaded.

A classroom can share one cache (the file handling is in :mod:`~diffusion_lite.model_cache`): a
valid cached file is loaded without any lock (so a read-only folder an instructor prepared works),
cached files are readable by every user, and only training takes an exclusive lock on
``<file>.lock``: a second process that needs the same model waits for the first, says so, and then
loads its file. A file with the right key but weights that do not fit
the model (its code changed without a ``FORMAT_VERSION`` bump) is retrained. The key covers
configuration and data, not source code: after a change to a model's code that alters what it
learns, bump ``FORMAT_VERSION`` so every cached file is retrained.

Notation (code → notebook):

| code | meaning |
|---|---|
| ``name`` | registered model: ``"digits_unet"`` (EMA weights of the guided U-Net), ``"digits_classifier"`` |
| ``config`` | the frozen dataclass describing architecture and training |
| ``cache_key(name, config)`` | hex SHA-256 naming the file ``<name>-<key[:16]>.safetensors`` |
| ``info`` | metadata stored with the weights (loss history, training seconds), ``model.pretrained_info`` |
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from diffusion_lite import data, model_cache
from diffusion_lite.model_cache import cache_dir
from diffusion_lite.classifier import ClassifierConfig, DigitClassifier, train_classifier
from diffusion_lite import training
from diffusion_lite.denoisers import Denoiser
from diffusion_lite.training import TrainConfig
from diffusion_lite.unet import UNet, UNetConfig

__all__ = ["pretrained", "cache_dir", "cache_key", "cache_path", "REGISTRY", "Entry", "register",
           "PROVIDERS", "DigitsUNetConfig", "train_digits_unet", "digits_denoiser",
           "digits_fingerprint", "train_on_digits"]

FORMAT_VERSION = model_cache.FORMAT_VERSION


@dataclass(frozen=True)
class Entry:
    """A registered model: its default config, how to build it, and how to train it on data."""

    default_config: object
    build: Callable[[object], nn.Module]
    train: Callable[[object], tuple[nn.Module, dict]]  # config -> (trained module, info dict)
    data_fingerprint: Callable[[], str]


def _default_train() -> TrainConfig:
    return TrainConfig(steps=3000, batch_size=128, lr=2e-3, lr_warmup=100, ema_decay=0.999,
                       prediction="edm", sigma_data=0.5, p_mean=-1.2, p_std=1.2,
                       label_dropout=0.25, null_label=10, seed=0, progress=False)


@dataclass(frozen=True)
class DigitsUNetConfig:
    """The guided digit U-Net: architecture plus EDM training with label dropout.

    ``train.label_dropout`` is p_uncond, the probability that a label becomes the null class
    ``train.null_label`` = K ({cite}`ho2022cfg`); ``train.prediction="edm"`` is EDM's
    preconditioning with log σ ~ N(p_mean, p_std²) ({cite}`karras2022`). p_uncond = 0.25 (it
    was 0.1): the unconditional branch ∅ sees a quarter of the data instead of a tenth. In
    ``benchmarks/digits.py``'s one-field study that change alone took the mean held-out Fréchet
    distance at w = 0 from 12.9 [5.9, 19.8] to 6.7 [2.9, 10.5] (deterministic Heun, N = 20; 95%
    intervals over 4 sampling seeds: a consistent direction, not a proven factor) at the same
    training cost, while the guided cells stayed within 2× the floor; 25% more steps did less,
    another EMA decay nothing. The recipes built on this one (``cascade``, ``latent``,
    ``nets.transformer``) pin 0.1 themselves, so their cache keys did not change.
    """

    unet: UNetConfig = UNetConfig()
    train: TrainConfig = field(default_factory=_default_train)


def digits_denoiser(net: nn.Module, config: DigitsUNetConfig | None = None) -> Denoiser:
    """The U-Net as the contract ``D(x, σ, labels=None) -> x0_hat`` (its training preconditioning)."""
    tc = (config or DigitsUNetConfig()).train
    return Denoiser(net, tc.prediction, tc.sigma_data)


def train_digits_unet(cfg: DigitsUNetConfig) -> tuple[nn.Module, dict]:
    """Train the U-Net on the digits' training split with :func:`training.train`; return its EMA net.

    Minimises λ(σ)·‖D(x₀ + σε, σ | y') − x₀‖² with y' = ∅ w.p. p_uncond; deterministic given
    ``cfg.train.seed`` on CPU ({cite}`karras2022`, {cite}`ho2022cfg`).
    """
    if cfg.train.label_dropout > 0 and cfg.train.null_label != cfg.unet.num_classes:
        raise ValueError(f"train.null_label must be the U-Net's null class {cfg.unet.num_classes}")
    return train_on_digits(lambda: UNet(cfg.unet), cfg.train)


def train_on_digits(build: Callable[[], nn.Module], config: TrainConfig) -> tuple[nn.Module, dict]:
    """Train ``build()`` on the digits' training split with :func:`training.train` (labels given,
    so label dropout can teach guidance); return its EMA network and the mean loss per 100 steps.

    The initialisation is seeded from ``config.seed`` without touching the global random state, so
    a digit model is deterministic given its config on CPU.
    """
    x_train, y_train = data.load_digits(split="train")  # (N, 1, 8, 8), (N,)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = build()
    state = training.train(net, x_train, config, labels=y_train)
    loss = state.history["loss"]
    # Mean loss per 100 steps keeps the stored metadata small.
    chunks = [sum(loss[i:i + 100]) / len(loss[i:i + 100]) for i in range(0, len(loss), 100)]
    return state.ema.net.eval(), {"loss_per_100_steps": chunks}


@functools.lru_cache(maxsize=1)
def digits_fingerprint() -> str:
    x, y = data.load_digits(split="train")
    h = hashlib.sha256(x.contiguous().numpy().tobytes())
    h.update(y.contiguous().numpy().tobytes())
    return h.hexdigest()


def _train_classifier(cfg: ClassifierConfig) -> tuple[nn.Module, dict]:
    x, y = data.load_digits(split="train")
    return train_classifier(x, y, cfg), {}


REGISTRY: dict[str, Entry] = {
    "digits_unet": Entry(DigitsUNetConfig(), lambda c: UNet(c.unet), train_digits_unet,
                         digits_fingerprint),
    "digits_classifier": Entry(ClassifierConfig(), DigitClassifier, _train_classifier,
                               digits_fingerprint),
}


# Modules that register cached models of later chapters with :func:`register` when imported.
# ``pretrained(name)`` imports them on first use, so a name works without importing its chapter module.
PROVIDERS: tuple[str, ...] = ("diffusion_lite.ablations", "diffusion_lite.ebm",
                              "diffusion_lite.families.zoo", "diffusion_lite.few_step",
                              "diffusion_lite.nets.noisy_classifier", "diffusion_lite.flow_models",
                              "diffusion_lite.text.zoo", "diffusion_lite.nets.autoencoder",
                              "diffusion_lite.nets.transformer", "diffusion_lite.latent",
                              "diffusion_lite.cascade", "diffusion_lite.signals.functions",
                              "diffusion_lite.signals.imputation",
                              "diffusion_lite.signals.waveform")


def register(name: str, entry: Entry) -> None:
    """Add a cached model to :data:`REGISTRY` (a chapter module calls this once, at import time).

    Registering a name again with another kind of config is an error: two models must not share a
    cache name (re-registering the same model, e.g. on a module reload, replaces the entry).
    """
    if not isinstance(entry, Entry):
        raise TypeError(f"entry must be a pretrained.Entry, got {type(entry).__name__}")
    old = REGISTRY.get(name)
    if old is not None and type(old.default_config) is not type(entry.default_config):
        raise ValueError(f"a pretrained model named {name!r} is already registered")
    REGISTRY[name] = entry


def _import_providers() -> None:
    import importlib

    for module in PROVIDERS:
        importlib.import_module(module)


def _entry(name: str) -> Entry:
    if name not in REGISTRY:
        _import_providers()
    if name not in REGISTRY:
        raise ValueError(f"unknown pretrained model {name!r}; choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def _config_json(config: object) -> str:
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def cache_key(name: str, config: object | None = None) -> str:
    """SHA-256 over (name, format, every config field, training-data fingerprint)."""
    entry = _entry(name)
    config = entry.default_config if config is None else config
    if type(config) is not type(entry.default_config):
        raise TypeError(f"{name!r} needs a {type(entry.default_config).__name__}, "
                        f"got {type(config).__name__}")
    blob = json.dumps({"name": name, "format": FORMAT_VERSION, "config": _config_json(config),
                       "data": entry.data_fingerprint()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(name: str, config: object | None = None) -> pathlib.Path:
    """Where ``pretrained(name, config)`` keeps its weights."""
    return cache_dir() / f"{name}-{cache_key(name, config)[:16]}.safetensors"




def pretrained(name: str, config: object | None = None, *, device: torch.device | str | None = None,
               retrain: bool = False, verbose: bool = True) -> nn.Module:
    """Return the trained model ``name``: loaded from the cache, or trained (on CPU) and cached.

    ``config`` defaults to the registered default; any field change gives a new cache key and hence
    a new training run. The module is returned in eval mode on ``device`` (default CPU), with the
    stored metadata (loss history, training seconds) in ``module.pretrained_info``. A valid cached
    file loads without a lock (a read-only cache works); training holds ``<file>.lock``.
    """
    entry = _entry(name)
    config = entry.default_config if config is None else config
    key = cache_key(name, config)
    path = cache_dir() / f"{name}-{key[:16]}.safetensors"
    module = entry.build(config)
    info = None if retrain else model_cache.try_load(name, path, module, key, verbose)
    if info is None:
        if os.environ.get("DIFFUSION_LITE_NO_TRAIN"):
            raise RuntimeError(f"{name!r} is not in the model cache {cache_dir()} and "
                               "DIFFUSION_LITE_NO_TRAIN is set; fill the cache first with "
                               "`make cache` (python -m diffusion_lite.warmup)")
        model_cache.check_writable(name, path)
        # Two notebooks run side by side (nbval workers) must not both train: the second waits
        # for the first, then loads its file.
        with model_cache.exclusive(path, name, verbose):
            info = None if retrain else model_cache.try_load(name, path, module, key, verbose,
                                                                quiet=True)
            if info is None:
                module, info = _train(name, entry, config, path, key, verbose)
    module.pretrained_info = info
    return module.to(device or "cpu").eval()


def _train(name: str, entry: Entry, config: object, path: pathlib.Path, key: str,
           verbose: bool) -> tuple[nn.Module, dict]:
    if verbose:
        print(f"training {name} (no valid cache at {path}); this happens once")
    t0, c0 = time.perf_counter(), model_cache.cpu_seconds()
    module, info = entry.train(config)
    info = {**info, "train_wall_s": time.perf_counter() - t0, "train_cpu_s": model_cache.cpu_seconds() - c0}
    model_cache.save(path, module, key, info)
    return module, info


