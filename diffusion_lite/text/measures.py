"""Measuring text generators on a language whose sentences can be checked.

Validity (share of samples in the language), bits per token (the masked model's bound, the AR
model's exact value, and the language's true entropy), diversity (share of distinct samples),
novelty (share of valid samples absent from the training corpus), infilling validity, and an
interval over seeds for any of them. The language itself is the reference for every measure:
a sample from the grammar scores what a perfect model would.

Notation (code → symbol):

| code | symbol / meaning |
|---|---|
| ``bits_per_token`` | (1/(L ln 2)) · nats per sequence, L positions (padding included) |
| ``bound_bits`` | the masked model's bound L(x) in bits per token (≥ its −log₂ p_θ(x)/L) |
| ``exact_bits`` | the AR model's −log₂ p_θ(x)/L |
| ``over_seeds(v)`` | mean ± t_{0.975, n−1} · s/√n over seeds |
| ``infill_task`` | held-out sentences with the middle masked: a prefix and a suffix given |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch

from ..metrics import Estimate
from . import autoregressive, masked
from .language import Grammar, Tokenizer

__all__ = ["validity", "diversity", "novelty", "bound_bits", "exact_bits", "over_seeds", "generate", "report", "validity_sweep", "infill_comparison",
           "infill_task", "infill_masked", "infill_autoregressive"]


def validity(grammar: Grammar, sentences: Sequence[str]) -> float:
    """Share of ``sentences`` in the language."""
    if not sentences:
        raise ValueError("need at least one sentence")
    return sum(grammar.is_valid(s) for s in sentences) / len(sentences)


def diversity(sentences: Sequence[str]) -> float:
    """Share of distinct sentences among ``sentences`` (1: no repeats)."""
    if not sentences:
        raise ValueError("need at least one sentence")
    return len(set(sentences)) / len(sentences)


def novelty(grammar: Grammar, sentences: Sequence[str], train_sentences: Iterable[str]) -> float:
    """Share of the *valid* sentences that are not in the training corpus (nan if none is valid)."""
    train = train_sentences if isinstance(train_sentences, (set, frozenset)) else set(train_sentences)
    valid = [s for s in sentences if grammar.is_valid(s)]
    return sum(s not in train for s in valid) / len(valid) if valid else math.nan


@torch.no_grad()
def bound_bits(net: Callable[..., torch.Tensor], x: torch.Tensor, mask_id: int, *, draws: int = 12,
               batch: int = 4096, generator: torch.Generator | None = None) -> torch.Tensor:
    """The masked model's bound per sequence in bits per token: (B,), averaged over ``draws``.

    The count estimator, stratified *per sequence*: copy j of a sequence masks
    k_j = ⌊(j + u)L/draws⌋ + 1 positions (u ~ U(0, 1) per sequence), so each k_j is marginally
    uniform on 1 … L (unbiased) and with ``draws = L`` every k occurs once — only the choice of
    positions is left random.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    L, out = x.shape[1], []
    for chunk in x.split(max(batch // draws, 1)):
        b = len(chunk)
        rep = chunk.repeat_interleave(draws, dim=0)  # (b·draws, L), copies adjacent
        u = torch.rand(b, 1, generator=generator, dtype=torch.float64)
        j = torch.arange(draws, dtype=torch.float64)[None]
        k = (((j + u) * L / draws).floor().long() + 1).clamp(max=L).reshape(-1)  # (b·draws,)
        rank = torch.rand(rep.shape, generator=generator).argsort(dim=1).argsort(dim=1)
        hidden = (rank < k[:, None]).to(x.device)
        z = torch.where(hidden, torch.full_like(rep, mask_id), rep)
        nats = masked.masked_cross_entropy(net(z), rep, hidden, (L / k.to(torch.float64)).to(x.device))
        out.append(nats.view(b, draws).mean(1))
    return torch.cat(out) / (L * math.log(2))


@torch.no_grad()
def exact_bits(net: Callable[..., torch.Tensor], x: torch.Tensor, bos_id: int, *,
               batch: int = 4096) -> torch.Tensor:
    """The AR model's exact −log₂ p_θ(x) / L per sequence: (B,)."""
    L = x.shape[1]
    nats = torch.cat([-autoregressive.log_prob(net, c, bos_id) for c in x.split(batch)])
    return nats / (L * math.log(2))


def over_seeds(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean over seeds with a Student-t interval: mean ± t_{(1+level)/2, n−1} · s/√n."""
    from scipy.stats import t as student_t

    v = torch.as_tensor(list(values), dtype=torch.float64)
    if v.numel() < 2 or not torch.isfinite(v).all():
        raise ValueError(f"need >= 2 finite values (one per seed), got {v.tolist()}")
    se = float(v.std(unbiased=True)) / math.sqrt(v.numel())
    half = float(student_t.ppf((1 + level) / 2, v.numel() - 1)) * se
    mean = float(v.mean())
    return Estimate(mean, mean - half, mean + half, se, level)


def infill_task(grammar: Grammar, tokenizer: Tokenizer, n: int, *, prefix: int = 2,
                suffix: int = 3, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` fresh sentences with everything between the first ``prefix`` and last ``suffix`` words masked.

    Returns ``(x, middle)``: the ids (n, L) and a bool (n, L) marking the hidden middle (at least
    one word; padding after the sentence stays given, so the middle's length is known).
    """
    need = prefix + suffix + 1
    if grammar.max_length < need:
        raise ValueError(f"prefix + suffix + 1 = {need} exceeds the longest sentence")
    sentences: list[str] = []
    while len(sentences) < n:  # keep sentences long enough to have a middle
        sentences += [s for s in grammar.sample(2 * n, generator=generator)
                      if len(s.split()) >= need]
    x = tokenizer.encode(sentences[:n])
    lengths = (x != tokenizer.pad_id).sum(1, keepdim=True)  # (n, 1)
    pos = torch.arange(x.shape[1])[None]
    return x, (pos >= prefix) & (pos < lengths - suffix)


@torch.no_grad()
def infill_masked(net: Callable[..., torch.Tensor], x: torch.Tensor, middle: torch.Tensor,
                  mask_id: int, steps: int, *, order: str = "random",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask the middle and let the masked sampler fill it, seeing prefix *and* suffix."""
    z = torch.where(middle, torch.full_like(x, mask_id), x)
    return masked.sample(net, z, steps, mask_id, order=order, generator=generator)


@torch.no_grad()
def infill_autoregressive(net: Callable[..., torch.Tensor], x: torch.Tensor, middle: torch.Tensor,
                          bos_id: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Left to right: sample the middle given the prefix only, then paste the given suffix back.

    A left-to-right model cannot condition on the suffix without extra machinery (rejection,
    or scoring every candidate middle); this is what it does when used as is.
    """
    start = middle.float().argmax(1)  # (n,) the prefix length of each row
    if not (start == start[0]).all():
        raise ValueError("infill_autoregressive needs the same prefix length in every row")
    start = int(start[0])
    draw = autoregressive.sample(net, len(x), x.shape[1], bos_id, prefix=x[:, :start],
                                 generator=generator)
    return torch.where(middle, draw, x)


@torch.no_grad()
def generate(net: torch.nn.Module, tokenizer: Tokenizer, n: int, *, steps: int | None = None,
             order: str = "random", generator: torch.Generator | None = None) -> list[str]:
    """``n`` decoded sentences from a chapter-15 net: the masked sampler (``steps``) or AR.

    The net's ``config.causal`` says which: AR always takes L steps (``steps`` must be None).
    """
    c = net.config
    if c.causal:
        if steps is not None:
            raise ValueError("an AR model takes exactly L steps: leave steps=None")
        return tokenizer.decode(autoregressive.sample(net, n, c.length, c.vocab_size,
                                                      generator=generator))
    if steps is None:
        raise ValueError("the masked sampler needs steps (1 … L)")
    z = torch.full((n, c.length), c.vocab_size, dtype=torch.long)
    return tokenizer.decode(masked.sample(net, z, steps, c.vocab_size, order=order,
                                          generator=generator))


def report(grammar: Grammar, sentences: Sequence[str], train_sentences: Iterable[str]) -> dict:
    """Validity, diversity and novelty of ``sentences``, and the share of agreement errors."""
    kinds = [grammar.diagnose(s) for s in sentences]
    invalid = max(sum(k != "valid" for k in kinds), 1)
    return {"validity": validity(grammar, sentences), "diversity": diversity(sentences),
            "novelty": novelty(grammar, sentences, train_sentences),
            "agreement_share_of_errors": sum(k == "agreement" for k in kinds) / invalid}


@torch.no_grad()
def validity_sweep(masked_nets: Sequence[torch.nn.Module], ar_nets: Sequence[torch.nn.Module],
                   grammar: Grammar, tokenizer: Tokenizer, train_sentences: Iterable[str], *,
                   n: int = 1000, steps: Sequence[int] = (1, 2, 3, 4, 6, 12),
                   confidence_steps: Sequence[int] = (2, 4, 12), seed: int = 100) -> dict:
    """:func:`report` for every model seed at every step count: {(model, k, order): [per seed]}.

    Seed i's nets share one generator seeded ``seed + i``. Keys: ("masked", k, "random" |
    "confidence"), ("autoregressive", L, "left-to-right") and ("grammar", 0, "exact") (the
    language itself, ``n`` fresh sentences per seed: a perfect model's scores).
    """
    if len(masked_nets) != len(ar_nets):
        raise ValueError("pass one masked and one AR net per seed")
    train = set(train_sentences)
    out: dict = {}
    for i, (net_m, net_ar) in enumerate(zip(masked_nets, ar_nets)):
        g = torch.Generator().manual_seed(seed + i)
        for order, ks in (("random", steps), ("confidence", confidence_steps)):
            for k in ks:
                sents = generate(net_m, tokenizer, n, steps=k, order=order, generator=g)
                out.setdefault(("masked", k, order), []).append(report(grammar, sents, train))
        sents = generate(net_ar, tokenizer, n, generator=g)
        out.setdefault(("autoregressive", net_ar.config.length, "left-to-right"), []).append(
            report(grammar, sents, train))
        out.setdefault(("grammar", 0, "exact"), []).append(
            report(grammar, grammar.sample(n, generator=g), train))
    return out


@torch.no_grad()
def infill_comparison(masked_nets: Sequence[torch.nn.Module], ar_nets: Sequence[torch.nn.Module],
                      grammar: Grammar, tokenizer: Tokenizer, *, n: int = 500,
                      few_steps: int = 2, seed: int = 200) -> dict[str, list[float]]:
    """Infilling validity per seed: masked with k = gap length, masked with ``few_steps``, AR."""
    out: dict[str, list[float]] = {"masked, k = gap": [], f"masked, k = {few_steps}": [],
                                   "AR, prefix only": []}
    for i, (net_m, net_ar) in enumerate(zip(masked_nets, ar_nets)):
        g = torch.Generator().manual_seed(seed + i)
        x, middle = infill_task(grammar, tokenizer, n, generator=g)
        mask_id = net_m.config.vocab_size
        fills = [infill_masked(net_m, x, middle, mask_id, int(middle.sum(1).max()), generator=g),
                 infill_masked(net_m, x, middle, mask_id, few_steps, generator=g),
                 infill_autoregressive(net_ar, x, middle, net_ar.config.vocab_size, generator=g)]
        for name, filled in zip(out, fills):
            if not torch.equal(filled[~middle], x[~middle]):
                raise RuntimeError(f"{name} changed a given word")  # the invariant, checked live
            out[name].append(validity(grammar, tokenizer.decode(filled)))
    return out
