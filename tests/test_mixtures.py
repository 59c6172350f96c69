"""The Gaussian-mixture oracle against independent computations: autograd, brute-force Monte Carlo,
closed forms for a single Gaussian, and sampling."""

import math

import numpy as np
import pytest
import torch

from diffusion_lite import mixtures
from diffusion_lite.mixtures import EmpiricalDenoiser, GaussianMixture

F64 = torch.float64


def diag3() -> GaussianMixture:
    """A 3D mixture with unequal weights and diagonal variances."""
    return GaussianMixture([0.5, 0.3, 0.2],
                           [[0.0, 1.0, -1.0], [2.0, -1.0, 0.5], [-1.5, 0.0, 1.0]],
                           [[0.3, 0.1, 0.5], [0.2, 0.4, 0.1], [0.6, 0.2, 0.3]])


def test_shapes_properties_and_input_forms():
    m = mixtures.ring(8, radius=2.0, std=0.1)
    assert (m.dim, m.n_components) == (2, 8)
    torch.testing.assert_close(m.mean, torch.zeros(2, dtype=F64), atol=1e-12, rtol=0)
    # ring: Cov = (r^2 / 2 + std^2) I
    torch.testing.assert_close(m.covariance, (2.0 + 0.01) * torch.eye(2, dtype=F64))
    assert m.total_variance == pytest.approx(2 * 2.01)
    # lists, numpy arrays and tensors give the same mixture; isotropic (K,) == diagonal (K, d)
    a = GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [0.2, 0.3])
    b = GaussianMixture(np.array([0.5, 0.5]), torch.tensor([[0.0, 0.0], [1.0, 1.0]]),
                        np.array([[0.2, 0.2], [0.3, 0.3]]))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a.log_prob(x, 0.3), b.log_prob(x, 0.3))
    assert m.sample(7).shape == (7, 2) and m.log_prob(torch.zeros(7, 2)).shape == (7,)
    assert m.responsibilities(torch.zeros(7, 2), 0.5).shape == (7, 8)


def test_covariance_matches_samples():
    m = diag3()
    x = m.sample(200_000, generator=torch.Generator().manual_seed(1), dtype=F64)
    torch.testing.assert_close(x.mean(0), m.mean, atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), m.covariance, atol=0.02, rtol=0)


@pytest.mark.parametrize("sigma", [0.0, 0.05, 0.7, 3.0])
def test_score_is_autograd_of_log_prob(sigma):
    m = diag3()
    x = torch.randn(64, 3, dtype=F64, generator=torch.Generator().manual_seed(2)).requires_grad_()
    (grad,) = torch.autograd.grad(m.log_prob(x, sigma).sum(), x)
    torch.testing.assert_close(m.score(x.detach(), sigma), grad, atol=1e-9, rtol=1e-9)


def test_tweedie_and_per_sample_sigma():
    m = diag3()
    g = torch.Generator().manual_seed(3)
    x = 2 * torch.randn(50, 3, dtype=F64, generator=g)
    sigma = torch.rand(50, dtype=F64, generator=g) * 2 + 0.01  # (B,)
    d = m.denoise(x, sigma)
    torch.testing.assert_close(d, x + sigma[:, None] ** 2 * m.score(x, sigma), atol=1e-10, rtol=0)
    torch.testing.assert_close(m(x, sigma), d)  # a mixture is a denoiser
    # per-sample sigma equals calling row by row with scalars
    rows = torch.cat([m.denoise(x[i:i + 1], float(sigma[i])) for i in range(50)])
    torch.testing.assert_close(d, rows)
    r = m.responsibilities(x, sigma)
    torch.testing.assert_close(r.sum(1), torch.ones(50, dtype=F64))


