"""A toy language whose sentences can be checked: a small probabilistic grammar with agreement.

Sentences look like "the big cats that chase a dog see some birds". Every sentence has one
derivation in the grammar

    S      → NP_subj  V_n  NP          (the main verb agrees with the subject's head noun, n)
    NP_subj→ NP  [ "that"  V_n  NP ]   (relative clause w.p. p_relative; its verb agrees too)
    NP     → Det_n  [Adj]  N_n         (number n: plural w.p. p_plural; adjective w.p. p_adjective)

with every word drawn uniformly inside its category. The distribution p(s) is therefore known
exactly: :meth:`Grammar.log_prob` scores any sentence and :meth:`Grammar.entropy_bits` is the true
entropy H(p) in bits per sentence, the floor under every model's cross-entropy. The relative
clause puts an *attractor* noun between the subject and its verb ("the cat that sees the dogs
*chases*"), the classic long-range agreement test {cite}`linzen2016`: exactly the dependency a
sampler that fills several positions at once can break.

Notation (code → symbol):

| code | symbol / meaning |
|---|---|
| ``Grammar`` | the language: its words and the probabilities p_plural, p_adjective, p_relative |
| ``log_prob(s)`` | log p(s) in nats (−inf outside the language) |
| ``entropy_bits()`` | H(p) = −Σ_s p(s) log₂ p(s), bits per sentence |
| ``diagnose(s)`` | "valid", "agreement" (parses, numbers disagree) or "syntax" |
| ``Tokenizer`` | words ↔ ids, padded with ``PAD`` (id 0) to L = ``max_length`` |
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

__all__ = ["PAD", "THAT", "Grammar", "Tokenizer", "Splits", "make_splits"]

PAD = "<pad>"   # fills positions after the sentence's end
THAT = "that"   # opens a relative clause


@dataclass(frozen=True)
class Grammar:
    nouns: tuple[tuple[str, str], ...] = (("cat", "cats"), ("dog", "dogs"), ("fox", "foxes"),
                                          ("bird", "birds"))   # (singular, plural) forms
    verbs: tuple[tuple[str, str], ...] = (("sees", "see"), ("chases", "chase"),
                                          ("likes", "like"))   # (singular, plural) forms
    adjectives: tuple[str, ...] = ("big", "small", "red")
    det_singular: tuple[str, ...] = ("a", "the")               # determiners of a singular noun
    det_plural: tuple[str, ...] = ("the", "some")              # determiners of a plural noun
    p_plural: float = 0.5       # P(a noun phrase is plural)
    p_adjective: float = 0.4    # P(a noun phrase has an adjective)
    p_relative: float = 0.3     # P(the subject carries a relative clause "that V NP")

    def __post_init__(self) -> None:
        for name in ("p_plural", "p_adjective", "p_relative"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if not self.nouns or not self.verbs or not self.det_singular or not self.det_plural:
            raise ValueError("nouns, verbs, det_singular and det_plural each need at least one word")
        if self.p_adjective > 0 and not self.adjectives:
            raise ValueError("p_adjective > 0 needs at least one adjective (or set p_adjective=0)")
        forms = [w for pair in self.nouns + self.verbs for w in pair] + list(self.adjectives)
        for pair in self.nouns + self.verbs:
            if len(pair) != 2:
                raise ValueError(f"nouns and verbs are (singular, plural) pairs, got {pair!r}")
        dets = set(self.det_singular) | set(self.det_plural)
        words = forms + sorted(dets)
        bad = [w for w in words if not isinstance(w, str) or not w or " " in w or w in (PAD, THAT)]
        if bad:
            raise ValueError(f"words must be non-empty strings without spaces, not {PAD!r} or "
                             f"{THAT!r}; got {bad}")
        if len(set(forms)) != len(forms) or dets & set(forms):
            raise ValueError("every noun/verb form and adjective must be distinct and no determiner "
                             "may also be a noun, verb or adjective (the parse must be unique)")

    # --- the vocabulary --------------------------------------------------------------------
    @property
    def vocabulary(self) -> tuple[str, ...]:
        """All words, PAD first (id 0): determiners, adjectives, "that", nouns, verbs."""
        dets = tuple(dict.fromkeys(self.det_singular + self.det_plural))
        return ((PAD,) + dets + self.adjectives + (THAT,)
                + tuple(w for pair in self.nouns for w in pair)
                + tuple(w for pair in self.verbs for w in pair))

    @property
    def max_length(self) -> int:
        """The longest sentence, in words: the padded length L of every sequence."""
        np_max = 2 + (1 if self.adjectives and self.p_adjective > 0 else 0)
        subject = np_max + (2 + np_max if self.p_relative > 0 else 0)
        return subject + 1 + np_max

    def tokenizer(self) -> "Tokenizer":
        return Tokenizer(self.vocabulary, self.max_length)

    def fingerprint(self) -> str:
        """A stable string naming this language (for the model cache)."""
        return json.dumps({"grammar": asdict(self), "version": 1}, sort_keys=True)

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> list[str]:
        """Draw ``n`` sentences s ~ p (words joined by single spaces)."""
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        u = torch.rand(n, 18, generator=generator, dtype=torch.float64).tolist()  # ≤ 18 draws each
        return [" ".join(self._sentence(iter(row))) for row in u]

    def _pick(self, words: Sequence[str], u: float) -> str:
        return words[min(int(u * len(words)), len(words) - 1)]

    def _noun_phrase(self, u) -> tuple[list[str], int]:
        plural = int(next(u) < self.p_plural)
        words = [self._pick(self.det_plural if plural else self.det_singular, next(u))]
        has_adj, adj_u = next(u) < self.p_adjective, next(u)
        if has_adj and self.adjectives:
            words.append(self._pick(self.adjectives, adj_u))
        words.append(self._pick(self.nouns, next(u))[plural])
        return words, plural

    def _sentence(self, u) -> list[str]:
        subject, n = self._noun_phrase(u)
        has_rel, verb_u = next(u) < self.p_relative, next(u)
        if has_rel:
            subject += [THAT, self._pick(self.verbs, verb_u)[n]] + self._noun_phrase(u)[0]
        return subject + [self._pick(self.verbs, next(u))[n]] + self._noun_phrase(u)[0]

    # --- parsing, validity and probability --------------------------------------------------
    def _parse(self, words: Sequence[str]) -> tuple[str, float]:
        """("valid" | "agreement" | "syntax", log p) for a list of words."""
        noun_number = {w: i for pair in self.nouns for i, w in enumerate(pair)}
        verb_number = {w: i for pair in self.verbs for i, w in enumerate(pair)}
        dets = set(self.det_singular) | set(self.det_plural)
        pos, agree, logp = 0, True, 0.0

        def noun_phrase() -> int | None:  # returns the number, or None on a syntax error
            nonlocal pos, agree, logp
            if pos >= len(words) or words[pos] not in dets:
                return None
            det = words[pos]
            pos += 1
            has_adj = pos < len(words) and words[pos] in self.adjectives
            pos += has_adj
            if pos >= len(words) or words[pos] not in noun_number:
                return None
            n = noun_number[words[pos]]
            pos += 1
            allowed = self.det_plural if n else self.det_singular
            agree &= det in allowed
            logp += (_log(self.p_plural if n else 1 - self.p_plural) - math.log(len(allowed))
                     - math.log(len(self.nouns)) + (_log(self.p_adjective / len(self.adjectives))
                                                   if has_adj else _log(1 - self.p_adjective)))
            return n

        def verb(n: int) -> bool:
            nonlocal pos, agree, logp
            if pos >= len(words) or words[pos] not in verb_number:
                return False
            agree &= verb_number[words[pos]] == n
            logp -= math.log(len(self.verbs))
            pos += 1
            return True

        n = noun_phrase()
        if n is None:
            return "syntax", -math.inf
        has_rel = pos < len(words) and words[pos] == THAT
        if has_rel:
            pos += 1
            if not verb(n) or noun_phrase() is None:
                return "syntax", -math.inf
        logp += _log(self.p_relative if has_rel else 1 - self.p_relative)
        if not verb(n) or noun_phrase() is None or pos != len(words):
            return "syntax", -math.inf
        if not agree or math.isinf(logp):  # a zero-probability choice is outside the language too
            return ("agreement" if not agree else "syntax"), -math.inf
        return "valid", logp

    def diagnose(self, sentence: str) -> str:
        """"valid", "agreement" (the words parse but a number disagrees) or "syntax"."""
        return self._parse(sentence.split())[0]

    def is_valid(self, sentence: str) -> bool:
        """True iff ``sentence`` is in the language (parses, every number agrees)."""
        return self.diagnose(sentence) == "valid"

    def log_prob(self, sentence: str) -> float:
        """log p(s) in nats: the sum of the log-probabilities of its derivation's choices."""
        return self._parse(sentence.split())[1]

    def entropy_bits(self) -> float:
        """The true entropy H(p) in bits per sentence, in closed form.

        Each sentence has one derivation, so H(p) is the entropy of the derivation's choices:
        H(NP) = h(p_pl) + E[log₂|Det_n|] + h(p_adj) + p_adj log₂|Adj| + log₂|N|, and
        H(S) = H(NP) + h(p_rel) + p_rel (log₂|V| + H(NP)) + log₂|V| + H(NP), with h the binary
        entropy.
        """
        h = lambda p: 0.0 if p in (0.0, 1.0) else -p * math.log2(p) - (1 - p) * math.log2(1 - p)
        pp, pa, pr = self.p_plural, self.p_adjective, self.p_relative
        h_np = (h(pp) + pp * math.log2(len(self.det_plural))
                + (1 - pp) * math.log2(len(self.det_singular)) + h(pa)
                + pa * math.log2(max(len(self.adjectives), 1)) + math.log2(len(self.nouns)))
        h_verb = math.log2(len(self.verbs))
        return h_np + h(pr) + pr * (h_verb + h_np) + h_verb + h_np

    def enumerate(self, limit: int = 200_000) -> dict[str, float]:
        """Every sentence with p(s) > 0 and its probability (small grammars; raises above ``limit``)."""
        phrases: dict[str, tuple[float, int]] = {}  # noun phrase -> (probability, number)
        adjectives = [(None, 1 - self.p_adjective)] + [
            (a, self.p_adjective / len(self.adjectives)) for a in self.adjectives]
        for n, p_n in ((0, 1 - self.p_plural), (1, self.p_plural)):
            dets = self.det_plural if n else self.det_singular
            for det in dets:
                for adj, p_a in adjectives:
                    for pair in self.nouns:
                        p = p_n * p_a / (len(dets) * len(self.nouns))
                        if p > 0:
                            phrases[" ".join(w for w in (det, adj, pair[n]) if w)] = (p, n)
        v = len(self.verbs)
        size = len(phrases) ** 2 * (1 + v * len(phrases)) * v
        if size > limit:
            raise ValueError(f"about {size} sentences exceed limit={limit}; raise the limit or use a "
                             "smaller grammar (fewer words)")
        out: dict[str, float] = {}
        for subj, (p_s, n) in phrases.items():
            subjects = [(subj, p_s * (1 - self.p_relative))] + [
                (f"{subj} {THAT} {pair[n]} {o}", p_s * self.p_relative * p_o / v)
                for pair in self.verbs for o, (p_o, _) in phrases.items()]
            for s, p in subjects:
                for pair in self.verbs:
                    for o, (p_o, _) in phrases.items():
                        if p * p_o > 0:
                            out[f"{s} {pair[n]} {o}"] = p * p_o / v
        return out


