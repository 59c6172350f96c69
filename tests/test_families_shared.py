"""The shared GAN losses and VAE pieces against torch's own BCE and distributions."""

import pytest
import torch
import torch.nn.functional as F

from diffusion_lite.families import gan, vae
from diffusion_lite import pretrained


def test_discriminator_loss_is_bce_on_real_ones_and_fake_zeros():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(64, generator=g) * 3, torch.randn(64, generator=g) * 3
    want = (F.binary_cross_entropy_with_logits(real, torch.ones(64))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros(64)))
    assert torch.allclose(gan.discriminator_loss(real, fake), want, atol=1e-6)


def test_generator_losses():
    fake = torch.linspace(-8, 8, 33)
    p = torch.sigmoid(fake)
    assert torch.allclose(gan.generator_loss(fake), -(p.log()).mean(), atol=1e-5)
    assert torch.allclose(gan.generator_loss(fake, "saturating"), (1 - p).log().mean(), atol=1e-4)
    with pytest.raises(ValueError, match="non-saturating"):
        gan.generator_loss(fake, "minimax")


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mean, logvar = torch.randn(5, 3, 2, generator=g), torch.randn(5, 3, 2, generator=g)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    want = torch.distributions.kl_divergence(q, p).flatten(1).sum(1)
    assert torch.allclose(vae.gaussian_kl(mean, logvar), want, atol=1e-5)


def test_reparameterise_has_the_right_moments():
    g = torch.Generator().manual_seed(2)
    mean, logvar = torch.full((200_000,), 1.5), torch.full((200_000,), 2 * torch.tensor(0.3).log())
    z = vae.reparameterise(mean, logvar, generator=g)
    assert abs(z.mean() - 1.5) < 0.005 and abs(z.std() - 0.3) < 0.005


def test_register_adds_and_rejects_a_clash():
    entry = pretrained.REGISTRY["digits_classifier"]
    pretrained.register("digits_classifier", entry)  # same model again: fine
    with pytest.raises(ValueError, match="already registered"):
        pretrained.register("digits_classifier", pretrained.REGISTRY["digits_unet"])
    with pytest.raises(TypeError):
        pretrained.register("x", object())
