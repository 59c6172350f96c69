"""Energy-based model: score = −∇E, Tweedie's denoiser, annealed Langevin against a closed form."""

import math

import pytest
import torch

from diffusion_lite import ebm


def test_score_is_minus_the_energy_gradient_and_the_denoiser_is_tweedie():
    model = ebm.EnergyModel(sigma_data=1.4, generator=torch.Generator().manual_seed(0)).double()
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigma = torch.full((6,), 0.4, dtype=torch.float64)
    h = 1e-6
    fd = torch.stack([(model.energy(x + h * e, sigma) - model.energy(x - h * e, sigma)) / (2 * h)
                      for e in torch.eye(2, dtype=torch.float64)], dim=1)
    assert torch.allclose(model.score(x, 0.4), -fd, atol=1e-7)
    assert torch.allclose(model(x, 0.4), x + 0.16 * model.score(x, 0.4), atol=1e-12)


def test_large_sigma_energy_is_the_gaussian_one():
    """With h ≡ 0 the score is the Gaussian data's −x/(σ² + σ_d²), exact at large σ."""
    model = ebm.EnergyModel(sigma_data=2.0)
    for p in model.h.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(4, 2)
    assert torch.allclose(model.score(x, 3.0), -x / (9 + 4), atol=1e-6)


def test_annealed_langevin_reaches_the_discretised_stationary_law():
    """For N(0, v) the unadjusted Langevin chain with step τ is stationary at v/(1 − τ/2v)."""
    v, tau = 0.5, 0.05
    g = torch.Generator().manual_seed(2)
    x = torch.zeros(40_000, 1, dtype=torch.float64)
    out = ebm.annealed_langevin(lambda y, s: -y / v, x, torch.tensor([1.0]), n_steps=300,
                                step_size=tau, generator=g)
    want = v / (1 - tau / (2 * v))
    assert abs(float(out.var()) - want) < 0.02 * want
    assert abs(float(out.var()) - v) > 0.02 * v  # the step-size bias is visible, as it should be


def test_annealed_langevin_scales_the_step_with_sigma_squared():
    calls = []
    ebm.annealed_langevin(lambda y, s: calls.append(s) or torch.zeros_like(y),
                          torch.zeros(3, 2), torch.tensor([2.0, 1.0]), n_steps=2, step_size=1e-3)
    assert calls == [2.0, 2.0, 1.0, 1.0]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="decreasing"):
        ebm.annealed_langevin(lambda y, s: y, torch.zeros(2, 2), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="step_size"):
        ebm.annealed_langevin(lambda y, s: y, torch.zeros(2, 2), torch.tensor([1.0]), step_size=0)
    with pytest.raises(ValueError, match="steps"):
        ebm.EBMConfig(steps=2.5)
    with pytest.raises(ValueError, match="lr"):
        ebm.EBMConfig(lr=math.nan)
    with pytest.raises(ValueError, match="sigma_data"):
        ebm.EnergyModel(sigma_data=0)


def test_a_short_training_lowers_the_loss():
    first = ebm.train_ebm(ebm.EBMConfig(steps=1, batch_size=128))[1]["final_loss"]
    _, info = ebm.train_ebm(ebm.EBMConfig(steps=200, batch_size=128))
    assert info["final_loss"] < 0.9 * first
