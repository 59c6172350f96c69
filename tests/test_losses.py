"""Objectives against closed forms: Gaussian data has a known optimal denoiser and Bayes error."""

import math

import pytest
import torch

from diffusion_lite import losses

SD = 0.5  # data std of the Gaussian test data x0 ~ N(0, SD² I)


def gaussian_oracle(x, sigma):
    """E[x0 | x] for x0 ~ N(0, SD² I): shrink by SD²/(SD² + σ²)."""
    return x * (SD**2 / (SD**2 + sigma**2))[:, None]


def test_weightings_are_one_over_c_out_squared():
    s = torch.tensor([0.1, 1.0, 3.0])
    torch.testing.assert_close(losses.weighting("x0", s), torch.ones(3))
    torch.testing.assert_close(losses.weighting("eps", s), 1 / s**2)
    edm = (s**2 + SD**2) / (s * SD) ** 2
    torch.testing.assert_close(losses.weighting("edm", s, SD), edm)
    torch.testing.assert_close(losses.weighting("v", s, SD), edm)
    with pytest.raises(ValueError, match="choose one of"):
        losses.weighting("snr", s)


def test_sigma_distributions_have_the_stated_law():
    g = torch.Generator().manual_seed(0)
    s = losses.LogNormalSigma(-1.2, 1.2).sample(100_000, generator=g, dtype=torch.float64)
    assert abs(s.log().mean().item() + 1.2) < 0.02 and abs(s.log().std().item() - 1.2) < 0.02
    u = losses.LogUniformSigma(0.01, 10.0).sample(100_000, generator=g, dtype=torch.float64)
    assert u.min() >= 0.01 and u.max() <= 10.0
    assert abs(u.log().mean().item() - (math.log(0.01) + math.log(10)) / 2) < 0.03
    d = losses.DiscreteSigma((0.1, 1.0, 10.0)).sample(30_000, generator=g, dtype=torch.float64)
    assert set(d.tolist()) == {0.1, 1.0, 10.0}
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        losses.LogUniformSigma(1.0, 0.1).sample(3)


def test_oracle_loss_per_sigma_is_the_gaussian_bayes_error():
    g = torch.Generator().manual_seed(1)
    x0 = SD * torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    sigmas = [0.05, 0.5, 2.0]
    got = losses.loss_per_sigma(gaussian_oracle, x0, sigmas, generator=g)
    want = torch.tensor([s**2 * SD**2 / (s**2 + SD**2) for s in sigmas], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=0.01, atol=0)
    # Any other denoiser does worse: the identity (no denoising) has error σ².
    worse = losses.loss_per_sigma(lambda x, s: x, x0, sigmas, generator=torch.Generator().manual_seed(1))
    assert torch.all(worse > got)


def test_denoising_loss_is_weighted_loss_on_the_drawn_sigma_and_noise():
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(2))
    dist = losses.LogNormalSigma()
    got = losses.denoising_loss(gaussian_oracle, x0, dist, "edm", sigma_data=SD,
                                generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    sigma = dist.sample(64, generator=g)
    eps = torch.randn(64, 2, generator=g)
    x0_hat = gaussian_oracle(x0 + sigma[:, None] * eps, sigma)
    want = ((sigma**2 + SD**2) / (sigma * SD) ** 2 * ((x0_hat - x0) ** 2).mean(1)).mean()
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="eps must have"):
        losses.weighted_loss(gaussian_oracle, x0, sigma, eps[:3], "x0")


def test_compare_to_oracle_ratio_is_one_for_the_oracle_and_above_for_others():
    g = torch.Generator().manual_seed(4)
    x0 = SD * torch.randn(20_000, 2, generator=g)
    dist = losses.LogNormalSigma()
    rows = losses.compare_to_oracle(gaussian_oracle, gaussian_oracle, x0, dist, "edm",
                                    edges=(0.1, 1.0), sigma_data=SD, generator=g)
    assert [r["band"] for r in rows] == [(0.0, 0.1), (0.1, 1.0), (1.0, math.inf), "all"]
    assert sum(r["n"] for r in rows[:-1]) == rows[-1]["n"] == 20_000
    assert all(r["ratio"] == 1.0 for r in rows)
    shrink_less = lambda x, s: x * (SD**2 / (SD**2 + 0.8 * s**2))[:, None]  # noqa: E731
    rows = losses.compare_to_oracle(shrink_less, gaussian_oracle, x0, dist, "edm",
                                    sigma_data=SD, generator=torch.Generator().manual_seed(4))
    assert rows[-1]["ratio"] > 1.005
