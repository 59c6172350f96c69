"""Bits/dim through the probability-flow ODE against closed-form log densities."""

import math

import pytest
import torch

from diffusion_lite.likelihood import (bits_per_dim, divergence_exact, divergence_hutchinson,
                                       log_likelihood)
from single_thread import one_thread  # noqa: F401  (autouse fixture)


def gaussian_denoiser(mu, s2):
    """Optimal denoiser of N(mu, diag(s2)): D = mu + s2/(s2 + σ²) (x − mu)."""
    def denoiser(x, sigma):
        sig2 = sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2
        return mu + s2 / (s2 + sig2) * (x - mu)
    return denoiser


def gaussian_log_prob(x, mu, s2):
    return (-0.5 * ((x - mu) ** 2 / s2 + torch.log(2 * math.pi * s2))).flatten(1).sum(1)


def test_gaussian_bits_per_dim_within_1e_3():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64)
    s2 = torch.tensor([0.3, 1.5], dtype=torch.float64)
    x = mu + s2.sqrt() * torch.randn(64, 2, generator=g, dtype=torch.float64)
    bpd = bits_per_dim(gaussian_denoiser(mu, s2), x)
    exact = -gaussian_log_prob(x, mu, s2) / (2 * math.log(2))
    assert (bpd - exact).abs().max() <= 1e-3


def test_exact_divergence_of_a_linear_denoiser():
    mu, s2 = torch.zeros(3, dtype=torch.float64), torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    x = torch.randn(5, 3, dtype=torch.float64)
    sigma = torch.full((5,), 1.0, dtype=torch.float64)
    _, div = divergence_exact(gaussian_denoiser(mu, s2), x, sigma)
    assert torch.allclose(div, (s2 / (s2 + 1)).sum().expand(5))


def test_hutchinson_is_unbiased():
    g = torch.Generator().manual_seed(1)
    mu, s2 = torch.zeros(1, 4, 4, dtype=torch.float64), torch.rand(1, 4, 4, generator=g,
                                                                   dtype=torch.float64) + 0.1
    x = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    sigma = torch.full((3,), 0.7, dtype=torch.float64)
    den = gaussian_denoiser(mu, s2)
    probes = torch.randn(2000, 3, 1, 4, 4, generator=g, dtype=torch.float64)
    _, est = divergence_hutchinson(den, x, sigma, probes)
    _, exact = divergence_exact(den, x, sigma)
    assert torch.allclose(est, exact, rtol=0.05)


def test_hutchinson_path_for_images_matches_closed_form():
    g = torch.Generator().manual_seed(2)
    mu = 0.1 * torch.randn(1, 5, 5, generator=g, dtype=torch.float64)
    s2 = 0.2 + torch.rand(1, 5, 5, generator=g, dtype=torch.float64)
    x = mu + s2.sqrt() * torch.randn(200, 1, 5, 5, generator=g, dtype=torch.float64)
    bpd = bits_per_dim(gaussian_denoiser(mu, s2), x, n_steps=60, generator=g)  # d = 25: Hutchinson
    exact = -gaussian_log_prob(x, mu, s2) / (25 * math.log(2))
    # one probe per sample is noisy per sample, but unbiased on average
    assert abs(float((bpd - exact).mean())) < 0.02


def test_errors():
    den = gaussian_denoiser(torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="sigma_min"):
        log_likelihood(den, torch.zeros(3, 2), sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="NaN"):
        log_likelihood(den, torch.full((3, 2), float("nan")))
    with pytest.raises(ValueError, match="batch"):
        log_likelihood(den, torch.zeros(2))


@pytest.mark.parametrize("name", ["ring", "lopsided"])
def test_mixture_bits_per_dim_matches_exact_log_prob(name):
    from diffusion_lite import mixtures

    gm = getattr(mixtures, name)()  # a mixture is itself a denoiser: gm(x, sigma)
    x = gm.sample(100, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bpd = bits_per_dim(gm, x)
    exact = -gm.log_prob(x) / (gm.dim * math.log(2))
    assert (bpd - exact).abs().max() <= 2e-3
    assert abs(float((bpd - exact).mean())) <= 1e-3


def test_dequantised_bits_per_dim_is_the_density_at_the_jittered_point_plus_the_bin_constant():
    from diffusion_lite.likelihood import dequantised_bits_per_dim

    mu = torch.tensor([0.2, -0.5], dtype=torch.float64)
    s2 = torch.tensor([0.4, 0.9], dtype=torch.float64)
    delta = 0.125
    g = torch.Generator().manual_seed(3)
    x0 = torch.round((mu + s2.sqrt() * torch.randn(40, 2, generator=g, dtype=torch.float64)) / delta) * delta
    bpd = dequantised_bits_per_dim(gaussian_denoiser(mu, s2), x0, bin_width=delta,
                                   generator=torch.Generator().manual_seed(4))
    u = torch.rand(x0.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64) - 0.5
    exact = -gaussian_log_prob(x0 + delta * u, mu, s2) / (2 * math.log(2)) + 3.0  # log2(1/Δ) = 3
    assert (bpd - exact).abs().max() <= 1e-3


def test_dequantised_bits_per_dim_averages_to_the_closed_form():
    # E_u[−log N(x0 + Δu)] = −log N(x0) + Σ_i Δ²/(24 s_i²) for u ~ U[−½, ½): check the mean over u.
    from diffusion_lite.likelihood import dequantised_bits_per_dim

    mu, s2 = torch.zeros(2, dtype=torch.float64), torch.tensor([0.01, 0.02], dtype=torch.float64)
    delta = 0.25
    x0 = torch.tensor([[0.0, 0.25]], dtype=torch.float64).expand(3000, 2)
    bpd = dequantised_bits_per_dim(gaussian_denoiser(mu, s2), x0, bin_width=delta, n_steps=40,
                                   generator=torch.Generator().manual_seed(5))
    want = (-gaussian_log_prob(x0[:1], mu, s2) + (delta**2 / (24 * s2)).sum()) / (2 * math.log(2)) + 2.0
    se = float(bpd.std()) / math.sqrt(len(bpd))
    assert abs(float(bpd.mean() - want)) < 4 * se + 2e-3
    assert float((delta**2 / (24 * s2)).sum()) / (2 * math.log(2)) > 20 * se  # the term is visible


def test_dequantised_bits_per_dim_rejects_a_bad_bin_width():
    from diffusion_lite.likelihood import dequantised_bits_per_dim

    with pytest.raises(ValueError, match="bin_width"):
        dequantised_bits_per_dim(gaussian_denoiser(torch.zeros(2), torch.ones(2)), torch.zeros(3, 2),
                                 bin_width=0.0)
