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


def test_langevin_step_accepts_other_correct_noise_draws():
    """Any correct way of drawing the noise passes: the checker compares statistics."""
    def mine(x, score, step_size, generator=None):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return x + step_size * score(x) + (2 * step_size) ** 0.5 * z

    ch04.check_langevin_step(mine)


def _step(drift=1.0, noise=2.0, sign=1.0):
    def step(x, score, step_size, generator=None):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return x + sign * drift * step_size * score(x) + math.sqrt(noise * step_size) * z
    return step


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda x, score, step_size, generator=None: x + step_size * score(x), "no noise"),
    (_step(noise=1.0), "spread of the noise is off"),  # sqrt(tau) instead of sqrt(2 tau)
    (_step(sign=-1.0), "mean moved"),  # downhill
    (_step(drift=0.5), "mean moved"),  # the (tau/2) s convention with our noise: inconsistent
    (lambda x, score, step_size, generator=None: x[:, 0], "shape"),
])
def test_langevin_step_rejects_wrong_answers(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch04.check_langevin_step(wrong)
