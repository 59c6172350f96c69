"""Conditioning methods against closed forms: Gaussian priors make DPS/ΠGDM guidance exact formulas."""

import math

import pytest
import torch
from torch.nn import functional as F

from diffusion_lite import inverse, mixtures, posterior, samplers, schedules

F64 = torch.float64


def _gaussian(v=0.7, mu=(0.3, -0.2)):
    return mixtures.GaussianMixture([1.0], [list(mu)], [v])


def test_pigdm_is_exact_for_an_isotropic_gaussian_prior():
    """With prior N(μ, vI), p(x₀ | x_σ) = N(D, r_σ² I) with r_σ² = σ² v/(σ² + v): ΠGDM's guess is exact."""
    prior, v = _gaussian(), 0.7
    A, y, s = torch.tensor([[1.0, 2.0]], dtype=F64), torch.tensor([0.5], dtype=F64), 0.3
    post = posterior.linear_gaussian_posterior(prior, A, y, s)
    wrapped = inverse.PiGDMDenoiser(prior, A, y, s, data_var=v)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 2
    for sigma in (0.05, 0.5, 4.0):
        assert torch.allclose(wrapped(x, sigma), post.denoise(x, sigma), atol=1e-9)


def test_dps_guidance_is_jacobian_transpose_times_residual():
    prior, v = _gaussian(), 0.7
    A, y, s = torch.tensor([[1.0, -1.0], [0.5, 2.0]], dtype=F64), torch.tensor([0.2, 1.0]), 0.4
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    sigma = 0.8
    D = prior.denoise(x, sigma)
    J = v / (v + sigma**2)  # ∂D/∂x = v/(v + σ²) I for N(μ, vI)
    g = J * (y.to(F64) - D @ A.T) @ A / s**2
    got = inverse.DPSDenoiser(prior, A, y, s, scale=0.5)(x, sigma)
    assert torch.allclose(got, D + 0.5 * sigma**2 * g, atol=1e-10)


def test_classifier_guidance_with_exact_classifier_is_the_class_posterior():
    prior, classes = mixtures.ring(6), torch.tensor([0, 1, 2, 0, 1, 2])
    guided = inverse.ClassifierGuidedDenoiser(prior, posterior.class_log_prob(prior, classes),
                                              torch.full((7,), 2), scale=1.0)
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(2), dtype=F64) * 2
    want = posterior.class_posterior(prior, classes, 2)
    for sigma in (0.1, 1.0, 5.0):
        assert torch.allclose(guided(x, sigma), want.denoise(x, sigma), atol=1e-8)
    with pytest.raises(ValueError, match="labels must have shape"):
        guided(x[:3], 1.0)


def test_replacement_keeps_observations_and_is_exact_for_independent_coordinates():
    """Independent coordinates: the unknown one's posterior is its prior, so replacement is exact."""
    prior = mixtures.GaussianMixture([0.5, 0.5], [[0.0, -1.0], [0.0, 1.0]], [[1.0, 0.1]] * 2)
    g = torch.Generator().manual_seed(3)
    n, sig = 3000, schedules.karras_sigmas(30, 0.01, 10.0).to(F64)
    known = torch.zeros(n, 2, dtype=F64)
    known[:, 0] = 0.7
    x = inverse.sample_replacement(prior, sig[0] * torch.randn(n, 2, generator=g, dtype=F64),
                                   sig, torch.tensor([1.0, 0.0]), known, resample=2, generator=g)
    assert torch.equal(x[:, 0], known[:, 0])
    ref = prior.sample(n, generator=g, dtype=F64)[:, 1]
    assert abs(float(x[:, 1].mean() - ref.mean())) < 0.08
    assert abs(float(x[:, 1].std() - ref.std())) < 0.05
    with pytest.raises(ValueError, match="resample"):
        inverse.sample_replacement(prior, x, sig, torch.tensor([1.0, 0.0]), known, resample=0)


def test_sdedit_interpolates_between_guide_and_prior():
    prior = mixtures.ring(8)
    g = torch.Generator().manual_seed(4)
    guide = torch.tensor([[3.0, 3.0]], dtype=F64).expand(2000, 2).contiguous()
    near = inverse.sdedit(prior, guide, 0.01, n_steps=5, generator=g)
    assert (near - guide).norm(dim=1).max() < 0.1  # faithful: hardly moved
    far = inverse.sdedit(prior, guide, 50.0, n_steps=40, sampler="heun", generator=g)
    assert far.mean(0).norm() < 0.15  # realistic: a ring sample, the guide forgotten
    assert abs(float(far.norm(dim=1).mean()) - 2.0) < 0.05
    with pytest.raises(ValueError, match="sigma_start"):
        inverse.sdedit(prior, guide, 0.0)


def test_operators_match_torch():
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    A = inverse.downsample_operator(8, 8, 2)
    assert torch.allclose(x.flatten(1) @ A.T, F.avg_pool2d(x, 2).flatten(1), atol=1e-6)
    mask = torch.zeros(1, 8, 8)
    mask[:, :4] = 1
    M = inverse.mask_operator(mask)
    assert torch.equal(x.flatten(1) @ M.T, x[:, :, :4].flatten(1))
    with pytest.raises(ValueError, match="divide"):
        inverse.downsample_operator(8, 8, 3)


def test_wrappers_validate_their_inputs():
    prior = mixtures.ring(4)
    with pytest.raises(ValueError, match="noise_std > 0"):
        inverse.DPSDenoiser(prior, [[1.0, 0.0]], [1.0], 0.0)
    with pytest.raises(ValueError, match="y must have shape"):
        inverse.PiGDMDenoiser(prior, [[1.0, 0.0]], [1.0, 2.0, 3.0], 0.1)
    with pytest.raises(ValueError, match="scale"):
        inverse.DPSDenoiser(prior, [[1.0, 0.0]], [1.0], 0.1, scale=-1.0)
    # a wrapper plugs into every sampler of chapter 6
    x = 5 * torch.randn(4, 2, generator=torch.Generator().manual_seed(6), dtype=F64)
    sig = schedules.karras_sigmas(5, 0.01, 5.0).to(F64)
    for name in samplers.SAMPLERS:
        out = samplers.sample(name, inverse.PiGDMDenoiser(prior, [[1.0, 0.0]], [1.0], 0.1), x,
                              sig, generator=torch.Generator().manual_seed(0))
        assert out.shape == x.shape and torch.isfinite(out).all()
