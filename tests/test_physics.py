"""physics (chapter 1 parts): random walks, MSD, heat kernel, explicit heat solver.

Oracles: closed forms (Einstein's 2·d·D·t, the Gaussian heat kernel), scipy.stats, numpy's
histogram, and derivatives taken by autograd.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from diffusion_lite import physics


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- random steps and walks -------------------------------------------------------------------


@pytest.mark.parametrize("step", physics.STEP_KINDS)
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_steps_have_mean_zero_and_variance_2_D_dt(step, dim):
    D, dt, n = 0.7, 0.3, 200_000
    s = physics.random_steps(1, n, dim, D_coef=D, dt=dt, step=step, generator=gen())[0]  # (n, d)
    assert s.shape == (n, dim) and s.dtype == torch.float64
    var = 2 * D * dt
    # 5-sigma bounds: the mean has std sqrt(var/n); the variance's relative std is <= sqrt(2/n)
    # for Gaussian steps and larger for lattice steps in d > 1 (most coordinates are 0).
    assert s.mean(0).abs().max() < 5 * math.sqrt(var / n)
    assert torch.allclose(s.var(0), torch.full((dim,), var, dtype=s.dtype), rtol=5 * math.sqrt(2 * dim / n))
    cross = (s[:, :, None] * s[:, None, :]).mean(0) - torch.diag(s.var(0))
    assert cross.abs().max() < 5 * var / math.sqrt(n)  # uncorrelated coordinates


def test_lattice_steps_move_along_one_axis_by_a_fixed_length():
    D, dt, dim = 0.5, 1.0, 3
    s = physics.random_steps(50, 100, dim, D_coef=D, dt=dt, step="lattice", generator=gen())
    assert torch.equal((s != 0).sum(-1), torch.ones(50, 100, dtype=torch.long))
    assert torch.allclose(s.norm(dim=-1), torch.tensor(math.sqrt(2 * dim * D * dt), dtype=s.dtype))
    # all 2d directions occur, each about equally often
    k = (s.abs().argmax(-1) * 2 + (s.sum(-1) < 0)).flatten()
    freq = torch.bincount(k, minlength=2 * dim) / k.numel()
    assert torch.allclose(freq, torch.full_like(freq, 1 / (2 * dim)), atol=0.02)


def test_uniform_steps_are_bounded():
    D, dt = 0.5, 0.2
    s = physics.random_steps(10, 1000, 2, D_coef=D, dt=dt, step="uniform", generator=gen())
    assert s.abs().max() <= math.sqrt(6 * D * dt)


def test_random_walk_is_the_running_sum_of_random_steps():
    kw = dict(D_coef=0.3, dt=0.5, step="gaussian")
    x = physics.random_walk(7, 20, 2, generator=gen(3), **kw)  # (21, 7, 2)
    steps = physics.random_steps(20, 7, 2, generator=gen(3), **kw)  # (20, 7, 2)
    assert x.shape == (21, 7, 2)
    assert torch.equal(x[0], torch.zeros(7, 2, dtype=x.dtype))
    assert torch.allclose(x[1:], steps.cumsum(0))
    # same seed, same walk; the generator drives all randomness
    assert torch.equal(x, physics.random_walk(7, 20, 2, generator=gen(3), **kw))
    assert not torch.equal(x, physics.random_walk(7, 20, 2, generator=gen(4), **kw))


def test_random_walk_save_every_and_x0():
    x0 = torch.tensor([1.0, -2.0], dtype=torch.float32)
    full = physics.random_walk(5, 12, 2, x0=x0, generator=gen(1))
    sub = physics.random_walk(5, 12, 2, x0=x0, save_every=4, generator=gen(1))
    assert full.dtype == torch.float32 and sub.shape == (4, 5, 2)
    assert torch.equal(sub, full[::4])
    assert torch.equal(full[0], x0.expand(5, 2))
    per_particle = torch.arange(10.0).reshape(5, 2)
    assert torch.equal(physics.random_walk(5, 3, 2, x0=per_particle, generator=gen())[0], per_particle)


@pytest.mark.parametrize("step", physics.STEP_KINDS)
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_msd_grows_as_2_d_D_t(step, dim):
    """Einstein: ⟨|x_t − x_0|²⟩ = 2·d·D·t for any step law with variance 2·D·Δt per coordinate."""
    D, dt, n_steps, N = 0.4, 0.05, 100, 20_000
    x = physics.random_walk(N, n_steps, dim, D_coef=D, dt=dt, step=step, save_every=10,
                            generator=gen(dim))
    t = dt * 10 * torch.arange(x.shape[0], dtype=torch.float64)
    msd = physics.mean_squared_displacement(x)
    theory = physics.einstein_msd(t, D, dim)
    # relative std of the MSD at one time is sqrt(2/(N d)) <= 1%; allow 5%
    assert torch.allclose(msd[1:], theory[1:], rtol=0.05)
    assert physics.fit_diffusion_constant(t, msd, dim) == pytest.approx(D, rel=0.03)


def test_mean_squared_displacement_by_hand():
    x = torch.tensor([[[0.0, 0.0], [1.0, 1.0]],
                      [[3.0, 4.0], [1.0, 2.0]]])  # (T=2, N=2, d=2)
    # particle 0 moves 5, particle 1 moves 1: msd = (25 + 1)/2
    assert torch.allclose(physics.mean_squared_displacement(x), torch.tensor([0.0, 13.0]))


def test_fit_diffusion_constant_is_exact_on_exact_data():
    t = torch.linspace(0, 3, 7, dtype=torch.float64)
    assert physics.fit_diffusion_constant(t, 2 * 2 * 0.9 * t, dim=2) == pytest.approx(0.9)


# --- heat kernel and histogram ----------------------------------------------------------------


def test_heat_kernel_matches_scipy_and_integrates_to_one():
    D, t = 0.5, 2.0
    grid = torch.linspace(-15, 15, 3001, dtype=torch.float64)
    p = physics.heat_kernel(grid[:, None], t, D, x0=1.5)
    want = stats.norm(loc=1.5, scale=math.sqrt(2 * D * t)).pdf(grid.numpy())
    np.testing.assert_allclose(p.numpy(), want, rtol=1e-12, atol=1e-300)
    assert torch.trapezoid(p, grid).item() == pytest.approx(1.0, abs=1e-10)
    # 2D: the product of two 1D kernels; integrates to 1 on a grid
    g2 = torch.linspace(-8, 8, 401, dtype=torch.float64)
    X, Y = torch.meshgrid(g2, g2, indexing="ij")
    p2 = physics.heat_kernel(torch.stack([X, Y], -1), 0.7, 1.3)  # (401, 401)
    mvn = stats.multivariate_normal(mean=[0, 0], cov=2 * 1.3 * 0.7 * np.eye(2))
    np.testing.assert_allclose(p2[::50, ::50].numpy(),
                               mvn.pdf(torch.stack([X, Y], -1)[::50, ::50].numpy()), rtol=1e-10)
    assert torch.trapezoid(torch.trapezoid(p2, g2), g2).item() == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_heat_kernel_solves_the_heat_equation(dim):
    """∂p/∂t = D ∇²p, with both sides taken exactly by autograd at random points."""
    D = 0.8
    x = torch.randn(64, dim, generator=gen(dim), dtype=torch.float64).requires_grad_(True)
    t = (0.2 + torch.rand(64, generator=gen(9), dtype=torch.float64)).requires_grad_(True)
    p = physics.heat_kernel(x, t, D)  # (64,)
    dp_dt = torch.autograd.grad(p.sum(), t, create_graph=True)[0]
    grad = torch.autograd.grad(p.sum(), x, create_graph=True)[0]  # (64, d)
    lap = sum(torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0][:, i]
              for i in range(dim))
    assert torch.allclose(dp_dt, D * lap, rtol=1e-10, atol=1e-12)


def test_heat_kernel_bad_arguments():
    x = torch.zeros(3, 1)
    with pytest.raises(ValueError, match="t must be > 0"):
        physics.heat_kernel(x, 0.0, 1.0)
    with pytest.raises(ValueError, match="D_coef must be"):
        physics.heat_kernel(x, 1.0, -1.0)
    with pytest.raises(ValueError, match=r"x\[\.\.\., None\]"):
        physics.heat_kernel(torch.tensor(0.5), 1.0, 1.0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        physics.heat_kernel(np.zeros((3, 1)), 1.0, 1.0)


def test_histogram_density_matches_numpy():
    x = torch.randn(10_000, generator=gen(), dtype=torch.float64)
    edges = torch.linspace(-6, 6, 41, dtype=torch.float64)
    want, _ = np.histogram(x.numpy(), bins=edges.numpy(), density=True)
    np.testing.assert_allclose(physics.histogram_density(x, edges).numpy(), want, rtol=1e-12)
    # particles outside the range count in N: the histogram then integrates to the inside fraction
    narrow = torch.linspace(-1, 1, 11, dtype=torch.float64)
    inside = ((x >= -1) & (x < 1)).double().mean()
    assert (physics.histogram_density(x, narrow) * narrow.diff()).sum() == pytest.approx(inside.item())
    with pytest.raises(ValueError, match="increasing"):
        physics.histogram_density(x, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="at least one particle"):
        physics.histogram_density(torch.zeros(0), narrow)


# --- explicit heat solver ---------------------------------------------------------------------


def kernel_1d(grid, t, D):
    return physics.heat_kernel(grid[:, None], t, D)


def test_max_stable_dt():
    assert physics.max_stable_dt(0.1, 0.5) == pytest.approx(0.01)


@pytest.mark.parametrize("boundary", physics.BOUNDARIES)
def test_ftcs_matches_the_heat_kernel_with_second_order_convergence(boundary):
    """Start from the kernel at t=0.5, evolve to t=1.5, compare with the kernel at t=1.5.

    The domain [-10, 10] is wide enough that the boundary does not matter (p < 1e-10 there).
    """
    D, t0, t1 = 0.5, 0.5, 1.5
    errors = []
    for m in (101, 201, 401):
        grid = torch.linspace(-10, 10, m, dtype=torch.float64)
        dx = (grid[1] - grid[0]).item()
        p = physics.solve_heat_1d(kernel_1d(grid, t0, D), dx, D, [0.0, t1 - t0],
                                  boundary=boundary)
        assert p.shape == (2, m)
        assert torch.equal(p[0], kernel_1d(grid, t0, D))  # time 0 is the initial density
        errors.append((p[1] - kernel_1d(grid, t1, D)).abs().max().item())
    assert errors[0] < 2e-3
    assert errors[1] / errors[2] == pytest.approx(4.0, rel=0.15)  # O(Δx²) at fixed r


def test_ftcs_mass_conservation_per_boundary():
    grid = torch.linspace(-3, 3, 61, dtype=torch.float64)
    dx = (grid[1] - grid[0]).item()
    p0 = torch.exp(-((grid - 2.0) ** 2) / 0.1)  # near the right wall, so walls matter
    times = [0.0, 1.0, 4.0]
    mass = {b: physics.solve_heat_1d(p0, dx, 1.0, times, boundary=b).sum(-1) * dx
            for b in physics.BOUNDARIES}
    assert torch.allclose(mass["reflecting"], mass["reflecting"][0], rtol=1e-12)
    assert torch.allclose(mass["periodic"], mass["periodic"][0], rtol=1e-12)
    assert mass["absorbing"][1] < 0.9 * mass["absorbing"][0]
    assert mass["absorbing"][2] < mass["absorbing"][1]
    # reflecting: the long-time state is flat (slowest mode decays as exp(-D (π/L)² t) ~ 1e-6)
    late = physics.solve_heat_1d(p0, dx, 1.0, [50.0], boundary="reflecting")[0]
    assert torch.allclose(late, late.mean().expand_as(late), rtol=1e-4)


def test_ftcs_batches_and_lands_on_requested_times():
    grid = torch.linspace(-5, 5, 51, dtype=torch.float32)
    dx = (grid[1] - grid[0]).item()
    p0 = torch.stack([kernel_1d(grid, 0.3, 1.0), kernel_1d(grid - 1, 0.3, 1.0)])  # (2, 51)
    times = [0.0, 0.013, 0.5, 0.5, 1.0]
    p = physics.solve_heat_1d(p0, dx, 1.0, times, boundary="periodic")
    assert p.shape == (5, 2, 51) and p.dtype == torch.float32
    assert torch.equal(p[2], p[3])
    # the same times requested one by one give the same answer as requested together
    alone = physics.solve_heat_1d(p0[0], dx, 1.0, [1.0], boundary="periodic")[0]
    solo_err = (alone - kernel_1d(grid, 1.3, 1.0)).abs().max()
    assert solo_err < 5e-3 and (p[4, 0] - kernel_1d(grid, 1.3, 1.0)).abs().max() < 5e-3


def test_ftcs_refuses_unstable_steps_and_says_why():
    dx, D = 0.1, 0.5  # dt_max = 0.01
    p0 = torch.ones(20, dtype=torch.float64)
    with pytest.raises(ValueError) as info:
        physics.solve_heat_1d(p0, dx, D, [1.0], dt=0.02)
    msg = str(info.value)
    assert "D·Δt/Δx² ≤ 1/2" in msg and "dt <= 0.01" in msg and "= 1" in msg
    # at the bound it runs
    assert torch.isfinite(physics.solve_heat_1d(p0, dx, D, [1.0], dt=0.01)).all()


def test_the_stability_bound_is_real():
    """Why the guard exists: with r = 0.6 the same update blows up a tiny high-frequency ripple."""
    p = 1.0 + 1e-8 * (-1.0) ** torch.arange(64, dtype=torch.float64)
    for _ in range(200):
        p = p + 0.6 * (p.roll(1) - 2 * p + p.roll(-1))
    assert (p - 1).abs().max() > 1e3
    ok = physics.solve_heat_1d(1.0 + 1e-8 * (-1.0) ** torch.arange(64, dtype=torch.float64),
                               1.0, 1.0, [100.0], dt=0.5, boundary="periodic")
    assert (ok - 1).abs().max() < 1e-8


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(p0=[1.0, 2.0, 3.0]), TypeError, "torch.Tensor"),
    (dict(p0=torch.ones(2)), ValueError, "at least 3 grid points"),
    (dict(p0=torch.ones(5, dtype=torch.long)), TypeError, "floating-point"),
    (dict(boundary="dirichlet"), ValueError, "choose one of"),
    (dict(times=[1.0, 0.5]), ValueError, "non-decreasing"),
    (dict(times=[-1.0]), ValueError, ">= 0"),
    (dict(dx=0.0), ValueError, "dx must be"),
    (dict(D_coef=-1.0), ValueError, "D_coef must be"),
    (dict(dt=-0.1), ValueError, "dt must be"),
])
def test_solver_bad_arguments(kwargs, error, match):
    args = dict(p0=torch.ones(10, dtype=torch.float64), dx=0.1, D_coef=1.0, times=[0.1])
    args.update(kwargs)
    with pytest.raises(error, match=match):
        physics.solve_heat_1d(**args)


@pytest.mark.parametrize("call, error, match", [
    (lambda: physics.random_steps(5, 5, step="levy"), ValueError, "choose one of"),
    (lambda: physics.random_steps(0, 5), ValueError, "n_steps must be an int >= 1"),
    (lambda: physics.random_steps(5, 5.0), TypeError, "n_particles must be an int"),
    (lambda: physics.random_steps(5, 5, D_coef=0.0), ValueError, "D_coef must be"),
    (lambda: physics.random_walk(5, 10, save_every=3), ValueError, "multiple of save_every"),
    (lambda: physics.random_walk(5, 10, 2, x0=torch.zeros(3)), ValueError, "x0 must have shape"),
    (lambda: physics.mean_squared_displacement(torch.zeros(4, 5)), ValueError, r"x\[\.\.\., None\]"),
    (lambda: physics.mean_squared_displacement([1.0]), TypeError, "torch.Tensor"),
    (lambda: physics.fit_diffusion_constant(torch.zeros(3), torch.zeros(3)), ValueError, "non-zero"),
    (lambda: physics.fit_diffusion_constant(torch.ones(3), torch.ones(4)), ValueError, "same length"),
    (lambda: physics.einstein_msd(1.0, 0.5, dim=0), ValueError, "dim must be an int >= 1"),
])
def test_walk_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
