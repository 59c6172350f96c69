"""Our σ-ladder samplers reproduce diffusers' schedulers step for step (float64, same model, same noise).

diffusers works in the variance-preserving view: x_vp = √ᾱ x0 + √(1 − ᾱ) ε with an ε-prediction
model eps(x_vp, t). We work in the σ view: x = x_vp / √ᾱ, σ² = (1 − ᾱ)/ᾱ, with a denoiser D(x, σ).
The bridge used on the diffusers side: eps(x_vp, σ) = (x − D(x, σ))/σ with x = x_vp √(1 + σ²), so
that diffusers' own x0 prediction equals D. At σ = 0 (the end of every ladder) x = x_vp, so final
samples are compared directly. Schedulers are configured explicitly (defaults differ) and their
ᾱ / σ tables are cast to float64 so that both sides do the arithmetic in the same precision.
Measured here: DDIM (η = 0, 1), DDPM and Heun agree to ~1e-14; diffusers' Euler and DPM-Solver
steps cast the sample to float32 internally, so those agree to ~1e-6 — all within the 1e-5 asked.
"""

import pytest
import torch

from diffusion_lite import samplers, schedules

diffusers = pytest.importorskip("diffusers")
# diffusers calls np.array on our float64 ᾱ table; numpy 2 warns about its copy keyword.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

