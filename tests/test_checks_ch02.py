"""Chapter 2 checkers accept the reference and name typical mistakes, including wrong noise."""

import math

import numpy as np
import pytest
import torch

from diffusion_lite import ou
from diffusion_lite.checks import ch02
from diffusion_lite.checks.core import ExerciseError


def em_step(x, h, theta, D_coef, generator):
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x - theta * x * h + math.sqrt(2 * D_coef * h) * z


def em_float32(x, h, theta, D_coef, generator):
    """A valid N(0, 1) draw, but float32: torch draws other numbers than in float64."""
    z = torch.randn(x.shape, generator=generator)
    return x.float() - theta * x.float() * h + math.sqrt(2 * D_coef * h) * z


def em_shared_noise(x, h, theta, D_coef, generator):
    """Right law per coordinate, but one z per particle broadcast over its coordinates."""
    z = torch.randn(x.shape[:1], generator=generator, dtype=x.dtype)
    z = z.reshape(-1, *([1] * (x.ndim - 1))).expand_as(x)
    return x - theta * x * h + math.sqrt(2 * D_coef * h) * z


def em_uniform_noise(x, h, theta, D_coef, generator):
    z = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return x - theta * x * h + math.sqrt(2 * D_coef * h) * z


def em_centred_uniform(x, h, theta, D_coef, generator):
    """Mean 0 and variance 1, but not Gaussian: the wrong law with the right two moments."""
    z = math.sqrt(3) * (2 * torch.rand(x.shape, generator=generator, dtype=x.dtype) - 1)
    return x - theta * x * h + math.sqrt(2 * D_coef * h) * z


def em_global_rng(x, h, theta, D_coef, generator):
    z = torch.randn(x.shape, dtype=x.dtype)
    return x - theta * x * h + math.sqrt(2 * D_coef * h) * z


def ou_variance(var0, t, theta, D_coef):
    decay = np.exp(-2 * theta * np.asarray(t))
    return decay * var0 + D_coef / theta * (1 - decay)


def em_stationary_variance(h, theta, D_coef):
    return 2 * D_coef * h / (1 - (1 - theta * h) ** 2)


def reverse_ou(score_fn, x_T, times, theta, D_coef, generator):
    x = x_T
    for t, t_next in zip(times[:-1], times[1:]):
        dt = t_next - t  # negative
        s = score_fn(x, t)
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = x + (-theta * x - 2 * D_coef * s) * dt + math.sqrt(2 * D_coef * -dt) * z
    return x


def _reverse(score_sign=-1.0, coef=2.0, abs_dt=False, noise=1.0, late=False, noise_first=False):
    def wrong(score_fn, x_T, times, theta, D_coef, generator):
        x = x_T
        for t, t_next in zip(times[:-1], times[1:]):
            dt = t_next - t
            s = score_fn(x, t_next if late else t)
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x + (-theta * x + score_sign * coef * D_coef * s) * (abs(dt) if abs_dt else dt) \
                + noise * math.sqrt(2 * D_coef * abs(dt)) * z
        return x
    return wrong


def test_references_are_accepted(capsys):
    ch02.check_em_step(em_step)
    ch02.check_ou_variance(ou_variance)
    ch02.check_em_stationary_variance(em_stationary_variance)
    ch02.check_reverse_ou(reverse_ou)
    ch02.check_em_stationary_variance(lambda h, theta, D_coef: D_coef / theta / (1 - theta * h / 2))
    out = capsys.readouterr().out
    assert out.count("✓") == 5, out


