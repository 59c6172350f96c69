"""Masked diffusion: the Monte Carlo loss against the enumerated bound, the sampler's invariants."""

import math

import numpy as np
import pytest
import torch

from diffusion_lite.nets.token_transformer import TokenTransformer, TokenTransformerConfig
from diffusion_lite.text import masked

V, L = 3, 4
MASK = V


def tiny_net(seed=0, causal=False, length=L):
    torch.manual_seed(seed)
    return TokenTransformer(TokenTransformerConfig(V, length, width=16, depth=1, heads=2,
                                                   causal=causal)).double().eval()


def test_schedules_and_weights_match_their_derivatives():
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64, requires_grad=True)
    for schedule in masked.SCHEDULES:
        a = masked.alpha(t, schedule)
        (da,) = torch.autograd.grad(a.sum(), t)
        w = masked.loss_weight(t.detach(), schedule)
        assert torch.allclose(w, -da / (1 - a.detach()), rtol=1e-10)
        assert masked.alpha(0.0, schedule) == 1 and abs(float(masked.alpha(1.0, schedule))) < 1e-12
    with pytest.raises(ValueError, match="choose one of"):
        masked.alpha(0.5, "quadratic")


def test_mask_tokens_masks_at_rate_one_minus_alpha_and_keeps_the_rest():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(V, (4000, 6), generator=g)
    for schedule, t_val in (("linear", 0.3), ("cosine", 0.7)):
        t = torch.full((4000,), t_val, dtype=torch.float64)
        z, m = masked.mask_tokens(x0, t, MASK, schedule=schedule, generator=g)
        rate = 1 - float(masked.alpha(t_val, schedule))
        se = math.sqrt(rate * (1 - rate) / m.numel())
        assert abs(m.double().mean().item() - rate) < 4 * se
        assert torch.equal(z[~m], x0[~m]) and (z[m] == MASK).all()


def test_exact_bound_is_the_time_integral_for_every_schedule():
    """Enumerate masks exactly at each t; integrate w(t)·E[masked CE] by quadrature: = exact_bound."""
    net = tiny_net()
    x0 = torch.tensor([[0, 2, 1, 1], [2, 2, 0, 1]])
    exact = masked.exact_bound(net, x0, MASK)
    sets = torch.tensor([[(s >> j) & 1 for j in range(L)] for s in range(1, 2**L)], dtype=torch.bool)
    with torch.no_grad():
        f = []
        for row in x0:
            xs = row.expand(len(sets), L)
            z = torch.where(sets, torch.full_like(xs, MASK), xs)
            f.append(masked.masked_cross_entropy(net(z), xs, sets, torch.ones(len(sets))))
    f = torch.stack(f)  # (B, 2^L − 1): Σ_{l∈S} −log p(x_l | x_−S)
    k = sets.sum(1).double()
    nodes, weights = np.polynomial.legendre.leggauss(200)
    for schedule in masked.SCHEDULES:
        t = torch.tensor((nodes + 1) / 2)
        m = 1 - masked.alpha(t, schedule)  # (T,)
        p_set = m[:, None] ** k * (1 - m[:, None]) ** (L - k)  # (T, S)
        integrand = masked.loss_weight(t, schedule)[:, None] * (p_set @ f.T)  # (T, B)
        integral = (torch.tensor(weights / 2)[:, None] * integrand).sum(0)
        assert torch.allclose(integral, exact, rtol=1e-6), schedule


@pytest.mark.parametrize("estimator", masked.ESTIMATORS)
def test_monte_carlo_loss_is_unbiased_for_the_exact_bound(estimator):
    net = tiny_net(1)
    x0 = torch.tensor([[0, 2, 1, 1]])
    exact = masked.exact_bound(net, x0, MASK).item()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        draws = masked.diffusion_loss(net, x0.expand(20_000, L), MASK, estimator=estimator,
                                      stratified=False, generator=g)
    se = draws.std().item() / math.sqrt(len(draws))
    assert abs(draws.mean().item() - exact) < 4 * se
    # A wrong weight (1 instead of w(t)) is far outside that interval: the test has power.
    assert se < 0.1 * exact


def test_bound_is_above_the_exact_negative_log_likelihood():
    """For a model that is exactly AR-consistent the bound can't go below −log p; check with a
    product model p(x) = Π p(x_l) (the net ignores context): then the bound equals −log p."""
    logits = torch.randn(L, V, dtype=torch.float64)
    net = lambda z: logits.expand(z.shape[0], L, V)  # context-free
    x0 = torch.tensor([[0, 2, 1, 1]])
    nll = -logits.log_softmax(-1)[torch.arange(L), x0[0]].sum()
    assert torch.allclose(masked.exact_bound(net, x0, MASK), nll.reshape(1))


def test_reveal_counts_follow_the_schedule_and_add_up():
    n = torch.tensor([12, 7, 1, 0])
    for schedule in masked.SCHEDULES:
        for steps in (1, 3, 12, 20):
            c = masked.reveal_counts(n, steps, schedule)
            assert c.shape == (4, steps) and (c >= 0).all() and torch.equal(c.sum(1), n)
    c = masked.reveal_counts(torch.tensor([12]), 4, "linear")
    assert c.tolist() == [[3, 3, 3, 3]]
    c = masked.reveal_counts(torch.tensor([12]), 2, "cosine")  # 1 − cos(π/4) = 0.293 left
    assert c.tolist() == [[8, 4]]


