"""Consistency models: the boundary condition, exact trajectories, NFE, and a closed-form case."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from gain_net import GainNet  # noqa: E402  (tests/gain_net.py)

from diffusion_lite import consistency, mixtures, schedules
from diffusion_lite.models import MLP

S = 1.0  # Gaussian data N(0, S² I)


def test_boundary_condition_holds_to_round_off_for_any_network():
    sigma_min, sigma_data = 0.002, 1.4
    c_skip, c_out = consistency.boundary_coefficients(torch.tensor([sigma_min], dtype=torch.float64),
                                                      sigma_min, sigma_data)
    assert float(c_skip) == 1.0 and float(c_out) == 0.0
    assert [float(c) for c in consistency.boundary_coefficients(sigma_min, sigma_min, sigma_data)] == [1.0, 0.0]
    for seed in range(3):
        f = consistency.ConsistencyFunction(MLP(generator=torch.Generator().manual_seed(seed)),
                                            sigma_data, sigma_min).double()
        x = 3 * torch.randn(50, 2, dtype=torch.float64)
        assert torch.allclose(f(x, sigma_min), x, rtol=0, atol=1e-15)
        assert (f(x, 1.0) - x).abs().max() > 1e-3  # away from σ_min the network matters
    # EDM's skip/out are the σ_min → 0 limit of the consistency coefficients
    s = torch.tensor([0.5, 2.0], dtype=torch.float64)
    c_skip, c_out = consistency.boundary_coefficients(s, 1e-12, sigma_data)
    assert torch.allclose(c_skip, sigma_data**2 / (s**2 + sigma_data**2))
    assert torch.allclose(c_out, s * sigma_data / (s**2 + sigma_data**2).sqrt())


def test_exact_trajectories_match_scipy_solve_ivp():
    mix = mixtures.ring()
    g = torch.Generator().manual_seed(1)
    x = 10 * torch.randn(5, 2, generator=g, dtype=torch.float64)
    levels, states = consistency.exact_trajectories(mix, x, 10.0, 0.01, n_steps=256)
    assert states.shape == (256, 5, 2) and float(levels[0]) == 10.0 and float(levels[-1]) == 0.01

    def rhs(sigma, y):  # dx/dσ = (x − D(x, σ))/σ for all 5 points at once
        xt = torch.from_numpy(y.reshape(5, 2))
        return ((xt - mix.denoise(xt, sigma)) / sigma).numpy().ravel()

    sol = solve_ivp(rhs, (10.0, 0.01), x.numpy().ravel(), method="DOP853", rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(states[-1].numpy().ravel(), sol.y[:, -1], atol=2e-4)


def test_consistency_distillation_of_gaussian_data_recovers_the_exact_map():
    # Exact ODE map from σ to σ_min: x_σmin = √((S² + σ_min²)/(S² + σ²)) · x_σ.
    def teacher(x, sigma):
        return (S**2 / (S**2 + torch.as_tensor(sigma) ** 2)).reshape(-1, 1) * x

    cfg = consistency.ConsistencyConfig(steps=400, batch_size=128, lr=1e-2, n_scales=18, mu=0.9,
                                        sigma_max=20.0, sigma_data=S, loss="l2", progress=False)
    torch.manual_seed(0)
    f, info = consistency.train_consistency(GainNet(), lambda n, generator=None:
                                            S * torch.randn(n, 2, generator=generator), cfg,
                                            teacher=teacher)
    x = torch.randn(4, 2)
    for sigma in (0.1, 1.0, 5.0, 20.0):
        want = math.sqrt((S**2 + cfg.sigma_min**2) / (S**2 + sigma**2))
        got = f(x, sigma) / x
        assert torch.allclose(got, torch.full_like(got, want), rtol=0.03), (sigma, got, want)


def test_sample_consistency_spends_exactly_its_nfe_and_one_step_is_f():
    calls = []
    f = consistency.ConsistencyFunction(MLP(generator=torch.Generator().manual_seed(0)), 1.0)

    def counted(x, sigma):
        calls.append(float(sigma[0]))
        return f(x, sigma)

    x = 20 * torch.randn(7, 2)
    for nfe in (1, 2, 4):
        calls.clear()
        ladder = schedules.karras_sigmas(nfe, 0.05, 20.0) if nfe > 1 else torch.tensor([20.0, 0.0])
        out = consistency.sample_consistency(counted, x, ladder, generator=torch.Generator().manual_seed(1))
        assert len(calls) == nfe and calls[0] == 20.0
    with torch.no_grad():
        assert torch.allclose(consistency.sample_consistency(f, x, torch.tensor([20.0, 0.0])), f(x, 20.0))
    with pytest.raises(ValueError, match="sigma_min"):
        consistency.sample_consistency(f, x, torch.tensor([20.0, 0.001, 0.0]))


def test_consistency_levels_and_config_validation():
    lv = consistency.consistency_levels(10, 0.002, 20.0, 7.0)
    assert lv.shape == (10,) and float(lv[0]) == 0.002 and float(lv[-1]) == 20.0
    assert bool((lv[1:] > lv[:-1]).all())
    with pytest.raises(ValueError, match="pseudo-huber"):
        consistency.ConsistencyConfig(loss="l1")
    with pytest.raises(ValueError, match="n_scales"):
        consistency.ConsistencyConfig(n_scales=5, n_scales_start=10)
    # consistency training's N doubles from n_scales_start to n_scales over the run
    cfg = consistency.ConsistencyConfig(steps=100, n_scales=40, n_scales_start=10)
    ns = [consistency._n_scales_at(k, cfg, distill=False) for k in range(100)]
    assert ns[0] == 10 and ns[-1] == 40 and sorted(set(ns)) == [10, 20, 40]
