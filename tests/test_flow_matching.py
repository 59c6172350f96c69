"""Flow matching against the exact mixture oracle: conversions, change of variables, wrapper, loss."""

import math

import pytest
import torch

from diffusion_lite import flow_matching as fm
from diffusion_lite import mixtures, samplers
from diffusion_lite.models import MLP

F64 = dict(dtype=torch.float64)


def _setup(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    mix = mixtures.lopsided()  # diagonal covariances, unequal weights
    x0 = mix.sample(n, generator=g, dtype=torch.float64)
    eps = torch.randn(n, 2, generator=g, **F64)
    return mix, x0, eps, g


def _per_component_velocity(mix, x_t, t, path):
    """E[ȧ x₀ + ḃ ε | x_t] computed per component (Gaussian conditionals), independently of convert."""
    a, b, da, db = fm.path_coefficients(torch.tensor(t, **F64), path)
    r = mix.noised(float(b), float(a)).responsibilities(x_t, 0.0)  # (B, K)
    mu, v = mix.means, mix.variances  # (K, d)
    var = a**2 * v + b**2  # (K, d) variance of x_t given k
    resid = x_t[:, None, :] - a * mu  # (B, K, d)
    x0_k = mu + a * v / var * resid
    eps_k = b / var * resid
    return (r[..., None] * (da * x0_k + db * eps_k)).sum(1)


@pytest.mark.parametrize("path", fm.PATHS)
@pytest.mark.parametrize("t", [0.05, 0.4, 0.93])
def test_conversions_match_the_oracle(path, t):
    mix, x0, eps, _ = _setup()
    a, b, _, _ = fm.path_coefficients(torch.tensor(t, **F64), path)
    x_t = a * x0 + b * eps
    x0_hat = mix.denoise(x_t / a, b / a)
    score = mix.noised(float(b), float(a)).score(x_t, 0.0)  # ∇ log p_t, straight from the oracle
    u = _per_component_velocity(mix, x_t, t, path)
    assert torch.allclose(fm.convert(x0_hat, "x0", "score", x_t, t, path), score, atol=1e-10, rtol=0)
    assert torch.allclose(fm.convert(x0_hat, "x0", "velocity", x_t, t, path), u, atol=1e-10, rtol=0)
    assert torch.allclose(fm.oracle_velocity(mix, x_t, t, path), u, atol=1e-10, rtol=0)
    values = {"x0": x0_hat, "score": score, "velocity": u,
              "eps": fm.convert(x0_hat, "x0", "eps", x_t, t, path)}
    for src in fm.KINDS:
        for dst in fm.KINDS:
            got = fm.convert(values[src], src, dst, x_t, torch.full((len(x_t),), t, **F64), path)
            assert torch.allclose(got, values[dst], atol=1e-10, rtol=1e-10), (src, dst)


def test_oracle_velocity_solves_the_continuity_equation():
    """∂_t log p_t + ∇·u + u·∇ log p_t = 0: the field really transports p_t (finite differences)."""
    mix, x0, eps, _ = _setup(n=16)
    t, h = 0.35, 1e-5
    x = 0.65 * x0 + 0.35 * eps

    def log_p(x, t):
        return mix.noised(t, 1 - t).log_prob(x, 0.0)

    dlogp_dt = (log_p(x, t + h) - log_p(x, t - h)) / (2 * h)
    u = fm.oracle_velocity(mix, x, t)
    div = sum((fm.oracle_velocity(mix, x + h * e, t) - fm.oracle_velocity(mix, x - h * e, t))[:, i]
              for i, e in enumerate(torch.eye(2, **F64))) / (2 * h)
    score = mix.noised(t, 1 - t).score(x, 0.0)
    residual = dlogp_dt + div + (u * score).sum(1)
    assert residual.abs().max() < 1e-5


def test_sigma_and_t_are_inverse_and_match_the_closed_forms():
    t = torch.linspace(0.01, 0.99, 50, **F64)
    for path in fm.PATHS:
        assert torch.allclose(fm.t_of_sigma(fm.sigma_of_t(t, path), path), t, atol=1e-12)
    assert torch.allclose(fm.sigma_of_t(t), t / (1 - t))
    assert torch.allclose(fm.sigma_of_t(t, "cosine"), torch.tan(math.pi * t / 2))
    ladder = fm.uniform_t_sigmas(8, sigma_max=99.0)
    assert ladder[0] == 99.0 and ladder[-1] == 0 and bool((ladder.diff() < 0).all())
    assert torch.allclose(fm.t_of_sigma(ladder), torch.linspace(0.99, 0, 9, **F64), atol=1e-12)


@pytest.mark.parametrize("n_steps", [1, 3, 10])
def test_euler_in_t_is_euler_and_ddim_in_sigma(n_steps):
    mix, x0, eps, _ = _setup(n=32)
    t_max = 0.97
    x_t = (1 - t_max) * x0 + t_max * eps
    ts = torch.linspace(t_max, 0, n_steps + 1, **F64)
    ours = fm.euler_t(lambda x, t: fm.oracle_velocity(mix, x, t), x_t, ts)
    sigmas = fm.uniform_t_sigmas(n_steps, sigma_max=t_max / (1 - t_max))
    x_sigma = x_t / (1 - t_max)
    for name in ("euler", "ddim"):
        assert torch.allclose(samplers.sample(name, mix, x_sigma, sigmas), ours, atol=1e-12, rtol=0)


def test_euler_in_t_on_the_cosine_path_is_not_ddim():
    """The exact equivalence is special to the linear path: on the cosine path Euler in t differs."""
    mix, x0, eps, _ = _setup(n=32)
    t_max = 0.9
    ts = torch.linspace(t_max, 0, 5, **F64)
    a, b, _, _ = fm.path_coefficients(torch.tensor(t_max, **F64), "cosine")
    x_t = a * x0 + b * eps
    ours = fm.euler_t(lambda x, t: fm.oracle_velocity(mix, x, t, "cosine"), x_t, ts)
    sigmas = fm.sigma_of_t(ts, "cosine")
    sigmas[-1] = 0.0
    ddim = samplers.sample_ddim(mix, x_t / a, sigmas)
    assert (ddim - ours).abs().max() > 1e-2


class _OracleNet(torch.nn.Module):
    """A 'network' returning the exact velocity, read off c_noise = ¼ log σ(t)."""

    def __init__(self, mix, path):
        super().__init__()
        self.mix, self.path = mix, path

    def forward(self, x, c_noise, labels=None):
        t = fm.t_of_sigma((4 * c_noise).exp(), self.path)
        return fm.oracle_velocity(self.mix, x, t, self.path)


@pytest.mark.parametrize("path", fm.PATHS)
def test_velocity_denoiser_round_trip(path):
    mix, x0, eps, _ = _setup()
    model = fm.VelocityDenoiser(_OracleNet(mix, path), path)
    sigma = torch.linspace(0.05, 20, len(x0), **F64)
    x = x0 + sigma[:, None] * eps
    assert torch.allclose(model(x, sigma), mix.denoise(x, sigma), atol=1e-10, rtol=0)
    # A trained-from-scratch network: forward is exactly convert(velocity(...)) in the σ view.
    net = MLP(dim=2, hidden=16, depth=1, generator=torch.Generator().manual_seed(0)).double()
    model = fm.VelocityDenoiser(net, path)
    t = fm.t_of_sigma(sigma, path)
    a, _, _, _ = fm.path_coefficients(t, path)
    x_t = a[:, None] * x
    want = fm.convert(model.velocity(x_t, t), "velocity", "x0", x_t, t, path)
    assert torch.allclose(model(x, sigma), want, atol=1e-12)
    with pytest.raises(ValueError, match="unknown path"):
        fm.VelocityDenoiser(net, "linear")


def test_rectified_wrapper_is_edm_form():
    """D = c_skip x + c_out u(c_in x) with c_skip = c_in = 1/(1 + σ), c_out = −σ/(1 + σ)."""
    net = MLP(dim=2, hidden=16, depth=1, generator=torch.Generator().manual_seed(1)).double()
    model = fm.VelocityDenoiser(net)
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(2), **F64) * 3
    sigma = torch.logspace(-2, 2, 10, **F64)
    s = sigma[:, None]
    u = net(x / (1 + s), (sigma.log() / 4))
    assert torch.allclose(model(x, sigma), x / (1 + s) - s / (1 + s) * u, atol=1e-12)