def test_reverse_reference_equals_the_package_loop():
    score = lambda x, t: -x  # noqa: E731 (p_t = N(0, 1) at every t)
    x = torch.randn(50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    times = ou.reverse_times(2.0, 10, "quadratic")
    got = reverse_ou(score, x, times, 1.0, 1.0, torch.Generator().manual_seed(5))
    want = ou.simulate_ou_reverse(score, x, 2.0, 10, spacing="quadratic",
                                  generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("wrong,diagnosis", [
    (lambda x, h, theta, D_coef, generator: x - theta * x * h
     + 2 * D_coef * h * torch.randn(x.shape, generator=generator, dtype=x.dtype), r"grow like sqrt\(h\)"),
    (lambda x, h, theta, D_coef, generator: x + theta * x * h
     + (2 * D_coef * h) ** 0.5 * torch.randn(x.shape, generator=generator, dtype=x.dtype), "wrong sign"),
    (lambda x, h, theta, D_coef, generator: x - theta * x * h
     + h ** 0.5 * torch.randn(x.shape, generator=generator, dtype=x.dtype), r"sqrt\(2·D\)"),
    (lambda x, h, theta, D_coef, generator: x - theta * x
     + (2 * D_coef * h) ** 0.5 * torch.randn(x.shape, generator=generator, dtype=x.dtype),
     "missing the step"),
    (em_shared_noise, "shared across coordinates"),
    (em_uniform_noise, r"not drawn from N\(0, 1\).*torch.rand is uniform"),
    (em_centred_uniform, r"not drawn from N\(0, 1\).*kurtosis"),
    (em_global_rng, "not the draw the given generator makes"),
    (em_float32, "not the draw the given generator makes.*float32 draw"),
])
def test_em_step_mistakes_are_named(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=f"(?s){diagnosis}"):
        ch02.check_em_step(wrong)


def test_em_step_stub_and_none():
    def stub(x, h, theta, D_coef, generator):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch02.check_em_step(stub)
    with pytest.raises(ExerciseError, match="returned None"):
        ch02.check_em_step(lambda x, h, theta, D_coef, generator: None)


@pytest.mark.parametrize("wrong,diagnosis", [
    (lambda var0, t, theta, D_coef: np.exp(-theta * t) * var0
     + D_coef / theta * (1 - np.exp(-2 * theta * t)), "twice the rate"),
    (lambda var0, t, theta, D_coef: np.exp(-2 * theta * t) * var0
     + D_coef * (1 - np.exp(-2 * theta * t)), "stationary variance is D/θ"),
    (lambda var0, t, theta, D_coef: D_coef / theta * (1 - np.exp(-2 * theta * t)),
     "initial variance v_0 is missing"),
    (lambda var0, t, theta, D_coef: np.exp(-theta * t) * var0
     + D_coef / theta * (1 - np.exp(-theta * t)), "e\\^\\{−θt\\} everywhere"),
])
def test_ou_variance_mistakes_are_named(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch02.check_ou_variance(wrong)


def test_ou_variance_scalar_answer_gets_the_shape_hint():
    with pytest.raises(ExerciseError, match="np.exp, not math.exp"):
        ch02.check_ou_variance(lambda var0, t, theta, D_coef: math.exp(-2 * theta) * var0)


@pytest.mark.parametrize("wrong,diagnosis", [
    (lambda h, theta, D_coef: D_coef / theta + 0 * h, "continuous process, D/θ"),
    (lambda h, theta, D_coef: 2 * D_coef * h / (1 - (1 - theta * h)), "multiplies the variance squared"),
    (lambda h, theta, D_coef: D_coef * h / (1 - (1 - theta * h) ** 2), "2·D·h per step"),
    (lambda h, theta, D_coef: D_coef / theta * (1 + theta * h / 2), "differs from the reference"),
])
def test_em_stationary_variance_mistakes(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=f"(?s){diagnosis}"):
        ch02.check_em_stationary_variance(wrong)


@pytest.mark.parametrize("wrong,diagnosis", [
    (_reverse(score_sign=1.0), "score term has the wrong sign"),
    (_reverse(abs_dt=True), r"multiplied by \|dt\|"),
    (_reverse(coef=1.0), "weighted by D, as in the probability-flow ODE"),
    (_reverse(noise=0.0), "there is no noise"),
    (_reverse(late=True), r"next time t_\(i\+1\)"),
    (_reverse(noise=2.0), "differs from the reference"),
])
def test_reverse_ou_mistakes(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=f"(?s){diagnosis}"):
        ch02.check_reverse_ou(wrong)


def test_reverse_ou_stub():
    def stub(score_fn, x_T, times, theta, D_coef, generator):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch02.check_reverse_ou(stub)
