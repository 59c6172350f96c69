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


def walk_independent_rows(n_particles, n_steps, D_coef, dt, generator=None):
    """Right shape, start, mean and variance 2Dt at every time, but no memory: not a walk."""
    t = dt * torch.arange(1, n_steps + 1)[:, None]
    rows = torch.sqrt(2 * D_coef * t) * torch.randn(n_steps, n_particles, generator=generator)
    return torch.cat([torch.zeros(1, n_particles), rows])


def walk_half_memory(n_particles, n_steps, D_coef, dt, generator=None):
    """Variance 2Dt exactly, but every row mixes a walk with a fresh draw: Cov is wrong."""
    walk = walk_reference(n_particles, n_steps, D_coef, dt, generator)
    fresh = walk_independent_rows(n_particles, n_steps, D_coef, dt, generator)
    return (walk + fresh) / math.sqrt(2)


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


def msd_shared_start(x):
    return ((x - x[0].mean(dim=0)) ** 2).sum(-1).mean(-1)


def msd_first_particle_start(x):
    return ((x - x[0, 0]) ** 2).sum(-1).mean(-1)


# --- FTCS step ---------------------------------------------------------------------------------


def _ftcs(p, D_coef, dt, dx, *, ghosts="reflect", r=None, refuse=True, edges=True):
    r = D_coef * dt / dx**2 if r is None else r
    if refuse and D_coef * dt / dx**2 > 0.5:
        raise ValueError("unstable: dt <= dx**2 / (2 D)")
    if ghosts == "periodic":
        return p + r * (p.roll(1, -1) - 2 * p + p.roll(-1, -1))
    pad = torch.cat([p[..., :1], p, p[..., -1:]], -1) if ghosts == "reflect" else \
        torch.nn.functional.pad(p, (1, 1))
    new = p + r * (pad[..., :-2] - 2 * p + pad[..., 2:])
    if not edges:
        new[..., [0, -1]] = p[..., [0, -1]]
    return new


def ftcs_reference(p, D_coef, dt, dx):
    return _ftcs(p, D_coef, dt, dx)


def ftcs_loop(p, D_coef, dt, dx):
    """Correct, written as a Python loop over grid points with explicit wall cases."""
    r = D_coef * dt / dx**2
    if r > 0.5:
        raise ValueError(f"r = {r} > 1/2")
    new = p.clone()
    m = p.shape[-1]
    for i in range(m):
        left = p[..., max(i - 1, 0)]
        right = p[..., min(i + 1, m - 1)]
        new[..., i] = p[..., i] + r * (left - 2 * p[..., i] + right)
    return new


def ftcs_no_refusal(p, D_coef, dt, dx):
    return _ftcs(p, D_coef, dt, dx, refuse=False)


def ftcs_periodic(p, D_coef, dt, dx):
    return _ftcs(p, D_coef, dt, dx, ghosts="periodic")


def ftcs_absorbing(p, D_coef, dt, dx):
    return _ftcs(p, D_coef, dt, dx, ghosts="zero")


def ftcs_r_without_square(p, D_coef, dt, dx):
    if D_coef * dt / dx**2 > 0.5:
        raise ValueError("unstable")
    return _ftcs(p, D_coef, dt, dx, r=D_coef * dt / dx)


def ftcs_edges_frozen(p, D_coef, dt, dx):
    return _ftcs(p, D_coef, dt, dx, edges=False)


def ftcs_refuses_the_bound(p, D_coef, dt, dx):
    if D_coef * dt / dx**2 >= 0.5:
        raise ValueError("unstable")
    return _ftcs(p, D_coef, dt, dx)


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
    (ch01.check_ftcs_step, ftcs_reference, "ftcs_step is correct on 3 test inputs"),
    (ch01.check_ftcs_step, ftcs_loop, "ftcs_step is correct on 3 test inputs"),
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
    (ch01.check_msd, msd_from_origin, r"measured from the origin.*start at x\[0\]"),
    (ch01.check_msd, msd_variance_of_the_cloud, r"spread around the cloud's current centre"),
    (ch01.check_msd, msd_shared_start, r"one shared start.*each particle's own start"),
    (ch01.check_msd, msd_first_particle_start, r"first particle's start"),
    (ch01.check_random_walk, walk_independent_rows,
     r"not those of one walk.*Cov\(x_s, x_t\) = 2·D·min\(s, t\).*not a fresh draw"),
    (ch01.check_random_walk, walk_half_memory, r"not those of one walk"),
    (ch01.check_ftcs_step, ftcs_no_refusal, r"accepted an unstable step.*raise ValueError"),
    (ch01.check_ftcs_step, ftcs_periodic, r"walls wrap around"),
    (ch01.check_ftcs_step, ftcs_absorbing, r"ghost cells are 0"),
    (ch01.check_ftcs_step, ftcs_r_without_square, r"divides by Δx²"),
    (ch01.check_ftcs_step, ftcs_edges_frozen, r"edge points are never updated"),
    (ch01.check_ftcs_step, ftcs_refuses_the_bound, r"raised ValueError.*1/2 is still stable"),
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
