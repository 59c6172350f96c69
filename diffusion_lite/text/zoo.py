"""The cached models of chapter 15: a masked-diffusion and an AR transformer of the same size.

``pretrained("text_masked", TextModelConfig(...))`` / ``pretrained("text_autoregressive", ...)``
train once on the grammar's corpus and load afterwards; each seed is its own cache entry
(``load(kind, seed)`` builds the config). Both networks are the same
:class:`~diffusion_lite.nets.token_transformer.TokenTransformer` (``causal`` differs), trained with
the same :class:`~diffusion_lite.text.training.TextTrainConfig` budget.

Notation (code → meaning): ``kind`` "masked" or "autoregressive" · ``seed`` initialisation and
batches (the corpus is fixed by ``corpus_seed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .. import pretrained
from ..nets.token_transformer import TokenTransformer, TokenTransformerConfig
from .language import Grammar, make_splits
from .training import TextTrainConfig, train_autoregressive, train_masked

__all__ = ["KINDS", "TextModelConfig", "default_train", "build", "train", "config_for", "load"]

KINDS = ("masked", "autoregressive")


@dataclass(frozen=True)
class TextModelConfig:
    kind: str = "masked"                   # "masked" (bidirectional) or "autoregressive" (causal)
    grammar: Grammar = Grammar()           # the language the corpus is drawn from
    n_train: int = 50_000                  # sentences in the training corpus
    n_heldout: int = 5_000                 # sentences in the held-out sample
    corpus_seed: int = 0                   # seeds the corpus (the same for every model seed)
    width: int = 64                        # transformer width d_model
    depth: int = 2                         # transformer blocks
    heads: int = 4                         # attention heads
    train: TextTrainConfig = field(default_factory=TextTrainConfig)  # see default_train(kind)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; choose one of {KINDS}")

    def net_config(self) -> TokenTransformerConfig:
        return TokenTransformerConfig(len(self.grammar.vocabulary), self.grammar.max_length,
                                      self.width, self.depth, self.heads,
                                      causal=self.kind == "autoregressive")

    def splits(self):
        return make_splits(self.grammar, self.n_train, self.n_heldout, self.corpus_seed)


def default_train(kind: str, seed: int = 0) -> TextTrainConfig:
    """The chapter's budgets: 1500 steps for the masked model, 500 for AR (a third of the compute).

    AR reaches its plateau far sooner (it learns L conditionals, the masked model all 2^L orders);
    giving it *less* compute makes every comparison where AR still leads a conservative one.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    if kind == "masked":
        return TextTrainConfig(steps=1500, warmup=75, seed=seed, progress=False)
    return TextTrainConfig(steps=500, warmup=25, seed=seed, progress=False)


def build(config: TextModelConfig) -> nn.Module:
    """The untrained network, initialised from ``config.train.seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        return TokenTransformer(config.net_config())


def train(config: TextModelConfig) -> tuple[nn.Module, dict]:
    """Train on the corpus of ``config``; info holds the loss (bits/token) per 50 steps."""
    net = build(config)
    fit = train_masked if config.kind == "masked" else train_autoregressive
    history = fit(net, config.splits().train, config.train)
    chunks = [sum(history[i:i + 50]) / len(history[i:i + 50]) for i in range(0, len(history), 50)]
    return net.eval(), {"loss_bits_per_token_per_50_steps": chunks}


def _fingerprint() -> str:
    # The data is generated from the config's grammar and corpus seed (both in the cache key);
    # this names the generator's code version, so a change to the sampler retrains.
    return "text-grammar-sampler-v1"


def config_for(kind: str, seed: int = 0, **changes) -> TextModelConfig:
    """The default config of ``kind`` with ``train.seed = seed`` (and other top-level changes)."""
    return TextModelConfig(kind=kind, train=default_train(kind, seed), **changes)


def load(kind: str, seed: int = 0, *, verbose: bool = False, **changes) -> nn.Module:
    """``pretrained("text_<kind>", config_for(kind, seed, ...))``: trained once, then cached."""
    return pretrained.pretrained(f"text_{kind}", config_for(kind, seed, **changes), verbose=verbose)


for _kind in KINDS:
    pretrained.register(f"text_{_kind}", pretrained.Entry(
        config_for(_kind), build, train, _fingerprint))

# Every (name, config) chapter 15 loads, for the cache warm-up (`make cache`, Binder's postBuild).
COURSE_MODELS = [(f"text_{kind}", config_for(kind, seed)) for kind in KINDS for seed in (0, 1, 2)]
