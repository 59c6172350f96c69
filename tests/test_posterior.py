"""The exact mixture posterior against closed forms, importance sampling and autograd."""

import math

import pytest
import torch

from diffusion_lite import mixtures, posterior, samplers, schedules

F64 = torch.float64


def _full_prior():
    cov = torch.tensor([[[0.5, 0.2], [0.2, 0.3]], [[0.2, -0.1], [-0.1, 0.4]]], dtype=F64)
    return posterior.FullGaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], cov)


def test_single_gaussian_matches_information_form():
    """K = 1: C = (Σ⁻¹ + AᵀA/s²)⁻¹, m = C (Σ⁻¹ μ + Aᵀ y / s²), with a non-square A."""
    g = torch.Generator().manual_seed(0)
    L = torch.randn(3, 3, generator=g, dtype=F64)
    Sig = L @ L.T + 0.5 * torch.eye(3, dtype=F64)
    mu = torch.randn(3, generator=g, dtype=F64)
    A = torch.randn(2, 3, generator=g, dtype=F64)
    y, s = torch.randn(2, generator=g, dtype=F64), 0.4
    post = posterior.linear_gaussian_posterior(
        posterior.FullGaussianMixture([1.0], mu[None], Sig[None]), A, y, s)
    P = torch.linalg.inv(Sig) + A.T @ A / s**2
    C = torch.linalg.inv(P)
    m = C @ (torch.linalg.solve(Sig, mu) + A.T @ y / s**2)
    assert torch.allclose(post.covariances[0], C, atol=1e-10)
    assert torch.allclose(post.means[0], m, atol=1e-10)


def test_mixture_posterior_matches_importance_sampling():
    prior = mixtures.lopsided()
    A = torch.tensor([[1.0, 1.0]], dtype=F64) / math.sqrt(2)
    y, s = torch.tensor([0.3], dtype=F64), 0.3
    post = posterior.linear_gaussian_posterior(prior, A, y, s)
    g = torch.Generator().manual_seed(1)
    x, k = prior.sample(200_000, generator=g, return_labels=True, dtype=F64)
    w = torch.softmax(-0.5 * ((x @ A.T)[:, 0] - y) ** 2 / s**2, 0)  # self-normalised IS weights
    ess = 1 / (w**2).sum()
    mean_is = (w[:, None] * x).sum(0)
    cov_is = (w[:, None, None] * torch.einsum("ni,nj->nij", x - mean_is, x - mean_is)).sum(0)
    weights_is = torch.zeros(3, dtype=F64).index_add_(0, k, w)
    exact = post.sample(400_000, generator=g, dtype=F64)
    tol = 5 / ess.sqrt()  # about 5 standard errors for O(1) quantities
    assert torch.allclose(mean_is, post.mean, atol=float(tol))
    assert torch.allclose(cov_is, torch.cov(exact.T), atol=float(3 * tol))
    assert torch.allclose(weights_is, post.weights, atol=float(tol))


def test_noised_posterior_is_bayes_rule_at_every_sigma():
    """log p_σ(x | y) = log p(y | x_σ) + log p_σ(x) − log p(y), with p(y | x_σ) built separately."""
    prior = mixtures.lopsided()
    A = torch.tensor([[1.0, -0.5], [0.2, 1.0]], dtype=F64)
    y, s = torch.tensor([0.4, 0.8], dtype=F64), 0.5
    post = posterior.linear_gaussian_posterior(prior, A, y, s)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    eye = torch.eye(2, dtype=F64)
    for sigma in (0.05, 0.7, 3.0):
        r = prior.responsibilities(x, sigma)  # (B, K)
        log_lik = []
        for k in range(3):
            v = torch.diag(prior.variances[k])
            gain = v @ torch.linalg.inv(v + sigma**2 * eye)
            m = prior.means[k] + (x - prior.means[k]) @ gain.T  # E[x0 | x_σ, k]
            V = v - gain @ v
            S = A @ V @ A.T + s**2 * eye
            log_lik.append(torch.distributions.MultivariateNormal(m @ A.T, S).log_prob(y))
        log_lik = torch.logsumexp(torch.stack(log_lik, 1) + r.log(), 1)  # log p(y | x_σ)
        log_y = torch.logsumexp(torch.stack([
            torch.distributions.MultivariateNormal(
                A @ prior.means[k], A @ torch.diag(prior.variances[k]) @ A.T + s**2 * eye
            ).log_prob(y) for k in range(3)]) + prior.weights.log(), 0)
        want = log_lik + prior.log_prob(x, sigma) - log_y
        assert torch.allclose(post.log_prob(x, sigma), want, atol=1e-9)
        assert torch.allclose(post.noised(sigma).log_prob(x), want, atol=1e-9)


