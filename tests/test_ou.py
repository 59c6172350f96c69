"""Ornstein–Uhlenbeck process: exact moments vs simulation, forgetting, time reversal."""

import math

import pytest
import torch

from diffusion_lite import ou, physics


def test_closed_form_moments_limits():
    m, v = ou.ou_marginal(3.0, 0.0, 0.0)
    assert m.item() == 3.0 and v.item() == 0.0
    m, v = ou.ou_marginal(3.0, 0.25, 50.0, theta=2.0, D_coef=0.5)
    assert m.item() == pytest.approx(0.0, abs=1e-12) and v.item() == pytest.approx(0.25)
    # theta = 0 is free diffusion: variance grows as 2Dt (chapter 1)
    m, v = ou.ou_marginal(1.0, 0.5, 2.0, theta=0.0, D_coef=0.3)
    assert m.item() == 1.0 and v.item() == pytest.approx(0.5 + 2 * 0.3 * 2.0)
    # tiny theta approaches free diffusion continuously
    _, v_small = ou.ou_marginal(1.0, 0.5, 2.0, theta=1e-9, D_coef=0.3)
    assert v_small.item() == pytest.approx(0.5 + 1.2, rel=1e-6)


@pytest.mark.parametrize("method,tol", [("exact", 0.0), ("euler", 0.01)])
def test_simulated_moments_match_closed_form(method, tol):
    n, theta, D = 40_000, 1.5, 0.8
    g = torch.Generator().manual_seed(0)
    x0 = 2.0 + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)  # N(2, 0.25)
    path = ou.simulate_ou(x0, 1.0, 200, theta=theta, D_coef=D, method=method,
                               generator=g, return_path=True)
    for k in (20, 100, 200):
        t = k * 1.0 / 200
        m, v = ou.ou_marginal(2.0, 0.25, t, theta=theta, D_coef=D)
        se_m, se_v = (v / n).sqrt().item(), v.item() * (2 / n) ** 0.5
        assert abs(path[k].mean().item() - m.item()) < 5 * se_m + tol
        # Euler–Maruyama has O(h) bias in the variance; the exact scheme has none.
        assert abs(path[k].var().item() - v.item()) < 5 * se_v + tol * v.item()


def test_reverse_time_with_exact_gaussian_score_recovers_the_start():
    # start N(mu, s0^2): p_t is Gaussian with the closed-form moments, so the score is exact.
    mu, s0, T = 2.0, 0.3, 4.0

    def score(x, t):
        m, v = ou.ou_marginal(mu, s0**2, t)
        return -(x - m) / v

    g = torch.Generator().manual_seed(0)
    m_T, v_T = ou.ou_marginal(mu, s0**2, T)
    x_T = m_T + v_T.sqrt() * torch.randn(20_000, generator=g, dtype=torch.float64)
    x0 = ou.simulate_ou_reverse(score, x_T, T, 400, generator=g)
    assert x0.mean().item() == pytest.approx(mu, abs=0.02)
    assert x0.std().item() == pytest.approx(s0, abs=0.02)


def test_ou_errors_name_the_fix():
    x = torch.zeros(4)
    with pytest.raises(ValueError, match="theta·h < 1"):
        ou.simulate_ou(x, 10.0, 5, theta=1.0)
    with pytest.raises(ValueError, match=r"unknown method 'rk4'; choose one of \('euler', 'exact'\)"):
        ou.simulate_ou(x, 1.0, 5, method="rk4")
    with pytest.raises(ValueError, match="D_coef must be > 0"):
        ou.ou_marginal(0.0, 1.0, 1.0, D_coef=0.0)
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        ou.simulate_ou(x, 1.0, 0)
    with pytest.raises(ValueError, match="score_fn returned shape"):
        ou.simulate_ou_reverse(lambda x, t: x[:2], x, 1.0, 5)


def test_scale_std_reproduces_marginal_variance():
    scale, noise_std = ou.ou_scale_std(torch.tensor([0.1, 1.0, 3.0]), theta=0.7, D_coef=1.3)
    _, v = ou.ou_marginal(0.0, 1.0, torch.tensor([0.1, 1.0, 3.0]), theta=0.7, D_coef=1.3)
    torch.testing.assert_close(scale**2 + noise_std**2, v)
    assert scale[1].item() == pytest.approx(math.exp(-0.7))


def test_physics_still_exports_the_ou_functions():
    """Code written before the split (``physics.simulate_ou_reverse``) keeps working."""
    for name in ou.__all__:
        assert getattr(physics, name) is getattr(ou, name)


def test_scale_std_is_the_vp_forward_process():
    """With θ = D = 1: a_t² = ᾱ(t) = e^{−2θt}, b_t² = 1 − ᾱ, and b_t/a_t is chapter 3's σ."""
    from diffusion_lite import schedules

    t = torch.tensor([0.05, 0.5, 2.0], dtype=torch.float64)
    scale, noise_std = ou.ou_scale_std(t)
    alpha_bar = torch.exp(-2 * t)
    torch.testing.assert_close(scale**2, alpha_bar)
    torch.testing.assert_close(noise_std**2, 1 - alpha_bar)
    torch.testing.assert_close(noise_std / scale, schedules.sigma_from_alpha_bar(alpha_bar))


def test_reverse_times_and_errors():
    assert ou.reverse_times(2.0, 4) == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.0])
    assert ou.reverse_times(2.0, 2, "quadratic") == pytest.approx([2.0, 0.5, 0.0])
    with pytest.raises(ValueError, match=r"unknown spacing 'log'; choose one of \('uniform', 'quadratic'\)"):
        ou.reverse_times(1.0, 3, "log")


def test_probability_flow_maps_gaussians_exactly_in_the_limit():
    """Start N(mu, s0²): the ODE x_t = m_t + sqrt(v_t/v_T)(x_T − m_T) is linear; Euler converges."""
    mu, s0, T = 2.0, 0.3, 3.0

    def score(x, t):
        m, v = ou.ou_marginal(mu, s0**2, t)
        return -(x - m) / v

    m_T, v_T = ou.ou_marginal(mu, s0**2, T)
    x_T = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=torch.float64)
    exact = mu + s0 * (x_T - m_T) / v_T.sqrt()  # the flow map of a Gaussian: an affine map
    errs = [(ou.simulate_ou_flow(score, x_T, T, n, spacing="quadratic") - exact).abs().max().item()
            for n in (200, 400)]
    assert errs[1] < 1e-2 and 1.7 < errs[0] / errs[1] < 2.3  # first order in the step


def test_reverse_sde_matches_the_law_of_a_gaussian_start_in_two_dimensions():
    mu, s0, T = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.5, 3.0

    def score(x, t):
        m, v = ou.ou_marginal(mu, s0**2, t)
        return -(x - m) / v

    g = torch.Generator().manual_seed(1)
    m_T, v_T = ou.ou_marginal(mu, s0**2, T)
    x_T = m_T + v_T.sqrt() * torch.randn(20_000, 2, generator=g, dtype=torch.float64)
    x0 = ou.simulate_ou_reverse(score, x_T, T, 300, spacing="quadratic", generator=g)
    torch.testing.assert_close(x0.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(x0.std(0), torch.full((2,), s0, dtype=torch.float64), atol=0.02, rtol=0)
