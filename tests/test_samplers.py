"""Samplers against closed forms: Gaussian data has an exact denoiser and an exact ODE map."""

import math

import numpy as np
import pytest
import torch

from diffusion_lite import samplers

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
S2 = torch.tensor([0.25, 2.0], dtype=torch.float64)          # per-dimension data variance s²


def gauss_denoiser(x, sigma):
    """E[x0 | x_σ] for x0 ~ N(μ, diag s²): μ + s²/(s² + σ²) (x − μ)."""
    sigma2 = sigma[:, None] ** 2                               # (B, 1)
    return MU + S2 / (S2 + sigma2) * (x - MU)


def ode_map(x, sigma_from, sigma_to):
    """The probability-flow ODE keeps (x − μ)/√(s² + σ²) constant: the exact map between levels."""
    return MU + ((S2 + sigma_to**2) / (S2 + sigma_from**2)).sqrt() * (x - MU)


def karras(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, s.new_zeros(1)])


def start(n=64, sigma_max=80.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return sigma_max * torch.randn(n, 2, generator=g, dtype=torch.float64)


def exact_result(x, sigmas):
    """Every sampler's last step (to σ = 0) is x0_hat = D(x, σ_{N−1}): so the exact answer is the
    ODE map down to σ_{N−1} followed by D there; the gap is pure discretisation error."""
    s_last = sigmas[-2]
    return gauss_denoiser(ode_map(x, sigmas[0], s_last), s_last.expand(x.shape[0]))


def ode_error(name, n, **kw):
    sigmas = karras(n)
    x = start()
    out = samplers.sample(name, gauss_denoiser, x, sigmas, **kw)
    return float((out - exact_result(x, sigmas)).abs().max())


@pytest.mark.parametrize("name,order", [("euler", 1), ("ddim", 1), ("heun", 2), ("dpmpp_2m", 2)])
def test_convergence_order_on_exact_gaussian_ode(name, order):
    ns = [16, 32, 64, 128]
    errs = [ode_error(name, n) for n in ns]
    slopes = -np.diff(np.log(errs)) / np.diff(np.log(ns))
    # Asymptotic order: the last slope within 0.25 of the theory; errors keep shrinking.
    assert abs(slopes[-1] - order) < 0.25, (name, errs, slopes)
    assert all(s > order - 0.5 for s in slopes), (name, errs, slopes)


def test_second_order_solvers_are_accurate_at_moderate_steps():
    """At 64 steps from σ = 80 the second-order solvers are >= 10x closer than Euler."""
    euler = ode_error("euler", 64)
    assert ode_error("heun", 64) < min(0.02, euler / 10)
    assert ode_error("dpmpp_2m", 64) < min(0.02, euler / 10)


def test_ddim_eta0_is_euler_and_eta1_is_ddpm():
    sigmas, x = karras(12), start()
    a = samplers.sample_ddim(gauss_denoiser, x, sigmas, eta=0.0)
    b = samplers.sample_euler(gauss_denoiser, x, sigmas)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    a = samplers.sample_ddim(gauss_denoiser, x, sigmas, eta=1.0, generator=torch.Generator().manual_seed(3))
    b = samplers.sample_ddpm(gauss_denoiser, x, sigmas, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,kw", [("ddpm", {}), ("ddim", {"eta": 1.0}), ("pc", {}),
                                     ("euler", {"s_churn": 10.0}), ("heun", {"s_churn": 10.0}),
                                     ("euler", {"s_churn": 80.0, "s_tmin": 0.05, "s_tmax": 50.0})])
def test_stochastic_samplers_reach_the_data_distribution(name, kw):
    """With 400 steps, mean and variance of 4000 samples match N(μ, s²) within 5 standard errors
    (plus 6% of s² for the variance: the discretisation bias left at 400 steps)."""
    n = 4000
    x = start(n, seed=1)
    out = samplers.sample(name, gauss_denoiser, x, karras(400),
                          generator=torch.Generator().manual_seed(2), **kw)
    se_mean = (S2 / n).sqrt()
    se_var = S2 * math.sqrt(2 / n)
    assert ((out.mean(0) - MU).abs() < 5 * se_mean).all(), out.mean(0)
    assert ((out.var(0) - S2).abs() < 5 * se_var + 0.06 * S2).all(), out.var(0)


