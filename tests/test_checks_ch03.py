"""Chapter 3 checkers accept the reference and name typical mistakes."""

import math

import pytest
import torch

from diffusion_lite import schedules
from diffusion_lite.checks import ch03
from diffusion_lite.checks.core import ExerciseError


def q_sample(x0, alpha_bar, eps):
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * eps


def cosine_alpha_bar(T, s=0.008):
    t = torch.arange(0, T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    return f[1:] / f[0]


def test_references_are_accepted(capsys):
    ch03.check_q_sample(q_sample)
    ch03.check_cosine_alpha_bar(cosine_alpha_bar)
    assert capsys.readouterr().out.count("✓") == 2


def test_reference_cosine_agrees_with_the_package_before_the_clip():
    torch.testing.assert_close(cosine_alpha_bar(1000)[:-20],
                               schedules.get_alpha_bar("cosine", 1000)[:-20])


@pytest.mark.parametrize("wrong,diagnosis", [
    (lambda x0, alpha_bar, eps: alpha_bar * x0 + (1 - alpha_bar) * eps, "take square roots"),
    (lambda x0, alpha_bar, eps: math.sqrt(1 - alpha_bar) * x0 + math.sqrt(alpha_bar) * eps,
     "swapped"),
    (lambda x0, alpha_bar, eps: x0 + math.sqrt(1 - alpha_bar) * eps, "variance-exploding"),
])
def test_q_sample_mistakes_are_named(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch03.check_q_sample(wrong)


def test_q_sample_shape_error():
    with pytest.raises(ExerciseError, match="has shape"):
        ch03.check_q_sample(lambda x0, alpha_bar, eps: (x0 + eps).sum(0))


def _unsquared(T, s=0.008):
    t = torch.arange(0, T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2)
    return f[1:] / f[0]


def _unnormalised(T, s=0.008):
    t = torch.arange(1, T + 1, dtype=torch.float64)
    return torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2


def _from_zero(T, s=0.008):
    t = torch.arange(0, T, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    return f / f[0]


@pytest.mark.parametrize("wrong,diagnosis", [
    (_unsquared, "not squared"), (_unnormalised, r"not divided by f\(0\)"), (_from_zero, "t = 0..T−1"),
])
def test_cosine_mistakes_are_named(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch03.check_cosine_alpha_bar(wrong)


def test_cosine_wrong_length_gets_the_shape_hint():
    with pytest.raises(ExerciseError, match="return T values"):
        ch03.check_cosine_alpha_bar(lambda T, s=0.008: cosine_alpha_bar(T, s)[:-1])
