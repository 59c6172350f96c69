"""Chapter 11 checkers accept the reference and diagnose typical wrong answers."""

import pytest
import torch

from diffusion_lite.checks import ExerciseError, ch11
from diffusion_lite.distillation import ddim_step


def test_distillation_target_accepts_reference_and_diagnoses_slips():
    ch11.check_distillation_target(ch11.distillation_target_reference)

    def by_hand(teacher, x, sigma, sigma_mid, sigma_next):
        d1 = teacher(x, sigma)
        x1 = d1 + (sigma_mid / sigma)[:, None] * (x - d1)
        d2 = teacher(x1, sigma_mid)
        x2 = d2 + (sigma_next / sigma_mid)[:, None] * (x1 - d2)
        r = (sigma_next / sigma)[:, None]
        return (x2 - r * x) / (1 - r)

    ch11.check_distillation_target(by_hand)
    with pytest.raises(ExerciseError, match="teacher's own"):
        ch11.check_distillation_target(lambda teacher, x, sigma, sigma_mid, sigma_next: teacher(x, sigma))
    with pytest.raises(ExerciseError, match="where two teacher steps land"):
        ch11.check_distillation_target(lambda teacher, x, sigma, sigma_mid, sigma_next: ddim_step(
            teacher, ddim_step(teacher, x, sigma, sigma_mid), sigma_mid, sigma_next))
    with pytest.raises(ExerciseError, match="single"):  # one teacher step σ → σ_next, solved
        ch11.check_distillation_target(lambda teacher, x, sigma, sigma_mid, sigma_next:
                                       by_hand(teacher, x, sigma, sigma_next, sigma_next * (1 - 1e-12)))

    def wrong_ratio(teacher, x, sigma, sigma_mid, sigma_next):  # solves with σ_mid/σ: right scale
        x2 = ddim_step(teacher, ddim_step(teacher, x, sigma, sigma_mid), sigma_mid, sigma_next)
        r = (sigma_mid / sigma)[:, None]
        return (x2 - r * x) / (1 - r)

    with pytest.raises(ExerciseError, match="differs"):
        ch11.check_distillation_target(wrong_ratio)

    def stub(teacher, x, sigma, sigma_mid, sigma_next):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch11.check_distillation_target(stub)


def test_consistency_coefficients_accepts_reference_and_diagnoses_slips():
    ch11.check_consistency_coefficients(ch11.consistency_coefficients_reference)

    def edm(sigma, sigma_min, sigma_data):  # forgets σ_min: right shape, scale, almost right values
        return (sigma_data**2 / (sigma**2 + sigma_data**2),
                sigma * sigma_data / (sigma**2 + sigma_data**2) ** 0.5)

    with pytest.raises(ExerciseError, match="boundary condition fails"):
        ch11.check_consistency_coefficients(edm)

    def shift_only_out(sigma, sigma_min, sigma_data):  # c_skip(σ_min) < 1
        return (sigma_data**2 / (sigma**2 + sigma_data**2),
                sigma_data * (sigma - sigma_min) / (sigma**2 + sigma_data**2) ** 0.5)

    with pytest.raises(ExerciseError, match="boundary condition fails"):
        ch11.check_consistency_coefficients(shift_only_out)

    def shifted_everywhere(sigma, sigma_min, sigma_data):  # boundary holds, c_out's norm is wrong
        s = sigma - sigma_min
        return sigma_data**2 / (s**2 + sigma_data**2), sigma_data * s / (s**2 + sigma_data**2) ** 0.5

    with pytest.raises(ExerciseError, match="c_out differs"):
        ch11.check_consistency_coefficients(shifted_everywhere)

    def negative_out(sigma, sigma_min, sigma_data):
        c_skip, c_out = ch11.consistency_coefficients_reference(sigma, sigma_min, sigma_data)
        return c_skip, -c_out

    with pytest.raises(ExerciseError, match="wrong sign"):
        ch11.check_consistency_coefficients(negative_out)
    with pytest.raises(ExerciseError, match="pair"):
        ch11.check_consistency_coefficients(lambda sigma, sigma_min, sigma_data: sigma)

    def stub(sigma, sigma_min, sigma_data):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch11.check_consistency_coefficients(stub)


def test_checkers_do_not_modify_torch_global_rng():
    state = torch.get_rng_state()
    ch11.check_distillation_target(ch11.distillation_target_reference)
    ch11.check_consistency_coefficients(ch11.consistency_coefficients_reference)
    assert torch.equal(state, torch.get_rng_state())