@pytest.mark.parametrize("name", sorted(samplers.SAMPLERS))
def test_same_seed_same_samples_and_nfe_count(name):
    sigmas, x = karras(8), start(16)
    calls, infos = [], []

    def counting(x, sigma):
        calls.append(1)
        return gauss_denoiser(x, sigma)

    a = samplers.sample(name, counting, x, sigmas, generator=torch.Generator().manual_seed(5),
                        callback=infos.append)
    b = samplers.sample(name, gauss_denoiser, x, sigmas, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert len(calls) == samplers.nfe_of(name, 8) == infos[-1]["nfe"]
    assert [d["i"] for d in infos] == list(range(8))
    assert set(infos[0]) == {"i", "sigma", "sigma_next", "x", "x0_hat", "nfe"}
    assert torch.equal(infos[-1]["x"], a)


def test_stochastic_samplers_depend_on_the_seed():
    sigmas, x = karras(8), start(16)
    for name in ("ddpm", "pc"):
        a = samplers.sample(name, gauss_denoiser, x, sigmas, generator=torch.Generator().manual_seed(0))
        b = samplers.sample(name, gauss_denoiser, x, sigmas, generator=torch.Generator().manual_seed(1))
        assert not torch.allclose(a, b)


def test_works_on_images_and_float32_with_the_right_values():
    """Images (B, 1, 4, 4) of N(0, I) data in float32: every sampler's last step lands exactly on
    D(x, σ_{N−1}) (so ``return x`` fails), the deterministic ones agree with the exact ODE map, and
    every sampler's 2000 samples have mean 0 and variance 1 per pixel (5 standard errors plus the
    discretisation bias at 40 steps: 2% for the second-order solvers, 20% for the first-order ones;
    measured 0.2%, and 4–16%)."""
    x = 10 * torch.randn(2000, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    den = lambda x, s: x / (1 + s.reshape(-1, 1, 1, 1) ** 2)  # noqa: E731  (N(0, 1) data)
    sigmas = karras(40, sigma_max=10.0).float()
    exact = x / ((1 + sigmas[-2] ** 2) * (1 + 10.0**2)).sqrt()     # ODE map to σ_{N−1}, then D
    for name in samplers.SAMPLERS:
        last = []
        out = samplers.sample(name, den, x, sigmas, generator=torch.Generator().manual_seed(0),
                              callback=lambda info: last.append(info))
        assert out.shape == x.shape and out.dtype == torch.float32
        before = last[-2]["x"]                                        # x at σ_{N−1}
        torch.testing.assert_close(out, den(before, sigmas[-2].expand(len(x))), rtol=0, atol=1e-6)
        assert abs(float(out.mean())) < 5 / math.sqrt(out.numel()), name
        bias = 0.02 if name in ("heun", "dpmpp_2m") else 0.2          # 2nd vs 1st order at 40 steps
        assert abs(float(out.var()) - 1) < bias + 5 * math.sqrt(2 / out.numel()), name
        if name in ("euler", "heun", "dpmpp_2m"):
            rtol = 0.06 if name == "euler" else 5e-3                   # 1st order: 4% measured
            torch.testing.assert_close(out, exact, rtol=rtol, atol=1e-4)


def test_exact_ode_map_through_a_mixture_oracle():
    """With the exact mixture denoiser, Heun and DPM-Solver++(2M) on fine ladders agree with each
    other to 1e-4 (two different second-order schemes converge to the one exact ODE solution),
    while a 10-step Euler run is visibly off: the map is a value, not just a shape."""
    from diffusion_lite import mixtures, schedules

    gm = mixtures.ring()
    x = 20.0 * torch.randn(300, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = samplers.sample_heun(gm, x, schedules.karras_sigmas(400, 0.002, 20.0))
    b = samplers.sample_dpmpp_2m(gm, x, schedules.karras_sigmas(800, 0.002, 20.0))
    assert float((a - b).norm(dim=1).max()) < 1e-3
    c = samplers.sample_euler(gm, x, schedules.karras_sigmas(10, 0.002, 20.0))
    assert float((c - a).norm(dim=1).mean()) > 0.05


@pytest.mark.parametrize("sigmas,match", [
    (torch.tensor([]), "at least 2"),
    (torch.tensor([1.0]), "at least 2"),
    (torch.tensor([1.0, 2.0, 0.0]), "strictly decreasing"),
    (torch.tensor([2.0, 2.0, 0.0]), "strictly decreasing"),
    (torch.tensor([2.0, 1.0]), "end in 0"),
    (torch.tensor([float("nan"), 0.0]), "finite"),
    (torch.tensor([[2.0, 0.0]]), "1-D"),
])
def test_bad_ladders_are_refused(sigmas, match):
    with pytest.raises(ValueError, match=match):
        samplers.sample_euler(gauss_denoiser, start(4), sigmas.double())


def test_errors_name_the_fix():
    x, sigmas = start(4), karras(4)
    with pytest.raises(ValueError, match="unknown sampler 'eulr'; choose one of"):
        samplers.sample("eulr", gauss_denoiser, x, sigmas)
    with pytest.raises(ValueError, match="shape of x"):
        samplers.sample_heun(lambda x, s: x[:, :1], x, sigmas)
    with pytest.raises(ValueError, match="NaN"):
        samplers.sample_dpmpp_2m(lambda x, s: x * float("nan"), x, sigmas)
    with pytest.raises(ValueError, match="NaN"):
        samplers.sample_euler(gauss_denoiser, x * float("nan"), sigmas)
    with pytest.raises(ValueError, match="eta"):
        samplers.sample_ddim(gauss_denoiser, x, sigmas, eta=2.0)
    with pytest.raises(TypeError, match="callable"):
        samplers.sample_ddpm("not a model", x, sigmas)
    with pytest.raises(TypeError, match="floating point"):
        samplers.sample_ddpm(gauss_denoiser, torch.ones(4, 2, dtype=torch.long), sigmas)
    with pytest.raises(TypeError):
        samplers.sample("euler", gauss_denoiser, x, sigmas, etta=0.5)


def test_steps_for_nfe_spends_the_budget():
    assert samplers.steps_for_nfe("euler", 10) == 10
    assert samplers.steps_for_nfe("heun", 35) == 18 and samplers.nfe_of("heun", 18) == 35
    assert samplers.steps_for_nfe("heun", 10) == 5 and samplers.nfe_of("heun", 5) == 9
    assert samplers.steps_for_nfe("pc", 20, n_corrector=2) == 7          # 7 + 2·6 = 19
    with pytest.raises(ValueError, match="unknown sampler"):
        samplers.steps_for_nfe("heunn", 10)
