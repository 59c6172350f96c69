"""Chapter 6 checkers accept the reference and reject typical wrong answers with the right diagnosis."""

import pytest
import torch

from diffusion_lite import samplers
from diffusion_lite.checks import ExerciseError, ch06


def test_ddim_reference_accepted(capsys):
    ch06.check_ddim_step(ch06.ref_ddim_step)
    assert "✓ ddim_step is correct" in capsys.readouterr().out


def test_ddim_reference_agrees_with_the_package_sampler():
    """One step of samplers.sample_ddim is the reference update with the generator's noise."""
    x = 3 * torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    den = lambda x, s: 0.5 * x  # noqa: E731
    steps = []
    out = samplers.sample_ddim(den, x, torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64), eta=0.7,
                               generator=torch.Generator().manual_seed(1),
                               callback=lambda d: steps.append(d["x"]))
    noise = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    want = ch06.ref_ddim_step(x, 0.5 * x, 3.0, 1.0, 0.7, noise)
    torch.testing.assert_close(steps[0], want)
    assert out.shape == x.shape


def _ddim_no_noise(x, x0_hat, sigma, sigma_next, eta, noise):
    eps = (x - x0_hat) / sigma
    up = eta * sigma_next * (sigma**2 - sigma_next**2) ** 0.5 / sigma
    return x0_hat + (sigma_next**2 - up**2) ** 0.5 * eps


def _ddim_sigma_next(x, x0_hat, sigma, sigma_next, eta, noise):
    eps = (x - x0_hat) / sigma
    up = eta * sigma_next * (sigma**2 - sigma_next**2) ** 0.5 / sigma
    return x0_hat + sigma_next * eps + up * noise


def _ddim_wrong_sign(x, x0_hat, sigma, sigma_next, eta, noise):
    eps = (x0_hat - x) / sigma                      # sign flipped
    up = eta * sigma_next * (sigma**2 - sigma_next**2) ** 0.5 / sigma
    return x0_hat + (sigma_next**2 - up**2) ** 0.5 * eps + up * noise


def _ddim_stub(x, x0_hat, sigma, sigma_next, eta, noise):
    raise NotImplementedError


@pytest.mark.parametrize("wrong,match", [
    (_ddim_no_noise, "left out the fresh noise"),
    (_ddim_sigma_next, "uses σ' where it needs σ_down"),
    (_ddim_wrong_sign, "wrong sign"),
    (_ddim_stub, "not written yet"),
    (lambda x, x0_hat, sigma, sigma_next, eta, noise: x0_hat, "differs from the reference"),
    (lambda x, x0_hat, sigma, sigma_next, eta, noise: None, "returned None"),
])
def test_ddim_wrong_answers_rejected(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        ch06.check_ddim_step(wrong)


def test_heun_reference_accepted(capsys):
    ch06.check_heun_step(ch06.ref_heun_step)
    assert "✓ heun_step is correct" in capsys.readouterr().out


def test_heun_reference_agrees_with_the_package_sampler():
    x = 4 * torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    seen = []
    samplers.sample_heun(ch06._gauss_denoiser, x, torch.tensor([4.0, 1.5, 0.0], dtype=torch.float64),
                         callback=lambda d: seen.append(d["x"]))
    torch.testing.assert_close(seen[0], ch06.ref_heun_step(ch06._gauss_denoiser, x, 4.0, 1.5))


def _heun_euler(denoiser, x, sigma, sigma_next):
    return x + (sigma_next - sigma) * (x - denoiser(x, sigma)) / sigma


def _heun_slope_at_x(denoiser, x, sigma, sigma_next):
    d = (x - denoiser(x, sigma)) / sigma
    return x + (sigma_next - sigma) * (d + (x - denoiser(x, sigma_next)) / sigma_next) / 2


def _heun_no_half(denoiser, x, sigma, sigma_next):
    d = (x - denoiser(x, sigma)) / sigma
    x_e = x + (sigma_next - sigma) * d
    return x + (sigma_next - sigma) * (d + (x_e - denoiser(x_e, sigma_next)) / sigma_next)


@pytest.mark.parametrize("wrong,match", [
    (_heun_euler, "this is the Euler step"),
    (_heun_slope_at_x, "evaluated at the Euler prediction"),
    (_heun_no_half, "average the two slopes"),
    (lambda denoiser, x, sigma, sigma_next: x[:, :1], "shape"),
    (lambda denoiser, x, sigma, sigma_next: 1 / 0, "ZeroDivisionError"),
])
def test_heun_wrong_answers_rejected(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        ch06.check_heun_step(wrong)
