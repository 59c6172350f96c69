"""Forward process: the closed form q(x_t | x_0) against the step-by-step chain; VP <-> VE."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from diffusion_lite import forward as F
from diffusion_lite import schedules as S


@pytest.mark.parametrize("name", S.SCHEDULES)
def test_closed_form_marginal_matches_step_by_step_chain(name):
    T, n = 100, 20_000
    betas = S.get_betas(name, T)
    ab = S.alpha_bar_from_betas(betas)
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((n, 1), 2.0, dtype=torch.float64)
    path = F.forward_chain(x0, betas, generator=g, return_all=True)  # (T + 1, n, 1)
    for t in (1, 10, 40, 100):
        xt = path[t, :, 0]
        closed = F.q_sample(x0, ab[t - 1], generator=g)[:, 0]
        # exact moments: mean sqrt(ᾱ)·2, variance 1 − ᾱ; and the two samples share one law (KS)
        m, v = 2 * ab[t - 1].sqrt().item(), 1 - ab[t - 1].item()
        se = (v / n) ** 0.5
        assert abs(xt.mean().item() - m) < 5 * se
        assert abs(xt.var().item() / v - 1) < 5 * (2 / n) ** 0.5
        assert stats.ks_2samp(xt.numpy(), closed.numpy()).pvalue > 1e-3


def test_q_sample_with_given_noise_is_the_formula_and_broadcasts_per_sample():
    x0 = torch.randn(3, 1, 4, 4)
    eps = torch.randn(3, 1, 4, 4)
    ab = torch.tensor([0.9, 0.5, 0.1])
    xt = F.q_sample(x0, ab, eps)
    for i in range(3):
        torch.testing.assert_close(xt[i], ab[i].sqrt() * x0[i] + (1 - ab[i]).sqrt() * eps[i])


def test_vp_sample_divided_by_sqrt_alpha_bar_is_the_ve_sample():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 2, generator=g, dtype=torch.float64)
    eps = torch.randn(64, 2, generator=g, dtype=torch.float64)
    ab = S.get_alpha_bar("cosine", 1000)[torch.arange(64) * 15]  # one level per sample
    x_sigma, sigma = F.vp_to_ve(F.q_sample(x0, ab, eps), ab)
    torch.testing.assert_close(sigma, S.sigma_from_alpha_bar(ab))
    torch.testing.assert_close(x_sigma, F.add_noise(x0, sigma, eps))
    x_t, ab_back = F.ve_to_vp(x_sigma, sigma)
    torch.testing.assert_close(ab_back, ab)
    torch.testing.assert_close(x_t, F.q_sample(x0, ab, eps))


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-6, 1.0), st.floats(-10, 10), st.floats(-10, 10))
def test_vp_ve_round_trip_property(ab, x0, eps):
    x0t = torch.tensor([[x0]], dtype=torch.float64)
    et = torch.tensor([[eps]], dtype=torch.float64)
    x_sigma, sigma = F.vp_to_ve(F.q_sample(x0t, ab, et), ab)
    assert x_sigma.item() == pytest.approx((x0t + sigma * et).item(), rel=1e-9, abs=1e-9)
    back, ab_back = F.ve_to_vp(x_sigma, sigma)
    assert ab_back.item() == pytest.approx(ab, rel=1e-9)
    assert back.item() == pytest.approx(F.q_sample(x0t, ab, et).item(), rel=1e-9, abs=1e-9)


def test_generator_makes_noise_reproducible_and_errors_are_clear():
    x0 = torch.zeros(5, 2)
    a = F.add_noise(x0, 1.0, generator=torch.Generator().manual_seed(3))
    b = F.add_noise(x0, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"alpha_bar must lie in \(0, 1\]"):
        F.q_sample(x0, 0.0)
    with pytest.raises(ValueError, match=r"shape \(batch,\) = \(5,\)"):
        F.q_sample(x0, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"eps must have shape \(5, 2\)"):
        F.q_sample(x0, 0.5, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="sigma must be finite and >= 0"):
        F.add_noise(x0, -1.0)
    with pytest.raises(ValueError, match=r"every entry in \(0, 1\)"):
        F.forward_chain(x0, torch.tensor([0.5, 1.0]))


def test_forward_chain_is_the_exact_ou_transition_not_euler_maruyama():
    """sqrt(1 - β) = e^{-θh} with e^{-2θh} = 1 - β: one step of the chain is the OU transition
    x ← e^{-θh} x + sqrt(1 - e^{-2θh}) ε drawn with the same noise, for β far from small; the
    Euler–Maruyama step (1 - θh) x + sqrt(2θh) ε with the same noise differs."""
    betas = torch.tensor([0.3, 0.6, 0.05], dtype=torch.float64)
    x0 = torch.linspace(-2, 2, 7, dtype=torch.float64)[:, None]
    got = F.forward_chain(x0, betas, generator=torch.Generator().manual_seed(5), return_all=True)
    gen = torch.Generator().manual_seed(5)
    x, em = x0, x0
    for t, beta in enumerate(betas.tolist(), start=1):
        theta_h = -0.5 * math.log(1 - beta)  # e^{-2θh} = 1 - β
        eps = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        x = math.exp(-theta_h) * x + math.sqrt(1 - math.exp(-2 * theta_h)) * eps
        em = (1 - theta_h) * em + math.sqrt(2 * theta_h) * eps
        torch.testing.assert_close(got[t], x, rtol=1e-12, atol=1e-12)
    assert (got[-1] - em).abs().max() > 0.05