@pytest.mark.parametrize("order", masked.ORDERS)
def test_sampler_keeps_given_tokens_and_reveals_exactly_the_scheduled_count(order):
    net = tiny_net(2, length=8)
    g = torch.Generator().manual_seed(4)
    x = torch.randint(V, (64, 8), generator=g)
    given = torch.rand(64, 8, generator=g) < 0.4
    z0 = torch.where(given, x, torch.full_like(x, MASK))
    steps = 3
    expected = masked.reveal_counts((~given).sum(1), steps)
    states = []
    out = masked.sample(net, z0, steps, MASK, order=order, generator=g,
                        callback=lambda i, z: states.append(z.clone()))
    assert torch.equal(out[given], x[given])  # never changes a given token
    assert (out != MASK).all() and (out < V).all()
    prev = z0
    for i, z in enumerate(states):
        was_masked = prev == MASK
        assert torch.equal(z[~was_masked], prev[~was_masked])  # revealed tokens stay put
        assert torch.equal((was_masked & (z != MASK)).sum(1), expected[:, i])
        prev = z


def test_one_step_per_token_random_order_is_exact_for_a_known_conditional_model():
    """With a net that returns the exact conditionals of a known joint, the 1-token-per-step
    sampler reproduces the joint (any-order autoregression)."""
    torch.manual_seed(0)
    joint = torch.rand(V, V, dtype=torch.float64) ** 3
    joint /= joint.sum()  # p(x1, x2)

    def net(z):  # exact conditionals given whatever is visible
        out = torch.empty(z.shape[0], 2, V, dtype=torch.float64)
        for b, (a, c) in enumerate(z.tolist()):
            p1 = joint[:, c] if c != MASK else joint.sum(1)
            p2 = joint[a, :] if a != MASK else joint.sum(0)
            out[b, 0], out[b, 1] = p1.log(), p2.log()
        return out

    g = torch.Generator().manual_seed(1)
    x = masked.sample(net, torch.full((20_000, 2), MASK), 2, MASK, generator=g)
    freq = torch.zeros(V, V, dtype=torch.float64)
    freq.index_put_((x[:, 0], x[:, 1]), torch.ones(len(x), dtype=torch.float64), accumulate=True)
    freq /= len(x)
    se = (joint * (1 - joint) / len(x)).sqrt()
    assert ((freq - joint).abs() < 4.5 * se + 1e-4).all()
    # in one step both tokens are drawn independently: the product of marginals instead
    x1 = masked.sample(net, torch.full((20_000, 2), MASK), 1, MASK, generator=g)
    same = (x1[:, 0] == x1[:, 1]).double().mean()
    want_indep = (joint.sum(1) * joint.sum(0)).sum()
    assert abs(same - want_indep) < 0.02


def test_categorical_is_float64_gumbel_max_with_the_right_frequencies():
    probs = torch.tensor([0.6, 0.3, 0.09, 0.01], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    draws = masked.categorical(probs.log().expand(100_000, 4), g)
    freq = torch.bincount(draws, minlength=4).double() / len(draws)
    se = (probs * (1 - probs) / len(draws)).sqrt()
    assert ((freq - probs).abs() < 4 * se).all()


def test_bad_arguments_name_the_fix():
    net = tiny_net()
    with pytest.raises(ValueError, match="choose one of"):
        masked.sample(net, torch.full((2, L), MASK), 2, MASK, order="left")
    with pytest.raises(ValueError, match="int64"):
        masked.sample(net, torch.full((2, L), float(MASK)), 2, MASK)
    with pytest.raises(ValueError, match="positive int"):
        masked.reveal_counts(torch.tensor([3]), 0)
    with pytest.raises(ValueError, match="choose one of"):
        masked.diffusion_loss(net, torch.zeros(2, L, dtype=torch.long), MASK, estimator="k")


def test_per_sequence_stratified_bound_is_unbiased():
    from diffusion_lite.text import measures

    net = tiny_net(1)
    x0 = torch.tensor([[0, 2, 1, 1]])
    exact = masked.exact_bound(net, x0, MASK).item() / (L * math.log(2))
    g = torch.Generator().manual_seed(8)
    for draws in (L, 3):
        est = measures.bound_bits(net, x0.expand(3000, L), MASK, draws=draws, generator=g)
        assert abs(est.mean().item() - exact) < 4 * est.std().item() / math.sqrt(len(est))


def test_mask_tokens_takes_a_scalar_time_and_rejects_a_wrong_shape():
    x0 = torch.zeros(3, L, dtype=torch.long)
    z, m = masked.mask_tokens(x0, 1.0, MASK)
    assert m.all() and (z == MASK).all()
    z, m = masked.mask_tokens(x0, 0.0, MASK)
    assert not m.any() and torch.equal(z, x0)
    with pytest.raises(ValueError, match="shape"):
        masked.mask_tokens(x0, torch.rand(2), MASK)
