"""Chapter 2 checkers accept the reference and name typical mistakes."""

import numpy as np
import pytest

from diffusion_lite.checks import ch02
from diffusion_lite.checks.core import ExerciseError


def em_step(x, h, theta, D_coef, z):
    return x - theta * x * h + (2 * D_coef * h) ** 0.5 * z


def ou_variance(var0, t, theta, D_coef):
    decay = np.exp(-2 * theta * np.asarray(t))
    return decay * var0 + D_coef / theta * (1 - decay)


def test_references_are_accepted(capsys):
    ch02.check_em_step(em_step)
    ch02.check_ou_variance(ou_variance)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("wrong,diagnosis", [
    (lambda x, h, theta, D_coef, z: x - theta * x * h + 2 * D_coef * h * z, r"grow like sqrt\(h\)"),
    (lambda x, h, theta, D_coef, z: x + theta * x * h + (2 * D_coef * h) ** 0.5 * z, "wrong sign"),
    (lambda x, h, theta, D_coef, z: x - theta * x * h + h ** 0.5 * z, r"sqrt\(2·D\)"),
    (lambda x, h, theta, D_coef, z: x - theta * x + (2 * D_coef * h) ** 0.5 * z, "missing the step"),
])
def test_em_step_mistakes_are_named(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch02.check_em_step(wrong)


def test_em_step_stub_and_none():
    def stub(x, h, theta, D_coef, z):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        ch02.check_em_step(stub)
    with pytest.raises(ExerciseError, match="returned None"):
        ch02.check_em_step(lambda x, h, theta, D_coef, z: None)


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
    import math

    with pytest.raises(ExerciseError, match="np.exp, not math.exp"):
        ch02.check_ou_variance(lambda var0, t, theta, D_coef: math.exp(-2 * theta) * var0)
