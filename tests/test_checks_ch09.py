"""The chapter 9 checkers accept the reference and name the typical mistakes, including wrong
answers of the right shape, size and mean."""

import math

import pytest
import torch
import torch.nn.functional as F

from diffusion_lite.checks import ExerciseError, ch09
from diffusion_lite.families import flow, gan, vae

LOG_2PI = math.log(2 * math.pi)


# ----- coupling layer ---------------------------------------------------------------------------

def coupling(x, mask, log_scale, shift, *, det_sign=1, det_mask=True, use_scale=True,
             inverse_scale=False):
    s = -log_scale if inverse_scale else log_scale
    y = mask * x + (1 - mask) * ((x * s.exp() if use_scale else x) + shift)
    log_det = ((1 - mask) * log_scale if det_mask else log_scale).sum(1)
    return -0.5 * (y**2).sum(1) - 0.5 * x.shape[1] * LOG_2PI + det_sign * log_det


def coupling_via_package(x, mask, log_scale, shift):
    """The package's layer, with its network replaced by the given (s, t): must agree."""
    layer = flow.AffineCoupling(mask, hidden=4, depth=1).double()
    layer._log_scale_shift = lambda kept: ((1 - mask) * log_scale, (1 - mask) * shift)
    y, log_det = layer(x)
    return -0.5 * (y**2).sum(1) - 0.5 * x.shape[1] * LOG_2PI + log_det


def test_coupling_accepts_reference_and_the_package_layer(capsys):
    ch09.check_coupling_log_prob(coupling)
    ch09.check_coupling_log_prob(coupling_via_package)
    assert capsys.readouterr().out.count("correct") == 2


@pytest.mark.parametrize("wrong,message", [
    (lambda **a: coupling(**a, det_sign=-1), "subtracted the log-determinant"),
    (lambda **a: coupling(**a, det_mask=False), "summed γ over every coordinate"),
    (lambda **a: coupling(**a, use_scale=False), "forgot the scale"),
    (lambda **a: coupling(**a, det_sign=0), "left out the log-determinant"),
    (lambda **a: coupling(**a, inverse_scale=True), "e\\^\\{−γ\\}"),
    (lambda **a: coupling(**a) + 0.5 * a["x"].shape[1] * LOG_2PI, "offset"),
    (lambda **a: coupling(**a)[:1], "shape"),
])
def test_coupling_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch09.check_coupling_log_prob(wrong)


# ----- ELBO -------------------------------------------------------------------------------------

def elbo(x, x_mean, log_scale, mean, logvar):
    rec = (-0.5 * ((x - x_mean) / log_scale.exp()) ** 2 - log_scale - 0.5 * LOG_2PI).sum(1)
    return rec - vae.gaussian_kl(mean, logvar)


def elbo_reverse_kl(x, x_mean, log_scale, mean, logvar):
    rec = elbo(x, x_mean, log_scale, mean, logvar) + vae.gaussian_kl(mean, logvar)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    return rec - torch.distributions.kl_divergence(p, q).sum(1)


def elbo_kl_mean(x, x_mean, log_scale, mean, logvar):
    kl = 0.5 * (mean**2 + logvar.exp() - logvar - 1)
    return elbo(x, x_mean, log_scale, mean, logvar) + vae.gaussian_kl(mean, logvar) - kl.mean(1)


def elbo_plus_kl(x, x_mean, log_scale, mean, logvar):
    return elbo(x, x_mean, log_scale, mean, logvar) + 2 * vae.gaussian_kl(mean, logvar)


def elbo_mse(x, x_mean, log_scale, mean, logvar):
    return -0.5 * ((x - x_mean) / log_scale.exp()).pow(2).sum(1) - vae.gaussian_kl(mean, logvar)


def elbo_stub(x, x_mean, log_scale, mean, logvar):
    raise NotImplementedError


def test_elbo_accepts_reference(capsys):
    ch09.check_elbo(elbo)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,message", [(elbo_reverse_kl, "KL\\(p ‖ q\\)"),
                                           (elbo_kl_mean, "averaged the KL"),
                                           (elbo_plus_kl, "added the KL"),
                                           (elbo_mse, "dropped −log τ"),
                                           (elbo_stub, "not written yet")])
def test_elbo_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch09.check_elbo(wrong)


# ----- GAN losses -------------------------------------------------------------------------------

def gan_losses(real_logits, fake_logits):
    return torch.stack([gan.discriminator_loss(real_logits, fake_logits),
                        gan.generator_loss(fake_logits)])


def gan_saturating(real_logits, fake_logits):
    return torch.stack([gan.discriminator_loss(real_logits, fake_logits),
                        gan.generator_loss(fake_logits, "saturating")])


def gan_swapped(real_logits, fake_logits):
    return torch.stack([gan.discriminator_loss(fake_logits, real_logits),
                        gan.generator_loss(fake_logits)])


def gan_naive_logs(real_logits, fake_logits):
    """Right formulas through σ then log: −inf where σ rounds to 0 or 1."""
    pr, pf = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return torch.stack([-(pr.log().mean() + (1 - pf).log().mean()), -pf.log().mean()])


def gan_bce_on_probs(real_logits, fake_logits):
    ones, zeros = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
    pr, pf = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return torch.stack([F.binary_cross_entropy(pr, ones) + F.binary_cross_entropy(pf, zeros),
                        F.binary_cross_entropy(pf, torch.ones_like(pf))])


def test_gan_losses_accept_reference(capsys):
    ch09.check_gan_losses(gan_losses)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,message", [
    (gan_saturating, "saturating generator loss"),
    (lambda real_logits, fake_logits: torch.stack([
        gan.discriminator_loss(real_logits, fake_logits),
        -gan.discriminator_loss(real_logits, fake_logits)]), "−L_D"),
    (gan_swapped, "swapped the labels"),
    (lambda real_logits, fake_logits: torch.stack([
        F.softplus(fake_logits).mean(), gan.generator_loss(fake_logits)]), "real samples"),
    (gan_naive_logs, "NaN or infinite"),
    (gan_bce_on_probs, "differs"),
])
def test_gan_losses_reject_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch09.check_gan_losses(wrong)


def gan_losses_via_bce(real_logits, fake_logits):
    """Another correct answer: torch's stable BCE-with-logits."""
    bce = F.binary_cross_entropy_with_logits
    loss_d = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits,
                                                                  torch.zeros_like(fake_logits))
    return torch.stack([loss_d, bce(fake_logits, torch.ones_like(fake_logits))])


def elbo_via_distributions(x, x_mean, log_scale, mean, logvar):
    """Another correct answer: torch.distributions for both terms."""
    rec = torch.distributions.Normal(x_mean, log_scale.exp()).log_prob(x).sum(1)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    return rec - torch.distributions.kl_divergence(q, p).sum(1)


def test_other_correct_answers_pass(capsys):
    ch09.check_gan_losses(gan_losses_via_bce)
    ch09.check_elbo(elbo_via_distributions)
    assert capsys.readouterr().out.count("correct") == 2
