"""Chapter 4 checkers accept the reference and reject typical wrong answers with the right diagnosis."""

import math

import pytest
import torch

from diffusion_lite.checks import ExerciseError, ch04
from diffusion_lite.mixtures import GaussianMixture


def test_reference_score_is_the_mixture_oracle():
    """The checker's reference agrees with the package oracle for one isotropic component."""
    mean, var, sigma = torch.tensor([1.0, -0.5], dtype=torch.float64), 0.5, 0.7
    x = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    oracle = GaussianMixture([1.0], mean[None], [var])
    torch.testing.assert_close(ch04.score_gaussian_reference(x, mean, var, sigma),
                               oracle.score(x, sigma))


def test_gaussian_score_accepts_reference(capsys):
    ch04.check_gaussian_score(ch04.score_gaussian_reference)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, diagnosis, hint", [
    (lambda x, mean, var, sigma: (x - mean) / (var + sigma**2), "wrong sign", "uphill"),
    (lambda x, mean, var, sigma: -(x - mean) / var, "constant factor", "var + sigma**2"),
    (lambda x, mean, var, sigma: -(x - mean) / math.sqrt(var + sigma**2), "constant factor",
     "not a standard deviation"),
    (lambda x, mean, var, sigma: -(x - mean)[:, 0] / (var + sigma**2), "shape", "(B, d)"),
    (lambda x, mean, var, sigma: -x / (var + sigma**2), "differs", "differentiate"),
])
def test_gaussian_score_rejects_wrong_answers(wrong, diagnosis, hint):
    with pytest.raises(ExerciseError, match=diagnosis) as info:
        ch04.check_gaussian_score(wrong)
    assert hint in str(info.value)


def test_gaussian_score_not_written_yet():
    def stub(x, mean, var, sigma):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch04.check_gaussian_score(stub)


def test_langevin_step_accepts_reference(capsys):
    ch04.check_langevin_step(ch04.langevin_step_reference)
    assert "correct" in capsys.readouterr().out


def test_langevin_step_accepts_an_equivalent_way_of_writing_it():
    def mine(x, score, step_size, generator=None):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return x + step_size * score(x) + (2 * step_size) ** 0.5 * noise

    ch04.check_langevin_step(mine)


def _step(drift=1.0, noise=2.0, sign=1.0, draw=None):
    def step(x, score, step_size, generator=None):
        z = (draw or (lambda: torch.randn(x.shape, generator=generator, dtype=x.dtype)))()
        return x + sign * drift * step_size * score(x) + math.sqrt(noise * step_size) * z
    return step


def _shared_coords(x, score, step_size, generator=None):  # one z per particle, all coordinates
    z = torch.randn(x.shape[0], 1, generator=generator, dtype=x.dtype).expand_as(x)
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


def _shared_particles(x, score, step_size, generator=None):  # one z for the whole batch
    z = torch.randn(1, x.shape[1], generator=generator, dtype=x.dtype)
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


def _uniform(x, score, step_size, generator=None):  # variance 1, wrong law
    z = (torch.rand(x.shape, generator=generator, dtype=x.dtype) - 0.5) * math.sqrt(12)
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


def _rademacher(x, score, step_size, generator=None):  # ±1: variance 1, wrong law
    z = torch.randint(0, 2, x.shape, generator=generator).to(x.dtype) * 2 - 1
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


def _no_generator(x, score, step_size, generator=None):  # right law, ignores the generator
    z = torch.randn(x.shape, dtype=x.dtype)
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


def _antithetic(x, score, step_size, generator=None):  # right marginals, paired particles
    half = torch.randn(x.shape[0] // 2, x.shape[1], generator=generator, dtype=x.dtype)
    z = torch.cat([half, -half])
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


def _float32_draw(x, score, step_size, generator=None):  # right law, not the prescribed draw
    z = torch.randn(x.shape, generator=generator).to(x.dtype)
    return x + step_size * score(x) + math.sqrt(2 * step_size) * z


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda x, score, step_size, generator=None: x + step_size * score(x), "no noise"),
    (_step(noise=1.0), "spread of the noise is off"),  # sqrt(tau) instead of sqrt(2 tau)
    (_step(sign=-1.0), "mean moved"),  # downhill
    (_step(drift=0.5), "mean moved"),  # the (tau/2) s convention with our noise: inconsistent
    (lambda x, score, step_size, generator=None: x[:, 0], "shape"),
    (_shared_coords, "shared across coordinates"),
    (_shared_particles, "same noise"),
    (_uniform, "not a Gaussian law"),
    (_rademacher, "not a Gaussian law"),
    (_no_generator, "does not come from `generator`"),
    (_antithetic, "not the prescribed draw"),
    (_float32_draw, "not the prescribed draw"),
])
def test_langevin_step_rejects_wrong_answers(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch04.check_langevin_step(wrong)


def ula_stationary_variance(var, step_size):
    return var / (1 - step_size / (2 * var))


def test_ula_stationary_variance_reference_is_what_the_chain_reaches():
    gen = torch.Generator().manual_seed(1)
    var, tau, x = 0.5, 0.3, torch.zeros(200_000, dtype=torch.float64)
    for _ in range(60):
        x = ch04.langevin_step_reference(x, lambda y: -y / var, tau, generator=gen)
    assert abs(x.var().item() / ula_stationary_variance(var, tau) - 1) < 0.01
    ch04.check_ula_stationary_variance(ula_stationary_variance)


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda var, step_size: var + 0 * step_size, "bias of order"),
    (lambda var, step_size: var + step_size / 2, "first-order"),
    (lambda var, step_size: 2 * var + 0 * step_size, "squared"),
    (lambda var, step_size: step_size / (1 - (1 - step_size / var) ** 2), "adds variance 2δ"),
    (lambda var, step_size: var / (1 - step_size / var), "(?s)constant factor.*stationary"),
])
def test_ula_stationary_variance_mistakes_are_named(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch04.check_ula_stationary_variance(wrong)
