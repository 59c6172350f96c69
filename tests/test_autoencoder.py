"""The VAE pieces: the ELBO on a linear-Gaussian model whose log-likelihood and posterior are known
in closed form, the Gaussian likelihood against torch.distributions, and the autoencoder's shapes."""

import math

import pytest
import torch
from scipy.stats import multivariate_normal

from diffusion_lite.data import load_digits
from diffusion_lite.families.vae import gaussian_kl
from diffusion_lite.nets.autoencoder import (Autoencoder, AutoencoderConfig, elbo,
                                             gaussian_log_likelihood, train_autoencoder)

# p(z) = N(0, I₂), p(x | z) = N(W z + b, s² I₃) with orthogonal columns of W, so the exact
# posterior N(μ*, Σ*) is diagonal: Σ* = (I + WᵀW/s²)⁻¹, μ* = Σ* Wᵀ (x − b)/s².
W = torch.tensor([[1.0, 0.0], [1.0, 0.5], [-1.0, 0.5]], dtype=torch.float64)
b = torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64)
s = 0.7
x = torch.tensor([[0.9, -0.4, 1.1]], dtype=torch.float64)


def _decode(z):
    return z @ W.T + b


def _posterior():
    prec = torch.eye(2, dtype=torch.float64) + W.T @ W / s**2
    cov = torch.linalg.inv(prec)
    assert torch.allclose(cov, torch.diag(cov.diagonal()))  # diagonal, as the test needs
    return (cov @ W.T @ (x[0] - b) / s**2)[None], cov.diagonal().log()[None]


def _log_px():
    return multivariate_normal(mean=b.numpy(), cov=(W @ W.T + s**2 * torch.eye(3)).numpy()).logpdf(
        x[0].numpy())


def _mc_elbo(mean, logvar, n=200_000):
    g = torch.Generator().manual_seed(0)
    values = elbo(x.expand(n, 3), mean.expand(n, 2), logvar.expand(n, 2), _decode, obs_std=s,
                  generator=g)  # (n,): one z per row
    return float(values.mean()), float(values.std() / math.sqrt(n))


def test_elbo_equals_log_likelihood_at_the_exact_posterior():
    mean, logvar = _posterior()
    value, se = _mc_elbo(mean, logvar)
    assert abs(value - _log_px()) < 4 * se + 1e-9


def test_elbo_gap_is_the_kl_to_the_posterior():
    mean_post, logvar_post = _posterior()
    mean, logvar = torch.tensor([[0.3, -0.8]], dtype=torch.float64), torch.tensor([[-1.0, 0.2]],
                                                                                  dtype=torch.float64)
    var, var_post = logvar.exp(), logvar_post.exp()
    kl = 0.5 * float((var / var_post + (mean - mean_post) ** 2 / var_post - 1
                      + logvar_post - logvar).sum())  # KL(q ‖ posterior), closed form
    value, se = _mc_elbo(mean, logvar)
    assert kl > 0.5 and abs(value - (_log_px() - kl)) < 4 * se
    beta_half = elbo(x, mean, logvar, _decode, obs_std=s, kl_weight=0.5, n_samples=4,
                     generator=torch.Generator().manual_seed(1))
    full = elbo(x, mean, logvar, _decode, obs_std=s, n_samples=4,
                generator=torch.Generator().manual_seed(1))
    assert torch.allclose(beta_half - full, 0.5 * gaussian_kl(mean, logvar))


def test_gaussian_log_likelihood_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    a, m = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    want = torch.distributions.Normal(m, 0.3).log_prob(a).flatten(1).sum(1)
    assert torch.allclose(gaussian_log_likelihood(a, m, 0.3), want, atol=1e-4)


def test_autoencoder_shapes_and_training_reduces_the_loss():
    cfg = AutoencoderConfig(channels=8, steps=60, batch_size=32, lr=3e-3, progress=False)
    net = Autoencoder(cfg)
    assert net.latent_shape() == (4, 2, 2)
    images = load_digits(split="train")[0][:64]
    mean, logvar = net.encode(images)
    assert mean.shape == logvar.shape == (64, 4, 2, 2) and net(images).shape == images.shape
    model, losses = train_autoencoder(images, cfg)
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    again, losses2 = train_autoencoder(images, cfg)
    assert losses == losses2  # deterministic given the seed


@pytest.mark.parametrize("kwargs", [{"obs_std": 0}, {"kl_weight": -1}, {"levels": 0}, {"lr": 0}])
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        AutoencoderConfig(**kwargs)