def test_loss_floor_is_the_oracle_loss_and_the_weighted_denoising_error():
    mix, x0, eps, g = _setup(n=256)
    t = torch.rand(256, generator=g, **F64) * 0.98 + 0.01
    model = fm.VelocityDenoiser(_OracleNet(mix, "rectified"))
    floor = fm.velocity_floor(mix, x0, eps, t)
    assert torch.allclose(fm.flow_matching_loss(model, x0, eps, t), floor, atol=1e-10)
    x_t = fm.interpolate(x0, eps, t)
    x_sigma, sigma = x_t / (1 - t[:, None]), t / (1 - t)
    weighted = (mix.denoise(x_sigma, sigma) - x0).pow(2).mean(1) / t**2  # λ = 1/t²
    assert torch.allclose(floor, weighted, atol=1e-10)
    assert torch.allclose(fm.conditional_velocity(x0, eps, t), eps - x0)
    with pytest.raises(ValueError, match="t shape"):
        fm.flow_matching_loss(model, x0, eps, t[:3])


def test_bad_inputs_name_the_fix():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="unknown prediction kind"):
        fm.convert(x, "v", "x0", x, 0.5)
    with pytest.raises(ValueError, match="unknown path"):
        fm.sigma_of_t(torch.tensor(0.5), "vp")
    with pytest.raises(ValueError, match="n >= 1"):
        fm.uniform_t_sigmas(0)
    with pytest.raises(ValueError, match="1-D grid"):
        fm.euler_t(lambda x, t: x, x, torch.tensor([1.0]))
