"""Chapter 1 checkers accept the reference and reject typical wrong answers with the right diagnosis."""

import math

import pytest
import torch

from diffusion_lite.checks import ExerciseError, ch01

# --- random walk ------------------------------------------------------------------------------


def walk_reference(n_particles, n_steps, D_coef, dt, generator=None):
    steps = math.sqrt(2 * D_coef * dt) * torch.randn(n_steps, n_particles, generator=generator)
    return torch.cat([torch.zeros(1, n_particles), steps.cumsum(0)])


def walk_particles_first(n_particles, n_steps, D_coef, dt, generator=None):
    """Correct, but draws in another order: the checker must not depend on the draw order."""
    steps = math.sqrt(2 * D_coef * dt) * torch.randn(n_particles, n_steps, generator=generator)
    return torch.cat([torch.zeros(n_particles, 1), steps.cumsum(1)], dim=1).T


def walk_forgot_factor_2(n_particles, n_steps, D_coef, dt, generator=None):
    steps = math.sqrt(D_coef * dt) * torch.randn(n_steps, n_particles, generator=generator)
    return torch.cat([torch.zeros(1, n_particles), steps.cumsum(0)])


def walk_variance_as_std(n_particles, n_steps, D_coef, dt, generator=None):
    steps = 2 * D_coef * dt * torch.randn(n_steps, n_particles, generator=generator)
    return torch.cat([torch.zeros(1, n_particles), steps.cumsum(0)])


def walk_no_cumsum(n_particles, n_steps, D_coef, dt, generator=None):
    steps = math.sqrt(2 * D_coef * dt) * torch.randn(n_steps, n_particles, generator=generator)
    return torch.cat([torch.zeros(1, n_particles), steps])


def walk_cumsum_wrong_axis(n_particles, n_steps, D_coef, dt, generator=None):
    steps = math.sqrt(2 * D_coef * dt) * torch.randn(n_steps, n_particles, generator=generator)
    return torch.cat([torch.zeros(1, n_particles), steps.cumsum(1)])


def walk_no_start(n_particles, n_steps, D_coef, dt, generator=None):
    steps = math.sqrt(2 * D_coef * dt) * torch.randn(n_steps, n_particles, generator=generator)
    return steps.cumsum(0)


def walk_shared_steps(n_particles, n_steps, D_coef, dt, generator=None):
    steps = math.sqrt(2 * D_coef * dt) * torch.randn(n_steps, 1, generator=generator)
    return torch.cat([torch.zeros(1, 1), steps.cumsum(0)]).expand(n_steps + 1, n_particles)


def walk_uniform_01(n_particles, n_steps, D_coef, dt, generator=None):
    steps = math.sqrt(2 * D_coef * dt) * torch.rand(n_steps, n_particles, generator=generator)
    return torch.cat([torch.zeros(1, n_particles), steps.cumsum(0)])


def test_random_walk_not_written_yet():
    def stub(n_particles, n_steps, D_coef, dt, generator=None):
        # your code here
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch01.check_random_walk(stub)


# --- mean squared displacement ----------------------------------------------------------------


def msd_reference(x):
    return ((x - x[0]) ** 2).sum(-1).mean(-1)


def msd_mean_over_coordinates(x):
    return ((x - x[0]) ** 2).mean(-1).mean(-1)


def msd_root(x):
    return ((x - x[0]) ** 2).sum(-1).sqrt().mean(-1)


def msd_wrong_axis(x):
    return ((x - x[0]) ** 2).sum(-1).mean(0)


def msd_from_origin(x):
    return (x**2).sum(-1).mean(-1)


def msd_variance_of_the_cloud(x):
    return x.var(dim=1, unbiased=False).sum(-1)


# --- heat kernel ------------------------------------------------------------------------------


def kernel_reference(x, t, D_coef):
    return torch.exp(-(x**2) / (4 * D_coef * t)) / math.sqrt(4 * math.pi * D_coef * t)


