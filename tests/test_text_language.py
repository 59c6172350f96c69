"""The toy grammar: validator on hand-written sentences, exact p(s) and entropy, tokenizer, splits."""

import math

import pytest
import torch

from diffusion_lite.text.language import PAD, Grammar, Tokenizer, make_splits

G = Grammar()
SMALL = Grammar(nouns=(("cat", "cats"), ("dog", "dogs")), verbs=(("sees", "see"),),
                adjectives=("big",), det_singular=("a", "the"), det_plural=("the",),
                p_plural=0.3, p_adjective=0.6, p_relative=0.4)


@pytest.mark.parametrize("sentence", [
    "the cat sees a dog",
    "some cats see the dogs",
    "a big fox chases some red birds",
    "the cat that sees the dogs chases a bird",       # attractor: "dogs" between cat and chases
    "the cats that like a dog see some small foxes",
    "some big dogs that chase the red cat like the small bird",  # the longest shape, 12 words
])
def test_valid_sentences(sentence):
    assert G.diagnose(sentence) == "valid" and G.is_valid(sentence)
    assert math.isfinite(G.log_prob(sentence))


@pytest.mark.parametrize("sentence,why", [
    ("the cat see a dog", "agreement"),                    # main verb number
    ("the cat that see the dogs chases a bird", "agreement"),  # relative-clause verb
    ("the cat that sees the dogs chase a bird", "agreement"),  # verb agrees with the attractor
    ("a cats sees the dog", "agreement"),                  # determiner number
    ("some cat sees the dog", "agreement"),
    ("the cat sees", "syntax"),                            # no object
    ("cat sees a dog", "syntax"),                          # no determiner
    ("the big red cat sees a dog", "syntax"),              # two adjectives
    ("the cat sees a dog that sees a bird", "syntax"),     # relative clause on the object
    ("the cat that sees a dog that sees a bird likes a fox", "syntax"),  # nested clause
    ("the cat sees a dog <pad> a", "syntax"),
    ("", "syntax"),
    ("the cat sees a dog dog", "syntax"),
])
def test_invalid_sentences(sentence, why):
    assert G.diagnose(sentence) == why and not G.is_valid(sentence)
    assert G.log_prob(sentence) == -math.inf


def test_log_prob_by_hand():
    # "the cat sees a dog": NP(sg, "the" of 2, no adj, "cat" of 4) · no clause · verb 1/3 · NP
    np_p = 0.5 * 0.5 * 0.6 * 0.25
    want = np_p * 0.7 * (1 / 3) * (0.5 * 0.5 * 0.6 * 0.25)
    assert math.isclose(G.log_prob("the cat sees a dog"), math.log(want), rel_tol=1e-12)


def test_enumeration_sums_to_one_and_matches_closed_form_entropy():
    probs = SMALL.enumerate()
    assert math.isclose(sum(probs.values()), 1.0, rel_tol=1e-12)
    for s, p in list(probs.items())[::37]:
        assert SMALL.is_valid(s) and math.isclose(math.exp(SMALL.log_prob(s)), p, rel_tol=1e-10)
    entropy = -sum(p * math.log2(p) for p in probs.values())
    assert math.isclose(entropy, SMALL.entropy_bits(), rel_tol=1e-12)
    assert all(len(s.split()) <= SMALL.max_length for s in probs)
    assert max(len(s.split()) for s in probs) == SMALL.max_length


def test_samples_follow_the_grammar_distribution():
    g = torch.Generator().manual_seed(0)
    probs = SMALL.enumerate()
    n = 40_000
    samples = SMALL.sample(n, generator=g)
    assert all(s in probs for s in samples[:2000])
    # Monte Carlo entropy (mean −log₂ p) agrees with the closed form within 4 standard errors.
    logp = torch.tensor([SMALL.log_prob(s) for s in samples], dtype=torch.float64) / math.log(2)
    assert abs(-logp.mean().item() - SMALL.entropy_bits()) < 4 * logp.std().item() / math.sqrt(n)
    top = max(probs, key=probs.get)
    freq = samples.count(top) / n
    assert abs(freq - probs[top]) < 4 * math.sqrt(probs[top] * (1 - probs[top]) / n)


def test_grammar_rejects_bad_configurations():
    with pytest.raises(ValueError, match="probability"):
        Grammar(p_relative=1.5)
    with pytest.raises(ValueError, match="distinct"):
        Grammar(adjectives=("cat",))
    with pytest.raises(ValueError, match="spaces"):
        Grammar(adjectives=("very big",))
    with pytest.raises(ValueError, match="adjective"):
        Grammar(adjectives=(), p_adjective=0.5)


def test_tokenizer_round_trip_and_errors():
    tok = G.tokenizer()
    s = ["the cat sees a dog", "some big dogs that chase the red cat like the small bird"]
    ids = tok.encode(s)
    assert ids.shape == (2, 12) and ids.dtype == torch.long and (ids[0, 5:] == tok.pad_id).all()
    assert tok.decode(ids) == s
    assert tok.decode(torch.tensor([[2, 8, 0, 16, tok.vocab_size]])) == [f"the cat {PAD} sees [M]"]
    with pytest.raises(ValueError, match="unknown words"):
        tok.encode(["the cow sees a dog"])
    with pytest.raises(ValueError, match="more than length"):
        Tokenizer(G.vocabulary, 3).encode(["the cat sees a dog"])


def test_splits_are_seeded_and_independent():
    a, b = make_splits(G, 500, 100, seed=1), make_splits(G, 500, 100, seed=1)
    assert torch.equal(a.train, b.train) and torch.equal(a.heldout, b.heldout)
    assert not torch.equal(a.train[:100], a.heldout)
    assert a.train_sentences == frozenset(a.tokenizer.decode(a.train))


def test_degenerate_probabilities_are_outside_the_language_not_errors():
    g = Grammar(p_relative=0.0, p_adjective=1.0, p_plural=0.0)
    assert g.max_length == 7
    assert g.is_valid("the big cat sees a red dog")
    assert g.diagnose("the cat sees a red dog") == "syntax"          # no adjective: p = 0
    assert g.diagnose("the big cats see a red dog") == "syntax"      # plural: p = 0
    assert g.log_prob("the big cat that sees a red dog sees a red dog") == -math.inf
    probs = g.enumerate()
    assert math.isclose(sum(probs.values()), 1.0) and all(g.is_valid(s) for s in probs)
    assert math.isclose(-sum(p * math.log2(p) for p in probs.values()), g.entropy_bits(), rel_tol=1e-12)
