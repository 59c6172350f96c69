"""Schedules: endpoints, monotonicity, conversions between views, σ ladders, errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffusion_lite import schedules as S
from diffusion_lite import schedules


@pytest.mark.parametrize("name", S.SCHEDULES)
@pytest.mark.parametrize("T", [50, 1000])
def test_every_schedule_is_float64_monotone_and_ends_near_pure_noise(name, T):
    betas = S.get_betas(name, T)
    ab = S.get_alpha_bar(name, T)
    assert betas.dtype == ab.dtype == torch.float64 and ab.shape == (T,)
    assert bool(torch.all((betas > 0) & (betas < 1)))
    assert bool(torch.all(ab[1:] < ab[:-1])), "ᾱ must decrease strictly"
    assert ab[0] > 0.98, f"the first step must keep almost all signal, ᾱ_1 = {ab[0]:.4f}"
    assert ab[-1] < 1e-3, f"the last step must be almost pure noise, ᾱ_T = {ab[-1]:.2e}"
    torch.testing.assert_close(S.alpha_bar_from_betas(betas), ab)
    torch.testing.assert_close(S.betas_from_alpha_bar(ab), betas)


def test_linear_schedule_matches_ho_et_al_at_T_1000():
    betas = S.get_betas("linear", 1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    # Ho et al. 2020 report ᾱ_T ≈ 4e-5 for this schedule (L_T ≈ 1e-5 bits per dim).
    assert 3e-5 < S.get_alpha_bar("linear", 1000)[-1].item() < 5e-5


def test_cosine_schedule_follows_its_formula_away_from_the_clip():
    T, s = 1000, 0.008
    ab = S.get_alpha_bar("cosine", T, s=s)
    t = torch.arange(1, T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    torch.testing.assert_close(ab[:-20], (f / f0)[:-20])  # the last steps are clipped at β = 0.999


def test_sigmoid_schedule_is_symmetric_in_log_snr_for_symmetric_range():
    ab = S.get_alpha_bar("sigmoid", 1000, start=-3.0, end=3.0, tau=1.0)
    assert abs(ab[499].item() - 0.5) < 0.01  # mid-point of a symmetric sigmoid is ᾱ = 1/2


def test_unknown_names_and_bad_parameters_name_the_fix():
    with pytest.raises(ValueError, match=r"unknown schedule 'quadratic'.*linear.*cosine.*sigmoid"):
        S.get_alpha_bar("quadratic", 100)
    with pytest.raises(ValueError, match="T must be an int >= 1"):
        S.get_alpha_bar("cosine", 0)
    with pytest.raises(TypeError, match="T must be an int"):
        S.get_alpha_bar("cosine", 10.0)
    with pytest.raises(ValueError, match=r"β_T = 2 >= 1; use T > 20"):
        S.get_betas("linear", 10)
    with pytest.raises(ValueError, match=r"open interval \(0, 1\)"):
        S.alpha_bar_from_betas(torch.tensor([0.1, 1.2]))
    with pytest.raises(ValueError, match="strictly decreasing.*step 2"):
        S.betas_from_alpha_bar(torch.tensor([0.9, 0.95, 0.5]))
    with pytest.raises(TypeError, match=r"takes parameters \['s'\]"):
        S.get_betas("cosine", 10, beta_end=0.1)
    with pytest.raises(ValueError, match="sigma must be finite"):
        S.alpha_bar_from_sigma(-1.0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        S.sigma_from_alpha_bar(0.0)


def test_sigma_snr_and_log_snr_agree():
    ab = S.get_alpha_bar("cosine", 200)
    sigma = S.sigma_from_alpha_bar(ab)
    torch.testing.assert_close(S.snr(ab), 1 / sigma**2)
    torch.testing.assert_close(S.log_snr(ab), -2 * torch.log(sigma))
    torch.testing.assert_close(S.alpha_bar_from_sigma(sigma), ab)
    assert bool(torch.all(S.log_snr(ab)[1:] < S.log_snr(ab)[:-1]))


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-12, max_value=1.0, exclude_min=False))
def test_alpha_bar_to_sigma_round_trip(ab):
    back = S.alpha_bar_from_sigma(S.sigma_from_alpha_bar(ab)).item()
    assert back == pytest.approx(ab, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e5) | st.just(0.0))
def test_sigma_to_alpha_bar_round_trip(sigma):
    # below σ ≈ 1e-3, ᾱ = 1/(1 + σ²) is within 1e-6 of 1 and float64 keeps only ~10 digits of σ²
    back = S.sigma_from_alpha_bar(S.alpha_bar_from_sigma(sigma)).item()
    assert back == pytest.approx(sigma, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1 - 1e-6))
def test_log_snr_is_logit_of_alpha_bar(ab):
    assert S.log_snr(ab).item() == pytest.approx(math.log(ab / (1 - ab)), rel=1e-9, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 300), st.floats(1e-4, 1.0), st.floats(1.0, 200.0), st.floats(0.5, 10.0))
def test_karras_ladder_is_decreasing_and_hits_both_ends(n, smin, smax, rho):
    sig = S.karras_sigmas(n, smin, smax, rho)
    assert sig.shape == (n + 1,) and sig[-1].item() == 0.0
    assert sig[0].item() == pytest.approx(smax, rel=1e-9)
    assert sig[-2].item() == pytest.approx(smin, rel=1e-9)
    assert bool(torch.all(sig[1:] <= sig[:-1]))


def test_karras_rho_1_is_evenly_spaced_and_errors():
    torch.testing.assert_close(S.karras_sigmas(5, 1.0, 5.0, rho=1.0),
                               torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        S.karras_sigmas(0)
    with pytest.raises(ValueError, match="sigma_min <= sigma_max"):
        S.karras_sigmas(10, 5.0, 1.0)


def test_schedule_sigmas_walk_down_the_discrete_chain():
    sig = S.schedule_sigmas("linear", 1000)
    ab = S.get_alpha_bar("linear", 1000)
    assert sig.shape == (1001,) and sig[-1].item() == 0.0
    assert bool(torch.all(sig[1:] < sig[:-1]))
    assert sig[0].item() == pytest.approx(math.sqrt((1 - ab[-1].item()) / ab[-1].item()))


def test_linear_schedule_matches_diffusers():
    from diffusers import DDPMScheduler

    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").alphas_cumprod
    torch.testing.assert_close(S.get_alpha_bar("linear", 1000).float(), ref, rtol=1e-5, atol=1e-7)


def test_cosine_schedule_matches_diffusers():
    from diffusers import DDPMScheduler

    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").alphas_cumprod
    torch.testing.assert_close(S.get_alpha_bar("cosine", 1000).float(), ref, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- σ ladders
def test_log_uniform_ladder_has_equal_steps_in_lambda():
    s = schedules.log_uniform_sigmas(9, 0.01, 50.0)
    assert s.dtype == torch.float64 and s.shape == (10,) and s[-1] == 0
    assert s[0] == 50.0 and s[-2] == 0.01                               # exact ends
    dlam = torch.diff(-torch.log(s[:-1]))                               # Δλ, λ = −log σ
    torch.testing.assert_close(dlam, torch.full_like(dlam, math.log(5000) / 8), rtol=1e-12, atol=0)
    # the limit ρ → ∞ of the Karras ladder
    torch.testing.assert_close(schedules.karras_sigmas(9, 0.01, 50.0, rho=1e5), s, rtol=1e-3, atol=0)
    assert torch.equal(schedules.log_uniform_sigmas(1, 0.01, 50.0), torch.tensor([50.0, 0.0],
                                                                                 dtype=torch.float64))


def test_log_uniform_ladder_matches_diffusers_exponential_sigmas():
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.EulerDiscreteScheduler(num_train_timesteps=1000, use_exponential_sigmas=True,
                                             timestep_spacing="linspace")
    sched.set_timesteps(10)
    theirs = sched.sigmas.double()
    ours = schedules.log_uniform_sigmas(10, float(theirs[-2]), float(theirs[0]))
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)


def test_data_ladder_scales_with_sigma_data_and_default_is_the_benchmark_choice():
    s = schedules.data_sigmas(12, 2.0, min_factor=0.01, max_factor=10.0, rho=7.0)
    torch.testing.assert_close(s, schedules.karras_sigmas(12, 0.02, 20.0, 7.0), rtol=0, atol=0)
    # twice the data scale: the same ladder, twice as large
    torch.testing.assert_close(schedules.data_sigmas(12, 4.0), 2 * schedules.data_sigmas(12, 2.0),
                               rtol=1e-12, atol=0)
    d = schedules.DEFAULT_LADDER
    torch.testing.assert_close(schedules.default_sigmas(12, 1.3),
                               schedules.karras_sigmas(12, d["min_factor"] * 1.3,
                                                       d["max_factor"] * 1.3, d["rho"]))


@pytest.mark.parametrize("call,match", [
    (lambda: schedules.log_uniform_sigmas(5, 1.0, 0.5), "sigma_min <= sigma_max"),
    (lambda: schedules.log_uniform_sigmas(5, 0.0, 1.0), "sigma_min <= sigma_max"),
    (lambda: schedules.log_uniform_sigmas(5, 0.1, float("inf")), "finite"),
    (lambda: schedules.log_uniform_sigmas(0, 0.1, 1.0), "n"),
    (lambda: schedules.data_sigmas(5, -1.0), "sigma_data"),
    (lambda: schedules.data_sigmas(5, 1.0, min_factor=2.0, max_factor=1.0), "min_factor"),
])
def test_ladders_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_data_ladder_with_infinite_rho_is_uniform_in_log_sigma():
    torch.testing.assert_close(schedules.data_sigmas(7, 1.5, rho=math.inf),
                               schedules.log_uniform_sigmas(7, 0.015, 15.0), rtol=1e-12, atol=0)