def kernel_variance_Dt(x, t, D_coef):
    return torch.exp(-(x**2) / (2 * D_coef * t)) / math.sqrt(2 * math.pi * D_coef * t)


def kernel_wrong_normalisation(x, t, D_coef):
    return torch.exp(-(x**2) / (4 * D_coef * t)) / math.sqrt(2 * math.pi * D_coef * t)


def kernel_std_for_variance(x, t, D_coef):
    s = math.sqrt(2 * D_coef * t)  # used as if it were the variance
    return torch.exp(-(x**2) / (2 * s)) / math.sqrt(2 * math.pi * s)


def kernel_positive_exponent(x, t, D_coef):
    return torch.exp(x**2 / (4 * D_coef * t)) / math.sqrt(4 * math.pi * D_coef * t)


def kernel_scalar(x, t, D_coef):
    return kernel_reference(x, t, D_coef).sum()


# --- each checker accepts correct answers and diagnoses typical mistakes -----------------------

ACCEPTED = [
    (ch01.check_random_walk, walk_reference, "random_walk_1d is correct on 3 test inputs"),
    (ch01.check_random_walk, walk_particles_first, "random_walk_1d is correct on 3 test inputs"),
    (ch01.check_msd, msd_reference, "msd is correct on 3 test inputs"),
    (ch01.check_heat_kernel, kernel_reference, "heat_kernel_1d is correct on 3 test inputs"),
]

REJECTED = [
    (ch01.check_random_walk, walk_forgot_factor_2,
     r"variance over particles is 0\.\d+ × 2·D·t.*the 2 in 2·D·Δt is missing"),
    (ch01.check_random_walk, walk_variance_as_std,
     r"2·D·Δt as the standard deviation instead of the variance"),
    (ch01.check_random_walk, walk_no_cumsum, r"does not grow linearly in time.*cumsum"),
    (ch01.check_random_walk, walk_cumsum_wrong_axis,
     r"does not grow linearly in time.*along the time axis"),
    (ch01.check_random_walk, walk_no_start,
     r"shape \(40, 20000\).*expected \(41, 20000\).*include the starting point"),
    (ch01.check_random_walk, walk_shared_steps,
     r"all particles are at the same place.*own random steps"),
    (ch01.check_random_walk, walk_uniform_01, r"the cloud drifts.*mean zero"),
    (ch01.check_msd, msd_wrong_axis,
     r"msd has shape \(50,\).*expected \(13,\).*average over particles \(dim 1\)"),
    (ch01.check_msd, msd_mean_over_coordinates,
     r"constant factor of about 0\.5.*sum the squared displacement"),
    (ch01.check_msd, msd_root, r"differs from the reference.*not its square root"),
    (ch01.check_msd, msd_from_origin, r"differs from the reference.*own start x\[0\]"),
    (ch01.check_msd, msd_variance_of_the_cloud,
     r"differs from the reference.*not a variance around"),
    (ch01.check_heat_kernel, kernel_variance_Dt,
     r"differs from the reference.*variance 2·D·t \(not D·t"),
    (ch01.check_heat_kernel, kernel_wrong_normalisation,
     r"constant factor of about 1\.41.*prefactor 1/sqrt\(2π s²\) = 1/sqrt\(4π·D·t\)"),
    (ch01.check_heat_kernel, kernel_std_for_variance,
     r"differs from the reference.*not its\s+square root"),
    (ch01.check_heat_kernel, kernel_positive_exponent, r"differs from the reference"),
    (ch01.check_heat_kernel, kernel_scalar,
     r"has shape \(\).*one density value per grid point"),
]


@pytest.mark.parametrize("checker, answer, message", ACCEPTED,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_checker_accepts_correct_answers(checker, answer, message, capsys):
    checker(answer)
    assert capsys.readouterr().out.strip() == f"✓ {message}."


@pytest.mark.parametrize("checker, answer, diagnosis", REJECTED,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_checker_rejects_typical_mistakes(checker, answer, diagnosis):
    with pytest.raises(ExerciseError, match=f"(?s){diagnosis}"):
        checker(answer)
