"""Chapter 5 checkers accept the reference and diagnose typical wrong answers."""

import pytest
import torch

from diffusion_lite.checks import ExerciseError, ch05


def test_eps_to_x0_accepts_reference_and_diagnoses_mistakes():
    ch05.check_eps_to_x0(ch05.eps_to_x0_reference)
    ch05.check_eps_to_x0(lambda eps_hat, x, sigma: x - sigma[:, None] * eps_hat)
    with pytest.raises(ExerciseError, match="wrong sign"):
        ch05.check_eps_to_x0(lambda eps_hat, x, sigma: -(x - sigma[:, None] * eps_hat))
    with pytest.raises(ExerciseError, match="(?s)differs.*multiplied by sigma"):
        ch05.check_eps_to_x0(lambda eps_hat, x, sigma: x - eps_hat)  # forgot σ
    with pytest.raises(ExerciseError, match="(?s)raised RuntimeError.*sigma\\[:, None\\]"):
        ch05.check_eps_to_x0(lambda eps_hat, x, sigma: x - sigma * eps_hat)  # no broadcasting

    def stub(eps_hat, x, sigma):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch05.check_eps_to_x0(stub)


def test_v_target_accepts_reference_and_diagnoses_mistakes():
    ch05.check_v_target(ch05.v_target_reference)
    with pytest.raises(ExerciseError, match="(?s)wrong sign.*EDM"):
        ch05.check_v_target(lambda x0, eps, sigma: (sigma * x0 - eps) / (1 + sigma**2) ** 0.5)
    with pytest.raises(ExerciseError, match="(?s)constant factor.*sqrt\\(1 \\+ sigma"):
        ch05.check_v_target(lambda x0, eps, sigma: eps - sigma * x0)
    with pytest.raises(ExerciseError, match="(?s)differs.*minus sign"):
        ch05.check_v_target(lambda x0, eps, sigma: (x0 - sigma * eps) / (1 + sigma**2) ** 0.5)


def test_ema_step_accepts_reference_and_diagnoses_mistakes():
    ch05.check_ema_step(ch05.ema_step_reference)
    with pytest.raises(ExerciseError, match="(?s)differs.*fraction beta"):
        ch05.check_ema_step(lambda ema, theta, beta: beta * theta + (1 - beta) * ema)  # swapped

    def in_place_only(ema, theta, beta):
        ema.mul_(beta).add_((1 - beta) * theta)

    with pytest.raises(ExerciseError, match="(?s)returned None.*in-place"):
        ch05.check_ema_step(in_place_only)
    with pytest.raises(ExerciseError, match="differs"):
        ch05.check_ema_step(lambda ema, theta, beta: theta)  # no averaging at all


def test_checkers_do_not_modify_torch_global_rng():
    state = torch.get_rng_state()
    ch05.check_ema_step(ch05.ema_step_reference)
    assert torch.equal(state, torch.get_rng_state())
