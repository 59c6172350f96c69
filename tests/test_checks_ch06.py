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


# ----------------------------------------------------------------------------- the Heun loop
def test_heun_sampler_reference_accepted_and_equals_the_package(capsys):
    ch06.check_heun_sampler(ch06.ref_heun_sampler)
    assert "✓ heun_sampler is correct" in capsys.readouterr().out
    from diffusion_lite import schedules
    x = 20 * torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    s = schedules.karras_sigmas(7, 0.01, 20.0)
    torch.testing.assert_close(ch06.ref_heun_sampler(ch06._gauss_denoiser, x, s),
                               samplers.sample_heun(ch06._gauss_denoiser, x, s))


def _loop_euler(denoiser, x, sigmas):
    return samplers.sample_euler(denoiser, x, sigmas)


def _loop_heun_to_zero(denoiser, x, sigmas):
    for i in range(len(sigmas) - 1):
        x = ch06.ref_heun_step(denoiser, x, float(sigmas[i]), float(sigmas[i + 1]))
    return x


def _loop_stops_early(denoiser, x, sigmas):
    for i in range(len(sigmas) - 2):
        x = ch06.ref_heun_step(denoiser, x, float(sigmas[i]), float(sigmas[i + 1]))
    return x


def _loop_dpm(denoiser, x, sigmas):
    """Right shape, right scale, right mean: another second-order solver on the same ladder."""
    return samplers.sample_dpmpp_2m(denoiser, x, sigmas)


@pytest.mark.parametrize("wrong,match", [
    (_loop_euler, "Euler steps only"),
    (_loop_heun_to_zero, "NaN or infinite"),
    (_loop_stops_early, "stopped at σ_"),
    (_loop_dpm, "differs from the reference"),
    (lambda denoiser, x, sigmas: x, "differs from the reference"),
])
def test_heun_sampler_wrong_answers_rejected(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        ch06.check_heun_sampler(wrong)


# ----------------------------------------------------------------------------- the ladder
def test_karras_ladder_reference_accepted_and_equals_schedules(capsys):
    from diffusion_lite import schedules
    ch06.check_karras_ladder(ch06.ref_karras_ladder)
    assert "✓ karras_ladder is correct" in capsys.readouterr().out
    torch.testing.assert_close(ch06.ref_karras_ladder(9, 0.002, 80.0, 7.0),
                               schedules.karras_sigmas(9, 0.002, 80.0, 7.0))
    ch06.check_karras_ladder(schedules.karras_sigmas)           # the package's answer passes


def _ladder_up(n, sigma_min, sigma_max, rho):
    s = ch06.ref_karras_ladder(n, sigma_min, sigma_max, rho)
    return torch.cat([s[:-1].flip(0), s[-1:]])


def _ladder_no_zero(n, sigma_min, sigma_max, rho):
    return ch06.ref_karras_ladder(n, sigma_min, sigma_max, rho)[:-1]


def _ladder_wrong_power(n, sigma_min, sigma_max, rho):
    i = torch.arange(n, dtype=torch.float64) / (n - 1)
    s = (sigma_max**rho + i * (sigma_min**rho - sigma_max**rho)) ** (1 / rho)
    return torch.cat([s, torch.zeros(1, dtype=torch.float64)])


def _ladder_linear(n, sigma_min, sigma_max, rho):
    return ch06.ref_karras_ladder(n, sigma_min, sigma_max, 1.0)


def _ladder_log(n, sigma_min, sigma_max, rho):
    from diffusion_lite import schedules
    return schedules.log_uniform_sigmas(n, sigma_min, sigma_max)


def _ladder_ramp_n(n, sigma_min, sigma_max, rho):
    i = torch.arange(n, dtype=torch.float64) / n
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return torch.cat([(hi + i * (lo - hi)) ** rho, torch.zeros(1, dtype=torch.float64)])


def _ladder_rho_off(n, sigma_min, sigma_max, rho):
    """Right ends, right length, decreasing: only the warping is slightly off."""
    return ch06.ref_karras_ladder(n, sigma_min, sigma_max, rho * 1.1)


@pytest.mark.parametrize("wrong,match", [
    (_ladder_up, "must go down"),
    (_ladder_no_zero, "shape"),
    (_ladder_wrong_power, "wrong way round"),
    (_ladder_linear, "evenly spaced in σ"),
    (_ladder_log, "evenly spaced in log σ"),
    (_ladder_ramp_n, "i/\\(n − 1\\)"),
    (_ladder_rho_off, "differs from the reference"),
])
def test_karras_ladder_wrong_answers_rejected(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        ch06.check_karras_ladder(wrong)