def test_single_gaussian_closed_forms():
    """One component: D = mu + v / (v + s^2) (x - mu), log p = log N(x; mu, v + s^2)."""
    mu, v, s = torch.tensor([[1.0, -2.0]], dtype=F64), torch.tensor([0.5, 2.0], dtype=F64), 0.8
    m = GaussianMixture([1.0], mu, v[None])
    x = torch.randn(20, 2, dtype=F64, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(m.denoise(x, s), mu + v / (v + s**2) * (x - mu))
    ref = torch.distributions.Normal(mu[0], (v + s**2).sqrt()).log_prob(x).sum(1)
    torch.testing.assert_close(m.log_prob(x, s), ref)
    mse, se = m.bayes_error(s, n=100_000, generator=torch.Generator().manual_seed(5))
    exact = float((v * s**2 / (v + s**2)).mean())  # per-coordinate MMSE, averaged
    assert abs(mse - exact) < 4 * se + 1e-4


def test_posterior_mean_against_brute_force_monte_carlo():
    """E[x0 | x] by self-normalised importance sampling from the prior, likelihood N(x; x0, s^2)."""
    m, s = mixtures.ring(6, radius=1.5, std=0.3), 0.6
    g = torch.Generator().manual_seed(6)
    x = torch.tensor([[0.3, 1.0], [-1.0, -0.2], [2.0, 2.0], [0.0, 0.0]], dtype=F64)
    x0 = m.sample(400_000, generator=g, dtype=F64)  # (M, 2)
    logw = -((x[:, None, :] - x0[None]) ** 2).sum(-1) / (2 * s**2)  # (4, M)
    w = torch.softmax(logw, dim=1)
    brute = w @ x0
    torch.testing.assert_close(m.denoise(x, s), brute, atol=0.01, rtol=0)
    r_brute = torch.stack([(w * (m.responsibilities(x0, 0.0)[:, k])).sum(1) for k in range(6)], 1)
    torch.testing.assert_close(m.responsibilities(x, s), r_brute, atol=0.01, rtol=0)


def test_bayes_error_limits():
    m, g = mixtures.ring(8, radius=2.0, std=0.15), torch.Generator().manual_seed(7)
    errs = [m.bayes_error(s, n=20_000, generator=g)[0] for s in (1e-4, 0.1, 0.5, 1.0, 3.0)]
    assert errs[0] < 1e-7  # D(x, s) ~ x: error ~ s^2 per coordinate
    assert all(a < b for a, b in zip(errs, errs[1:])), errs
    mse, se = m.bayes_error(1e4, n=100_000, generator=g, reduction="sum")
    assert abs(mse - m.total_variance) < 4 * se
    # reduction="mean" is per coordinate
    a = m.bayes_error(0.5, n=1000, generator=torch.Generator().manual_seed(8))[0]
    b = m.bayes_error(0.5, n=1000, generator=torch.Generator().manual_seed(8), reduction="sum")[0]
    assert b == pytest.approx(2 * a)


@pytest.mark.parametrize("scale", [1.0, 0.6])
def test_noised_matches_sampling(scale):
    m, s = diag3(), 0.4
    g = torch.Generator().manual_seed(9)
    x0 = m.sample(200_000, generator=g, dtype=F64)
    x = scale * x0 + s * torch.randn(x0.shape, generator=g, dtype=F64)
    mn = m.noised(s, scale)
    torch.testing.assert_close(x.mean(0), mn.mean, atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), mn.covariance, atol=0.02, rtol=0)
    # a 1D marginal against the noised CDF (Kolmogorov-Smirnov distance)
    xs = x[:20_000, 0].sort().values
    cdf = (mn.weights * torch.special.ndtr((xs[:, None] - mn.means[:, 0])
                                           / mn.variances[:, 0].sqrt())).sum(1)
    ecdf = torch.arange(1, xs.numel() + 1, dtype=F64) / xs.numel()
    assert float((cdf - ecdf).abs().max()) < 0.015
    if scale == 1.0:  # the noised law at sigma 0 is the clean one at sigma
        torch.testing.assert_close(mn.log_prob(x[:100]), m.log_prob(x[:100], s))


def test_sigma_zero_and_sample_labels():
    m = diag3()
    x, k = m.sample(1000, generator=torch.Generator().manual_seed(10), return_labels=True)
    assert k.shape == (1000,) and set(k.tolist()) <= {0, 1, 2}
    assert torch.isfinite(m.log_prob(x, 0.0)).all()
    torch.testing.assert_close(m.denoise(x, 0.0), x)  # no noise: nothing to remove
    assert abs(float((k == 0).double().mean()) - 0.5) < 0.05


def test_stable_for_small_sigma_and_many_components():
    m = mixtures.grid(20, spacing=1.0, std=0.01)  # 400 narrow components
    x = torch.tensor([[50.0, -40.0], [0.25, 0.25], [0.5, 0.5]], dtype=F64)  # far, between, tie
    for s in (0.0, 1e-4, 1e-2):
        for out in (m.log_prob(x, s), m.score(x, s), m.denoise(x, s)):
            assert torch.isfinite(out).all()
    # far away, the score points back to the nearest corner component (9.5, -9.5)
    torch.testing.assert_close(m.score(x[:1], 1e-4),
                               -(x[:1] - torch.tensor([[9.5, -9.5]], dtype=F64)) / (1e-4 + 1e-8))
    # near the data, D(x, s) - x = -s^2 / (v + s^2) (x - mu) is tiny
    torch.testing.assert_close(m.denoise(x[1:], 1e-5), x[1:], atol=1e-5, rtol=0)


def test_float32_in_float32_out_and_image_shapes():
    m = diag3()
    x64 = torch.randn(10, 3, dtype=F64, generator=torch.Generator().manual_seed(11))
    x32 = x64.float()
    for f in (m.denoise, m.score):
        out = f(x32, 0.3)
        assert out.dtype == torch.float32 and out.shape == x32.shape
        torch.testing.assert_close(out.double(), f(x64, 0.3), atol=1e-4, rtol=1e-4)
    assert m.log_prob(x32, 0.3).dtype == torch.float32
    assert m.sample(3, dtype=F64).dtype == F64
    img = GaussianMixture([1.0], torch.zeros(1, 4), [1.0])  # 4 = 1 x 2 x 2 pixels
    assert img.denoise(torch.ones(5, 1, 2, 2), 1.0).shape == (5, 1, 2, 2)


