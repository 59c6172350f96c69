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

from diffusion_lite import samplers

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
