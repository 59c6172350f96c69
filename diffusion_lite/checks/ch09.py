"""Checkers for chapter 9 (other generative families): a coupling layer's log-density, the ELBO,
and the GAN's two losses.

Each checker runs the learner's function on inputs where the typical mistakes give *different*
numbers of the same shape and size (log-scales that are non-zero on the kept coordinates too,
latent dimensions > 1, logits of both signs), and names the mistake it recognises: a
log-determinant with the wrong sign or over the wrong coordinates, a forgotten scale, a KL in the
wrong direction or averaged instead of summed, a saturating or label-swapped GAN loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .core import check_with_mistakes

__all__ = ["check_coupling_log_prob", "check_elbo", "check_gan_losses"]

_LOG_2PI = math.log(2 * math.pi)


# ----- 1. log p(x) through one affine coupling layer ---------------------------------------------

def _coupling(x, mask, log_scale, shift, *, scale_sign=1.0, det_sign=1.0, det_mask=True,
              use_scale=True, det=True):
    free = 1 - mask
    s = scale_sign * log_scale
    y = mask * x + free * ((x * s.exp() if use_scale else x) + shift)
    log_det = ((free if det_mask else torch.ones_like(free)) * log_scale).sum(1)
    base = -0.5 * (y**2).sum(1) - 0.5 * x.shape[1] * _LOG_2PI
    return base + (det_sign * log_det if det else 0.0)


def _reference_coupling(x, mask, log_scale, shift):
    return _coupling(x, mask, log_scale, shift)


def _coupling_mistakes(x, mask, log_scale, shift):
    return {
        "subtracted the log-determinant: data → noise, log p(x) = log N(y) + Σ (1 − κ_i) γ_i "
        "(the map stretches space by e^{γ}; −Σ γ belongs to the inverse direction)":
            _coupling(x, mask, log_scale, shift, det_sign=-1.0),
        "summed γ over every coordinate: the kept ones (κ_i = 1) are copied, their Jacobian "
        "diagonal is 1, so only Σ (1 − κ_i) γ_i counts":
            _coupling(x, mask, log_scale, shift, det_mask=False),
        "forgot the scale in y: the moved coordinates are x ⊙ e^{γ} + ν, not x + ν":
            _coupling(x, mask, log_scale, shift, use_scale=False),
        "left out the log-determinant: a change of variables needs log |det ∂y/∂x|":
            _coupling(x, mask, log_scale, shift, det=False),
        "used e^{−γ} in y (the inverse layer's scale)":
            _coupling(x, mask, log_scale, shift, scale_sign=-1.0),
    }


def check_coupling_log_prob(candidate: Callable) -> None:
    """Check ``candidate(x, mask, log_scale, shift) -> (n,)``: log p(x) through one coupling layer
    y = κ⊙x + (1−κ)⊙(x⊙e^{γ} + ν) onto a standard normal base."""
    g = torch.Generator().manual_seed(9)
    cases = []
    for n, d in ((5, 2), (4, 6), (3, 9)):
        mask = (torch.arange(d) % 2 == 0).to(torch.float64)
        cases.append({"x": torch.randn(n, d, generator=g, dtype=torch.float64),
                      "mask": mask if d != 6 else 1 - mask,
                      "log_scale": 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64),
                      "shift": torch.randn(n, d, generator=g, dtype=torch.float64)})
    check_with_mistakes(candidate, _reference_coupling, cases, mistakes=_coupling_mistakes,
                        name="your coupling_log_prob",
                        lead="it looks like you ", end=".", rtol=1e-6, atol=1e-9)
    print("Change of variables: log p(x) = log N(f(x)) + log |det ∂f/∂x|, and a coupling layer's "
          "determinant is a sum of the moved coordinates' log-scales.")


# ----- 2. the ELBO --------------------------------------------------------------------------------

def _elbo(x, x_mean, log_scale, mean, logvar, *, kl="forward", kl_reduce="sum", kl_sign=-1.0,
          rec_reduce="sum", rec_norm=True):
    r = (-0.5 * ((x - x_mean) * torch.exp(-log_scale)) ** 2
         - (log_scale + 0.5 * _LOG_2PI if rec_norm else 0.0))
    rec = r.sum(1) if rec_reduce == "sum" else r.mean(1)
    if kl == "forward":  # KL(q ‖ p), p = N(0, I)
        k = 0.5 * (mean**2 + logvar.exp() - logvar - 1)
    else:  # KL(p ‖ q)
        k = 0.5 * (logvar + (1 + mean**2) * torch.exp(-logvar) - 1)
    kl_term = k.sum(1) if kl_reduce == "sum" else k.mean(1)
    return rec + kl_sign * kl_term


def _reference_elbo(x, x_mean, log_scale, mean, logvar):
    return _elbo(x, x_mean, log_scale, mean, logvar)


def _elbo_mistakes(x, x_mean, log_scale, mean, logvar):
    return {
        "computed KL(p ‖ q) instead of KL(q ‖ p): the ELBO's KL is E_q[log q(z|x) − log p(z)], "
        "= ½ Σ (μ² + σ² − log σ² − 1)": _elbo(x, x_mean, log_scale, mean, logvar, kl="reverse"),
        "averaged the KL over latent dimensions: it is a sum, Σ_j (one term per dimension of z)":
            _elbo(x, x_mean, log_scale, mean, logvar, kl_reduce="mean"),
        "added the KL: ELBO = E_q[log p(x|z)] − KL(q ‖ p)":
            _elbo(x, x_mean, log_scale, mean, logvar, kl_sign=1.0),
        "averaged log p(x|z) over the data dimensions: a log-density of x sums over them":
            _elbo(x, x_mean, log_scale, mean, logvar, rec_reduce="mean"),
        "dropped −log τ − ½ log 2π from log N(x; m, τ²): without them the decoder's scale is "
        "not learned and the number is no bound on log p(x)":
            _elbo(x, x_mean, log_scale, mean, logvar, rec_norm=False),
    }


def check_elbo(candidate: Callable) -> None:
    """Check ``candidate(x, x_mean, log_scale, mean, logvar) -> (n,)``: the one-sample ELBO with a
    Gaussian decoder N(x; m, diag(e^{2 log τ})) and the analytic KL(q(z|x) ‖ N(0, I))."""
    g = torch.Generator().manual_seed(10)
    cases = []
    for n, d, k in ((4, 3, 2), (3, 5, 4), (6, 2, 3)):
        cases.append({"x": torch.randn(n, d, generator=g, dtype=torch.float64),
                      "x_mean": torch.randn(n, d, generator=g, dtype=torch.float64),
                      "log_scale": 0.5 * torch.randn(d, generator=g, dtype=torch.float64),
                      "mean": torch.randn(n, k, generator=g, dtype=torch.float64),
                      "logvar": torch.randn(n, k, generator=g, dtype=torch.float64)})
    check_with_mistakes(candidate, _reference_elbo, cases, mistakes=_elbo_mistakes,
                        name="your elbo", lead="it looks like you ", end=".", rtol=1e-6, atol=1e-9)
    print("ELBO = reconstruction − KL(q ‖ p): a lower bound on log p(x), tight when q(z|x) is "
          "the true posterior.")


# ----- 3. the GAN's losses ------------------------------------------------------------------------

def _gan(real_logits, fake_logits, *, g_kind="non-saturating", swap=False, no_real=False):
    real, fake = (fake_logits, real_logits) if swap else (real_logits, fake_logits)
    loss_d = (0.0 if no_real else F.softplus(-real).mean()) + F.softplus(fake).mean()
    loss_g = F.softplus(-fake_logits).mean() if g_kind == "non-saturating" else (
        -F.softplus(fake_logits).mean() if g_kind == "saturating" else -loss_d)
    return torch.stack([torch.as_tensor(loss_d, dtype=fake_logits.dtype), loss_g])


def _reference_gan(real_logits, fake_logits):
    return _gan(real_logits, fake_logits)


def _gan_mistakes(real_logits, fake_logits):
    return {
        "used the saturating generator loss E[log(1 − σ(ℓ_fake))]: when D is confident its "
        "gradient vanishes; the non-saturating −E[log σ(ℓ_fake)] is the one to train with":
            _gan(real_logits, fake_logits, g_kind="saturating"),
        "gave the generator −L_D (the minimax game as written): it contains the real term, "
        "which G cannot change, and saturates like the minimax loss":
            _gan(real_logits, fake_logits, g_kind="minimax"),
        "swapped the labels in L_D: real samples are the 1s, fakes the 0s":
            _gan(real_logits, fake_logits, swap=True),
        "left out the real samples' term −E[log σ(ℓ_real)] from L_D":
            _gan(real_logits, fake_logits, no_real=True),
    }


def check_gan_losses(candidate: Callable) -> None:
    """Check ``candidate(real_logits, fake_logits) -> tensor([L_D, L_G])`` (non-saturating L_G),
    including logits of ±60, where σ(ℓ) rounds to 0 or 1 and a log of it becomes −inf."""
    g = torch.Generator().manual_seed(11)
    cases = [{"real_logits": torch.randn(16, generator=g) * 2 + 1,
              "fake_logits": torch.randn(16, generator=g) * 2 - 1},
             {"real_logits": torch.randn(9, generator=g, dtype=torch.float64),
              "fake_logits": torch.randn(9, generator=g, dtype=torch.float64) + 0.5},
             {"real_logits": torch.tensor([60.0, -60.0, 3.0]),
              "fake_logits": torch.tensor([-60.0, 60.0, -2.0])}]
    check_with_mistakes(candidate, _reference_gan, cases, mistakes=_gan_mistakes,
                        name="your gan_losses", lead="it looks like you ", end=".",
                        rtol=1e-5, atol=1e-5)
    print("Both losses from logits with softplus (log σ(ℓ) = −softplus(−ℓ)): stable for any ℓ.")

