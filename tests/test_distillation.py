"""Progressive distillation against closed forms on Gaussian data, where every map is linear."""

import math

import pytest
import torch
from gain_net import GainNet  # noqa: E402  (tests/gain_net.py)

from diffusion_lite import distillation, mixtures, samplers, schedules
from diffusion_lite.denoisers import Denoiser

S = 1.0  # data x0 ~ N(0, S² I): the exact denoiser is D(x, σ) = S²/(S² + σ²) x


def gaussian_teacher(x, sigma):
    sigma = torch.as_tensor(sigma, dtype=x.dtype).expand(x.shape[0])
    return (S**2 / (S**2 + sigma**2))[:, None] * x


def ddim_gain(ladder):
    """x_end / x_start of DDIM with the exact Gaussian denoiser: Π (k + (σ'/σ)(1 − k))."""
    gain = 1.0
    for s, s_next in zip(ladder[:-1].tolist(), ladder[1:].tolist()):
        k = S**2 / (S**2 + s**2)
        gain *= k + (s_next / s) * (1 - k)
    return gain


def gaussian_data(n, generator=None):
    return S * torch.randn(n, 2, generator=generator)


def test_target_makes_one_student_step_equal_two_teacher_steps():
    g = torch.Generator().manual_seed(0)
    teacher = mixtures.ring()  # a nonlinear teacher
    x = 3 * torch.randn(64, 2, generator=g, dtype=torch.float64)
    s, s_mid, s_next = (torch.full((64,), v, dtype=torch.float64) for v in (3.0, 1.2, 0.4))
    x_tilde = distillation.distillation_target(teacher, x, s, s_mid, s_next)
    states = []
    samplers.sample_ddim(teacher, x, torch.tensor([3.0, 1.2, 0.4, 0.0], dtype=torch.float64),
                         callback=lambda info: states.append(info["x"]))
    assert torch.allclose(x_tilde + (0.4 / 3.0) * (x - x_tilde), states[1], atol=1e-10)
    assert not torch.allclose(x_tilde, teacher(x, 3.0), atol=1e-2)  # not the teacher's own x̂₀
    # Gaussian closed form: x̃ = (G₂ − r)/(1 − r) x with G₂ the two-step gain, r = σ''/σ.
    g2, r = ddim_gain(torch.tensor([3.0, 1.2, 0.4])), 0.4 / 3.0
    x_tilde = distillation.distillation_target(gaussian_teacher, x, s, s_mid, s_next)
    assert torch.allclose(x_tilde, (g2 - r) / (1 - r) * x, atol=1e-12)


def exact_gaussian_denoiser():
    """With σ_d = S, EDM's c_skip x already is D*(x, σ): a GainNet with F ≡ 0 is exact, trainable."""
    torch.manual_seed(0)
    net = GainNet()
    with torch.no_grad():
        net.g[2].weight.zero_()
        net.g[2].bias.zero_()
    return Denoiser(net, "edm", S)


def test_one_step_student_of_gaussian_data_recovers_the_exact_map():
    config = distillation.DistillConfig(base_steps=16, final_steps=1, steps_per_halving=200,
                                        batch_size=128, lr=1e-2, sigma_min=0.02, sigma_max=20.0,
                                        progress=False)
    teacher = exact_gaussian_denoiser()
    x = torch.randn(8, 2)
    assert torch.allclose(teacher(x, 3.0), gaussian_teacher(x, 3.0), atol=1e-6)
    students = distillation.progressive_distillation(teacher, gaussian_data, config)
    assert sorted(students) == [1, 2, 4, 8]
    base = config.base_ladder()
    want = ddim_gain(base)  # the teacher's 16-step DDIM map x_end = want · x_start
    for n, student in students.items():
        ladder = distillation.student_ladder(base, n)
        got = samplers.sample_ddim(student, 20.0 * x, ladder) / (20.0 * x)
        assert torch.allclose(got, torch.full_like(got, want), rtol=0.02), (n, got, want)


def test_teacher_ddim_map_converges_to_the_exact_ode_map_at_first_order():
    # PD can only recover its teacher's sampler; DDIM's map tends to the probability-flow map
    # x₀ = S/√(S² + σ_max²) · x_σmax with an error that halves when the steps double.
    exact = S / math.sqrt(S**2 + 20.0**2)
    errors = [abs(ddim_gain(schedules.karras_sigmas(n, 0.02, 20.0)) / exact - 1)
              for n in (16, 32, 64, 128)]
    assert 0.09 < errors[0] < 0.12 and errors[-1] < 0.015
    for coarse, fine in zip(errors, errors[1:]):
        assert 1.9 < coarse / fine < 2.1


def test_student_ladder_and_config_validation():
    base = distillation.DistillConfig().base_ladder()
    assert torch.equal(distillation.student_ladder(base, 4), base[::4])
    assert distillation.student_ladder(base, 1).tolist() == [20.0, 0.0]
    with pytest.raises(ValueError, match="divide"):
        distillation.student_ladder(base, 3)
    with pytest.raises(ValueError, match="power of 2"):
        distillation.DistillConfig(base_steps=12)
    with pytest.raises(ValueError, match="halving"):
        distillation.DistillConfig(base_steps=4, final_steps=4)


def test_levels_may_be_scalars_and_must_go_down():
    x = torch.randn(5, 2, dtype=torch.float64)
    per_sample = [torch.full((5,), v, dtype=torch.float64) for v in (2.0, 1.0, 0.5)]
    a = distillation.distillation_target(gaussian_teacher, x, 2.0, 1.0, 0.5)
    assert torch.allclose(a, distillation.distillation_target(gaussian_teacher, x, *per_sample))
    with pytest.raises(ValueError, match="down the ladder"):
        distillation.distillation_target(gaussian_teacher, x, 1.0, 2.0, 0.5)
