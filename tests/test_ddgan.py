"""Denoising-diffusion GAN: shared GAN losses, the posterior step, exact NFE, and a short run."""

import pytest
import torch

from diffusion_lite import ddgan, mixtures, samplers
from diffusion_lite.families import gan


def test_uses_the_shared_gan_losses():
    assert ddgan.discriminator_loss is gan.discriminator_loss
    assert ddgan.generator_loss is gan.generator_loss


def test_posterior_sample_has_the_ddpm_posterior_moments():
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0, x = torch.full((n, 1), 0.7, dtype=torch.float64), torch.full((n, 1), 2.5, dtype=torch.float64)
    sigma, sigma_prev = torch.full((n,), 2.0, dtype=torch.float64), torch.full((n,), 0.8, dtype=torch.float64)
    out = ddgan.posterior_sample(x0, x, sigma, sigma_prev, torch.randn(n, 1, generator=g, dtype=torch.float64))
    r = 0.8**2 / 2.0**2
    assert abs(float(out.mean()) - (0.7 + r * (2.5 - 0.7))) < 0.01
    assert abs(float(out.var()) - 0.8**2 * (2.0**2 - 0.8**2) / 2.0**2) < 0.01
    # one posterior step with a fixed x̂₀ is chapter 6's DDPM step
    den = lambda x, s: torch.full_like(x, 0.7)
    a = samplers.sample_ddpm(den, x[:5], torch.tensor([2.0, 0.8, 0.0]), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(a, torch.full_like(a, 0.7))


@pytest.mark.parametrize("T", [1, 2, 4])
def test_sampler_spends_exactly_T_generator_calls(T):
    cfg = ddgan.DDGANConfig(n_steps=T, sigma_data=1.4)
    G = ddgan.DDGANGenerator(2, cfg.latent_dim, 16, 1, 1.4, generator=torch.Generator().manual_seed(0))
    calls = []
    G.register_forward_hook(lambda *a: calls.append(1))
    ladder = cfg.ladder()
    assert len(ladder) == T + 1 and float(ladder[0]) == cfg.sigma_max and float(ladder[-1]) == 0
    out = ddgan.sample_ddgan(G, 20 * torch.randn(9, 2), ladder.float(), generator=torch.Generator().manual_seed(1))
    assert len(calls) == T and out.shape == (9, 2)
    # same seed, same samples; another seed, other z and other samples
    x = 20 * torch.randn(9, 2)
    s1 = ddgan.sample_ddgan(G, x, ladder.float(), generator=torch.Generator().manual_seed(1))
    s2 = ddgan.sample_ddgan(G, x, ladder.float(), generator=torch.Generator().manual_seed(1))
    s3 = ddgan.sample_ddgan(G, x, ladder.float(), generator=torch.Generator().manual_seed(2))
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)


def test_short_training_run_is_deterministic_and_finite():
    mix = mixtures.ring()
    cfg = ddgan.DDGANConfig(n_steps=2, steps=60, batch_size=64, hidden=32, sigma_data=1.4, progress=False)
    G1, h1 = ddgan.train_ddgan(mix.sample, cfg)
    G2, h2 = ddgan.train_ddgan(mix.sample, cfg)
    assert h1 == h2 and all(torch.isfinite(torch.tensor(h1["loss_d"])))
    assert all(torch.equal(a, b) for a, b in zip(G1.state_dict().values(), G2.state_dict().values()))


def test_config_validation_names_the_fix():
    with pytest.raises(ValueError, match="n_steps"):
        ddgan.DDGANConfig(n_steps=0)
    with pytest.raises(ValueError, match="sigma_min"):
        ddgan.DDGANConfig(sigma_min=30.0)