def test_score_is_autograd_of_log_prob_and_tweedie_holds():
    post = _full_prior()
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    for sigma in (0.1, 1.3):
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(post.log_prob(xg, sigma).sum(), xg)
        assert torch.allclose(post.score(x, sigma), grad, atol=1e-9)
        assert torch.allclose(post.denoise(x, sigma), x + sigma**2 * post.score(x, sigma),
                              atol=1e-9)


def test_full_mixture_agrees_with_diagonal_oracle():
    prior = mixtures.ring(6)
    full = posterior.FullGaussianMixture.from_mixture(prior)
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    for sigma in (0.0, 0.4, 2.0):
        assert torch.allclose(full.log_prob(x, sigma), prior.log_prob(x, sigma), atol=1e-10)
        assert torch.allclose(full.denoise(x, sigma), prior.denoise(x, sigma), atol=1e-10)


def test_exact_posterior_sampler_reproduces_posterior_moments():
    prior = mixtures.lopsided()
    A, y, s = torch.tensor([[1.0, 0.0]], dtype=F64), torch.tensor([-0.8], dtype=F64), 0.2
    post = posterior.linear_gaussian_posterior(prior, A, y, s)
    g = torch.Generator().manual_seed(5)
    sig = schedules.karras_sigmas(40, 0.002, 20.0).to(F64)
    x = samplers.sample_heun(post, sig[0] * torch.randn(4000, 2, generator=g, dtype=F64), sig)
    ref = post.sample(200_000, generator=g, dtype=F64)
    assert torch.allclose(x.mean(0), ref.mean(0), atol=0.04)
    assert torch.allclose(torch.cov(x.T), torch.cov(ref.T), atol=0.04)


def test_noise_free_coordinate_observation_pins_it():
    prior = mixtures.ring(8)
    post = posterior.linear_gaussian_posterior(prior, [[0.0, 1.0]], [1.0], 0.0)
    x = post.sample(100, generator=torch.Generator().manual_seed(6), dtype=F64)
    assert torch.allclose(x[:, 1], torch.ones(100, dtype=F64), atol=1e-7)
    with pytest.raises(ValueError, match="sigma > 0"):
        post.log_prob(x, 0.0)
    assert torch.isfinite(post.score(x, 0.1)).all()


def test_class_posterior_and_exact_classifier():
    prior = mixtures.ring(4)
    classes = torch.tensor([0, 1, 0, 1])
    sub = posterior.class_posterior(prior, classes, 1)
    assert sub.n_components == 2 and torch.allclose(sub.means, prior.means[[1, 3]])
    log_p = posterior.class_log_prob(prior, classes)
    x = torch.randn(9, 2, generator=torch.Generator().manual_seed(7), dtype=F64)
    want = prior.responsibilities(x, 0.5) @ torch.nn.functional.one_hot(classes).to(F64)
    assert torch.allclose(log_p(x, 0.5).exp(), want, atol=1e-12)
    with pytest.raises(ValueError, match="no component has class"):
        posterior.class_posterior(prior, classes, 5)


def test_bad_inputs_name_the_fix():
    prior = mixtures.ring(4)
    with pytest.raises(ValueError, match="A must have shape"):
        posterior.linear_gaussian_posterior(prior, [[1.0, 0.0, 0.0]], [1.0], 0.1)
    with pytest.raises(ValueError, match="y must have shape"):
        posterior.linear_gaussian_posterior(prior, [[1.0, 0.0]], [[1.0], [2.0]], 0.1)
    with pytest.raises(ValueError, match="noise_std"):
        posterior.linear_gaussian_posterior(prior, [[1.0, 0.0]], [1.0], -1.0)
    with pytest.raises(ValueError, match="symmetric"):
        posterior.FullGaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]])


def test_distance_to_posterior_sees_bias_and_not_noise():
    prior = mixtures.ring(4)
    post = posterior.linear_gaussian_posterior(prior, [[1.0, 0.0]], [1.5], 0.3)
    methods = {"exact": lambda n, g: post.sample(n, generator=g, dtype=F64),
               "shifted": lambda n, g: post.sample(n, generator=g, dtype=F64) + 0.3}
    d = posterior.distance_to_posterior(post, methods, n=500, seeds=(0, 1, 2, 3))
    r_exact, lo, hi = posterior.ratio_to_floor(d["exact"], d["floor"])
    assert 0.6 < r_exact < 1.4 and lo <= r_exact <= hi
    assert posterior.ratio_to_floor(d["shifted"], d["floor"])[1] > 2
    with pytest.raises(ValueError, match="same S"):
        posterior.ratio_to_floor(d["exact"], d["floor"][:2])