def _log(p: float) -> float:
    """log p, with log 0 = −inf (a choice the grammar never makes)."""
    return math.log(p) if p > 0 else -math.inf


class Tokenizer:
    """Words ↔ ids. ``encode`` pads every sentence with PAD (id 0) to ``length`` positions."""

    def __init__(self, vocabulary: Sequence[str], length: int) -> None:
        if len(set(vocabulary)) != len(vocabulary) or not vocabulary or vocabulary[0] != PAD:
            raise ValueError(f"vocabulary must hold distinct words with {PAD!r} first")
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.vocabulary, self.length = tuple(vocabulary), length
        self.ids = {w: i for i, w in enumerate(self.vocabulary)}
        self.pad_id = 0

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        """(B, L) int64 ids; raises on an unknown word or a sentence longer than L."""
        rows = []
        for s in sentences:
            words = s.split()
            if len(words) > self.length:
                raise ValueError(f"{s!r} has {len(words)} words, more than length={self.length}")
            unknown = [w for w in words if w not in self.ids]
            if unknown:
                raise ValueError(f"unknown words {unknown} in {s!r}; the vocabulary is {self.vocabulary}")
            rows.append([self.ids[w] for w in words] + [self.pad_id] * (self.length - len(words)))
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), self.length)

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Sentences from (B, L) ids: trailing PADs dropped; a PAD inside stays (and is invalid).

        Ids outside the vocabulary (e.g. a mask token left in place) decode to "[M]".
        """
        out = []
        for row in ids.tolist():
            words = [self.vocabulary[i] if 0 <= i < self.vocab_size else "[M]" for i in row]
            while words and words[-1] == PAD:
                words.pop()
            out.append(" ".join(words))
        return out


@dataclass(frozen=True)
class Splits:
    """A training corpus and an independent held-out sample, as ids and as sentences."""

    train: torch.Tensor                    # (N_train, L) ids
    heldout: torch.Tensor                  # (N_heldout, L) ids
    train_sentences: frozenset[str] = field(repr=False)  # for novelty: "not in the training set"
    tokenizer: Tokenizer = field(repr=False)


def make_splits(grammar: Grammar, n_train: int = 50_000, n_heldout: int = 5_000,
                seed: int = 0) -> Splits:
    """Sample a training corpus and a held-out set, independently, from p (one seeded generator).

    The held-out set is a fresh sample, so its average −log₂ p_θ estimates the cross-entropy
    H(p, p_θ) ≥ H(p); it shares some frequent sentences with the corpus, as real text does.
    """
    if n_train < 1 or n_heldout < 1:
        raise ValueError("n_train and n_heldout must be >= 1")
    g = torch.Generator().manual_seed(seed)
    train, heldout = grammar.sample(n_train, generator=g), grammar.sample(n_heldout, generator=g)
    tok = grammar.tokenizer()
    return Splits(tok.encode(train), tok.encode(heldout), frozenset(train), tok)
