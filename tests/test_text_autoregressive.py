"""The AR baseline: probabilities sum to one, causality, sampling frequencies, same size as masked."""

import itertools
import math

import torch

from diffusion_lite.nets.token_transformer import TokenTransformer, TokenTransformerConfig
from diffusion_lite.text import autoregressive

V, L = 3, 4


def net(causal=True, seed=0):
    torch.manual_seed(seed)
    return TokenTransformer(TokenTransformerConfig(V, L, width=16, depth=2, heads=2,
                                                   causal=causal)).double().eval()


def test_probabilities_of_all_sequences_sum_to_one():
    ar = net()
    every = torch.tensor(list(itertools.product(range(V), repeat=L)))  # (81, 4)
    with torch.no_grad():
        p = autoregressive.log_prob(ar, every, V).exp()
    assert math.isclose(p.sum().item(), 1.0, rel_tol=1e-10)
    # and the loss is −log p
    assert torch.allclose(autoregressive.loss(ar, every, V), -p.log())


def test_logits_at_l_do_not_see_the_future():
    ar = net()
    x = torch.randint(V + 1, (5, L))
    y = x.clone()
    y[:, 2:] = (y[:, 2:] + 1) % V
    with torch.no_grad():
        assert torch.allclose(ar(x)[:, :2], ar(y)[:, :2])
        assert not torch.allclose(net(causal=False)(x)[:, :2], net(causal=False)(y)[:, :2])


def test_sampling_matches_the_model_probabilities():
    ar = net(seed=3)
    every = torch.tensor(list(itertools.product(range(V), repeat=L)))
    with torch.no_grad():
        p = autoregressive.log_prob(ar, every, V).exp()
    g = torch.Generator().manual_seed(0)
    x = autoregressive.sample(ar, 20_000, L, V, generator=g)
    idx = (x * torch.tensor([V**3, V**2, V, 1])).sum(1)
    freq = torch.bincount(idx, minlength=V**L).double() / len(x)
    assert ((freq - p).abs() < 4.5 * (p * (1 - p) / len(x)).sqrt() + 1e-4).all()
    pre = torch.tensor([[2, 0]]).expand(50, 2)
    assert torch.equal(autoregressive.sample(ar, 50, L, V, prefix=pre, generator=g)[:, :2], pre)


def test_masked_and_ar_nets_have_the_same_size():
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(net(True)) == count(net(False))