T, BETA = 1000, dict(beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
TOL = dict(rtol=0.0, atol=1e-5)


class TinyDenoiser(torch.nn.Module):
    """A fixed random MLP made into a denoiser with EDM-style skip/output scalings (any smooth
    D(x, σ) would do; this one is not Gaussian, so second-order terms matter)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = torch.randn(3, 32, generator=g, dtype=torch.float64)
        self.w2 = torch.randn(32, 2, generator=g, dtype=torch.float64) / 4

    def forward(self, x, sigma):
        c = (1 + sigma[:, None] ** 2).sqrt()                                 # (B, 1)
        h = torch.cat([x / c, sigma[:, None].log() / 4], dim=1) @ self.w1    # (B, 32)
        return x / c**2 + (sigma[:, None] / c) * (torch.tanh(h) @ self.w2)


DEN = TinyDenoiser()


def eps_model(x_vp, sigma):
    """The same model seen from diffusers: ε-prediction on the VP sample at noise level σ."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    x = x_vp * (1 + sigma**2).sqrt()
    return (x - DEN(x, sigma.expand(x.shape[0]))) / sigma


def z0(n=64, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def sigma_of_alpha_bar(a):
    return ((1 - a) / a).sqrt()


def vp_run(sched, sigma_of, n_steps, seed=None, **step_kw):
    """The standard diffusers loop; ``sigma_of(i, t)`` tells the ε-model the noise level."""
    sched.set_timesteps(n_steps)
    if hasattr(sched, "sigmas"):
        sched.sigmas = sched.sigmas.double()
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    x = z0() * sched.init_noise_sigma
    for i, t in enumerate(sched.timesteps):
        x_in = sched.scale_model_input(x, t)
        eps = eps_model(x_in, sigma_of(i, t))
        if gen is not None:
            step_kw["generator"] = gen
        x = sched.step(eps, t, x, **step_kw).prev_sample
    return x


def alpha_bar_scheduler(cls, **kw):
    sched = cls(num_train_timesteps=T, **BETA, **kw)
    sched.alphas_cumprod = sched.alphas_cumprod.double()
    return sched


def ladder_from_timesteps(sched):
    a = sched.alphas_cumprod[sched.timesteps.long()]
    return torch.cat([sigma_of_alpha_bar(a), torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers(eta):
    sched = alpha_bar_scheduler(diffusers.DDIMScheduler, clip_sample=False, set_alpha_to_one=True,
                                steps_offset=0, timestep_spacing="leading")
    ref = vp_run(sched, lambda i, t: sigma_of_alpha_bar(sched.alphas_cumprod[t]), 20, seed=1, eta=eta)
    sigmas = ladder_from_timesteps(sched)
    x = z0() / sched.alphas_cumprod[sched.timesteps[0]].sqrt()              # x_vp → x_σ
    ours = samplers.sample_ddim(DEN, x, sigmas, eta=eta, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours, ref, **TOL)


def test_ddpm_ancestral_matches_diffusers():
    sched = alpha_bar_scheduler(diffusers.DDPMScheduler, clip_sample=False, variance_type="fixed_small",
                                timestep_spacing="leading", steps_offset=0)
    ref = vp_run(sched, lambda i, t: sigma_of_alpha_bar(sched.alphas_cumprod[t]), 50, seed=2)
    sigmas = ladder_from_timesteps(sched)
    x = z0() / sched.alphas_cumprod[sched.timesteps[0]].sqrt()
    ours = samplers.sample_ddpm(DEN, x, sigmas, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(ours, ref, **TOL)


@pytest.mark.parametrize("n_steps", [10, 25])
def test_dpmpp_2m_matches_diffusers(n_steps):
    sched = alpha_bar_scheduler(diffusers.DPMSolverMultistepScheduler, algorithm_type="dpmsolver++",
                                solver_order=2, solver_type="midpoint", final_sigmas_type="zero",
                                lower_order_final=True)
    ref = vp_run(sched, lambda i, t: sched.sigmas[i], n_steps)
    sigmas = sched.sigmas
    x = z0() * (1 + sigmas[0] ** 2).sqrt()
    ours = samplers.sample_dpmpp_2m(DEN, x, sigmas)
    torch.testing.assert_close(ours, ref, **TOL)


@pytest.mark.parametrize("name,cls", [("euler", "EulerDiscreteScheduler"),
                                      ("heun", "HeunDiscreteScheduler")])
def test_karras_ode_solvers_match_diffusers(name, cls):
    sched = alpha_bar_scheduler(getattr(diffusers, cls), prediction_type="epsilon",
                                timestep_spacing="linspace")
    ref = vp_run(sched, lambda i, t: sched.sigmas[sched.step_index], 15)
    sigmas = sched.sigmas.unique_consecutive()                              # Heun repeats each σ
    assert len(sigmas) == 16 and sigmas[-1] == 0
    x = z0() * sched.init_noise_sigma
    ours = samplers.sample(name, DEN, x, sigmas)
    torch.testing.assert_close(ours, ref, **TOL)
    # The comparison has power: the other solver on the same ladder is far off.
    other = samplers.sample("heun" if name == "euler" else "euler", DEN, x, sigmas)
    assert (other - ref).abs().max() > 1e-3


def test_parity_is_tight_not_just_under_tolerance():
    """With float64 on both sides the deterministic samplers agree to ~1e-12, far below 1e-5."""
    sched = alpha_bar_scheduler(diffusers.DDIMScheduler, clip_sample=False, set_alpha_to_one=True,
                                steps_offset=0, timestep_spacing="leading")
    ref = vp_run(sched, lambda i, t: sigma_of_alpha_bar(sched.alphas_cumprod[t]), 20, eta=0.0)
    x = z0() / sched.alphas_cumprod[sched.timesteps[0]].sqrt()
    ours = samplers.sample_ddim(DEN, x, ladder_from_timesteps(sched))
    assert (ours - ref).abs().max() < 1e-10


# ----------------------------------------------------------------------------- DDIM with 0 < η < 1
@pytest.mark.parametrize("eta", [0.3, 0.7])
def test_ddim_partial_eta_matches_diffusers_with_shared_noise(eta):
    """Both sides draw their fresh noise from the same generator in the same order (one float64
    draw per step but the last), so a stochastic DDIM step must agree value for value."""
    sched = alpha_bar_scheduler(diffusers.DDIMScheduler, clip_sample=False, set_alpha_to_one=True,
                                steps_offset=0, timestep_spacing="leading")
    ref = vp_run(sched, lambda i, t: sigma_of_alpha_bar(sched.alphas_cumprod[t]), 20, seed=4, eta=eta)
    sigmas = ladder_from_timesteps(sched)
    x = z0() / sched.alphas_cumprod[sched.timesteps[0]].sqrt()
    ours = samplers.sample_ddim(DEN, x, sigmas, eta=eta, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(ours, ref, **TOL)
    # Power: another η, or other noise, is far off.
    other = samplers.sample_ddim(DEN, x, sigmas, eta=eta / 2, generator=torch.Generator().manual_seed(4))
    assert (other - ref).abs().max() > 1e-2
    other = samplers.sample_ddim(DEN, x, sigmas, eta=eta, generator=torch.Generator().manual_seed(5))
    assert (other - ref).abs().max() > 1e-2


# ----------------------------------------------------------------------------- Karras ladders
@pytest.mark.parametrize("cls", ["EulerDiscreteScheduler", "DPMSolverMultistepScheduler"])
def test_karras_ladder_matches_diffusers_use_karras_sigmas(cls):
    kw = dict(algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint",
              final_sigmas_type="zero") if cls.startswith("DPM") else dict(timestep_spacing="linspace")
    sched = alpha_bar_scheduler(getattr(diffusers, cls), use_karras_sigmas=True, **kw)
    sched.set_timesteps(12)
    theirs = sched.sigmas.double()
    ours = schedules.karras_sigmas(12, float(theirs[-2]), float(theirs[0]), rho=7.0)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)
    # ρ matters: the evenly spaced ladder between the same ends is far off.
    assert (schedules.karras_sigmas(12, float(theirs[-2]), float(theirs[0]), rho=1.0)
            - theirs).abs().max() > 1


@pytest.mark.parametrize("name,cls", [("euler", "EulerDiscreteScheduler"),
                                      ("dpmpp_2m", "DPMSolverMultistepScheduler")])
def test_samplers_on_a_karras_ladder_match_diffusers(name, cls):
    kw = dict(algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint",
              final_sigmas_type="zero", lower_order_final=True) if name == "dpmpp_2m" else dict(
        timestep_spacing="linspace", prediction_type="epsilon")
    sched = alpha_bar_scheduler(getattr(diffusers, cls), use_karras_sigmas=True, **kw)
    sigma_at = (lambda i, t: sched.sigmas[sched.step_index]) if name == "euler" else (
        lambda i, t: sched.sigmas[i])
    ref = vp_run(sched, sigma_at, 12)
    sigmas = sched.sigmas
    x = z0() * (sched.init_noise_sigma if name == "euler" else (1 + sigmas[0] ** 2).sqrt())
    ours = samplers.sample(name, DEN, x, sigmas)
    torch.testing.assert_close(ours, ref, **TOL)


# ----------------------------------------------------------------------------- Euler with churn
def const_eps_denoiser(x, sigma):
    """D(x, σ) = x − σ c: its ε = (x − D)/σ = c is the same at every x and σ. diffusers' Euler
    evaluates the model *before* adding the churn noise (at x, σ), EDM's Algorithm 2 after it (at
    x̂, σ̂); for this model both give the same slope, so everything else — γ, the S_tmin/S_tmax
    window, S_noise, the order of the noise draws — can be compared exactly."""
    return x - sigma[:, None] * torch.tensor([0.7, -1.3], dtype=x.dtype)


@pytest.mark.parametrize("churn", [
    dict(s_churn=5.0),                                              # every rung
    dict(s_churn=40.0, s_tmin=0.5, s_tmax=5.0),                     # a window; γ capped at √2 − 1
    dict(s_churn=8.0, s_tmin=0.1, s_tmax=20.0, s_noise=1.007),      # EDM's S_noise
])
def test_euler_churn_matches_diffusers(churn):
    sched = alpha_bar_scheduler(diffusers.EulerDiscreteScheduler, prediction_type="epsilon",
                                timestep_spacing="linspace", use_karras_sigmas=True)
    sched.set_timesteps(15)
    sched.sigmas = sched.sigmas.double()
    gen = torch.Generator().manual_seed(9)
    x = z0() * sched.init_noise_sigma
    for t in sched.timesteps:
        sched.scale_model_input(x, t)                               # sets the step index
        sigma = sched.sigmas[sched.step_index]
        eps = (x - const_eps_denoiser(x, sigma.expand(x.shape[0]))) / sigma
        x = sched.step(eps, t, x, generator=gen, **churn).prev_sample
    start_x = z0() * sched.sigmas[0]
    ours = samplers.sample_euler(const_eps_denoiser, start_x, sched.sigmas,
                                 generator=torch.Generator().manual_seed(9), **churn)
    torch.testing.assert_close(ours, x.double(), rtol=1e-6, atol=1e-5)  # diffusers: float32
    plain = samplers.sample_euler(const_eps_denoiser, start_x, sched.sigmas)
    assert (plain - ours).abs().max() > 0.1, "the churn noise must actually enter"
    window = {k: v for k, v in churn.items() if k != "s_tmax"} | {"s_tmax": 1e-3}
    shut = samplers.sample_euler(const_eps_denoiser, start_x, sched.sigmas,
                                 generator=torch.Generator().manual_seed(9), **window)
    torch.testing.assert_close(shut, plain, rtol=0, atol=1e-12)   # a closed window: no churn


def test_euler_churn_differs_from_diffusers_where_edm_says_so():
    """For a model whose slope depends on x, EDM's Algorithm 2 (denoise the churned x̂ at σ̂) and
    diffusers' Euler (denoise x at σ, then add the churn) are different algorithms."""
    sched = alpha_bar_scheduler(diffusers.EulerDiscreteScheduler, prediction_type="epsilon",
                                timestep_spacing="linspace")
    ref = vp_run(sched, lambda i, t: sched.sigmas[sched.step_index], 15, seed=3, s_churn=5.0)
    ours = samplers.sample_euler(DEN, z0() * sched.init_noise_sigma, sched.sigmas.double(),
                                 generator=torch.Generator().manual_seed(3), s_churn=5.0)
    assert (ours - ref).abs().max() > 1e-3


# ----------------------------------------------------------------------------- the PC corrector
def pc_reference(x, sigmas, snr, n_corrector, seed):
    """Song et al.'s predictor-corrector with diffusers' ScoreSdeVeScheduler doing every step:
    ``step_pred`` on our ladder (its discrete σ table replaced by ours), then ``step_correct``
    ``n_corrector`` times at the new level. Float32, as diffusers draws its corrector noise."""
    levels = sigmas[:-1].flip(0).float()                        # ascending nonzero σ's
    sched = diffusers.ScoreSdeVeScheduler(snr=snr, correct_steps=n_corrector)
    sched.set_timesteps(len(levels))
    sched.discrete_sigmas = levels
    gen = torch.Generator().manual_seed(seed)
    k_top = len(levels) - 1
    for i in range(len(levels)):
        k = k_top - i                                           # index of σ_i in `levels`
        score = (DEN32(x, levels[k].expand(x.shape[0])) - x) / levels[k] ** 2
        out = sched.step_pred(score, (k + 0.5) / k_top, x, generator=gen)
        if k == 0:
            return out.prev_sample_mean                         # last step: no noise, land on D
        x = out.prev_sample
        for _ in range(n_corrector):
            score = (DEN32(x, levels[k - 1].expand(x.shape[0])) - x) / levels[k - 1] ** 2
            x = sched.step_correct(score, x, generator=gen).prev_sample
    return x


def DEN32(x, sigma):
    return DEN(x.double(), sigma.double()).float()


@pytest.mark.parametrize("n_corrector,snr", [(1, 0.16), (2, 0.3)])
def test_pc_sampler_matches_diffusers_score_sde_ve_step_for_step(n_corrector, snr):
    sigmas = schedules.karras_sigmas(8, 0.05, 20.0)
    x = (z0(seed=6) * 20.0).float()
    ref = pc_reference(x, sigmas, snr, n_corrector, seed=6)
    ours = samplers.sample_pc(DEN32, x, sigmas.float(), generator=torch.Generator().manual_seed(6),
                              n_corrector=n_corrector, snr=snr)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_pc_reference_rejects_a_missing_or_misscaled_corrector():
    """The comparison above has power: without the corrector, with half its steps, or with a
    step size off by a factor 2 (snr × √2) the result is far from diffusers'."""
    sigmas = schedules.karras_sigmas(8, 0.05, 20.0)
    x = (z0(seed=6) * 20.0).float()
    ref = pc_reference(x, sigmas, 0.16, 2, seed=6)
    for kw in (dict(n_corrector=0), dict(n_corrector=1), dict(n_corrector=2, snr=0.16 * 2**0.5)):
        other = samplers.sample_pc(DEN32, x, sigmas.float(),
                                   generator=torch.Generator().manual_seed(6), **kw)
        assert (other - ref).abs().max() > 1e-2, kw