@pytest.mark.parametrize("args, match", [
    (([0.5, 0.5], [[0.0], [1.0]], [1.0, -0.1]), "variances must be > 0"),
    (([0.5, 0.4], [[0.0], [1.0]], [1.0, 1.0]), "sum to 1"),
    (([1.2, -0.2], [[0.0], [1.0]], [1.0, 1.0]), ">= 0"),
    (([0.5, 0.5], [[0.0], [1.0], [2.0]], [1.0, 1.0]), r"means must have shape \(K, d\)"),
    (([0.5, 0.5], [0.0, 1.0], [1.0, 1.0]), "mixture_1d"),
    (([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [[1.0, 1.0, 1.0]] * 2), "variances must have shape"),
    (([0.5, 0.5], [[float("nan")], [1.0]], [1.0, 1.0]), "NaN"),
])
def test_bad_parameters_raise_clear_errors(args, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(*args)


def test_bad_inputs_raise_clear_errors():
    m = diag3()
    with pytest.raises(ValueError, match="shape"):
        m.denoise(torch.zeros(4, 2), 0.1)
    with pytest.raises(ValueError, match="NaN"):
        m.score(torch.full((4, 3), float("nan")), 0.1)
    with pytest.raises(ValueError, match=">= 0"):
        m.denoise(torch.zeros(4, 3), -0.1)
    with pytest.raises(ValueError, match="sigma must be a scalar or have shape"):
        m.denoise(torch.zeros(4, 3), torch.ones(3))
    with pytest.raises(ValueError, match="scale"):
        m.noised(0.1, scale=0.0)
    with pytest.raises(ValueError, match="reduction"):
        m.bayes_error(0.1, reduction="total")
    with pytest.raises(ValueError, match="stds"):
        mixtures.mixture_1d(stds=(0.5, 0.0))


def test_builders():
    m1 = mixtures.mixture_1d()
    assert m1.dim == 1 and m1.sample(5).shape == (5, 1)
    # the OU marginal score: noised(...).score(x, 0) == score of the law of e^-t x0 + sqrt(1-e^-2t) eps
    t = 0.5
    mt = m1.noised(math.sqrt(1 - math.exp(-2 * t)), scale=math.exp(-t))
    x = torch.linspace(-3, 3, 11, dtype=F64)[:, None].requires_grad_()
    (grad,) = torch.autograd.grad(mt.log_prob(x).sum(), x)
    torch.testing.assert_close(mt.score(x.detach(), 0.0), grad)
    g = mixtures.grid(3, spacing=2.0, std=0.1)
    assert g.n_components == 9 and float(g.means.abs().max()) == 2.0
    lop = mixtures.lopsided()
    assert lop.dim == 2 and lop.weights.tolist() == [0.6, 0.3, 0.1]


# ---- the empirical optimal denoiser ----------------------------------------------------------
def brute_empirical(y, x, s):
    """Loop over samples, naive softmax in float64."""
    out = []
    for xi in x:
        w = torch.exp(-((xi - y) ** 2).sum(1) / (2 * s**2))
        out.append((w[:, None] * y).sum(0) / w.sum())
    return torch.stack(out)


def test_empirical_denoiser_matches_brute_force_and_limits():
    g = torch.Generator().manual_seed(12)
    y = torch.randn(50, 2, dtype=F64, generator=g)
    x = torch.randn(30, 2, dtype=F64, generator=g)
    e = EmpiricalDenoiser(y)
    torch.testing.assert_close(e(x, 0.7), brute_empirical(y, x, 0.7))
    # sigma -> 0 snaps to the nearest training point; sigma = 0 is that limit
    dist, idx = e.nearest(x)
    torch.testing.assert_close(e(x, 1e-6), y[idx])
    torch.testing.assert_close(e(x, 0.0), y[idx])
    torch.testing.assert_close(dist, (x - y[idx]).norm(dim=1))
    # sigma -> inf: the training mean
    torch.testing.assert_close(e(x, 1e5), y.mean(0).expand(30, 2), atol=1e-6, rtol=0)
    # far from the data with small sigma: naive exp underflows, log-sum-exp does not
    far = torch.tensor([[100.0, 100.0]], dtype=F64)
    assert torch.isfinite(e(far, 0.01)).all()
    # equals a mixture with vanishing component variance
    gm = GaussianMixture(torch.full((50,), 0.02, dtype=F64), y, torch.full((50,), 1e-12))
    torch.testing.assert_close(e(x, 0.5), gm.denoise(x, 0.5))
    torch.testing.assert_close(e.score(x, 0.5), gm.score(x, 0.5))
    with pytest.raises(ValueError, match="sigma = 0"):
        e.score(x, 0.0)


def test_empirical_denoiser_shapes_and_errors():
    imgs = torch.randn(10, 1, 4, 4, generator=torch.Generator().manual_seed(13))
    e = EmpiricalDenoiser(imgs)
    out = e(imgs[:3] + 0.01, torch.tensor([0.1, 0.2, 0.3]))
    assert out.shape == (3, 1, 4, 4) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="shape"):
        e(torch.zeros(3, 8), 0.1)
    with pytest.raises(ValueError, match="train_points must have shape"):
        EmpiricalDenoiser(torch.zeros(5))
