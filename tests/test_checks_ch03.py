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


def _cosine_variant(power=2, normalise=True, first=1):
    """A learner's cosine schedule with one typical slip: no square, no /f(0), or t from 0."""
    def answer(T, s=0.008):
        f = lambda t: torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** power  # noqa: E731
        t = torch.arange(first, first + T, dtype=torch.float64)
        return f(t) / (f(torch.tensor(0.0, dtype=torch.float64)) if normalise else 1.0)
    return answer


@pytest.mark.parametrize("wrong,diagnosis", [
    (_cosine_variant(power=1), "not squared"),
    (_cosine_variant(normalise=False), r"not divided by f\(0\)"),
    (_cosine_variant(first=0), "t = 0..T−1"),
])
def test_cosine_mistakes_are_named(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch03.check_cosine_alpha_bar(wrong)


def test_cosine_wrong_length_gets_the_shape_hint():
    with pytest.raises(ExerciseError, match="return T values"):
        ch03.check_cosine_alpha_bar(lambda T, s=0.008: cosine_alpha_bar(T, s)[:-1])


def em_stationary_variance(beta):
    return 1 / (1 - beta / 4)


def test_em_stationary_variance_reference_is_what_the_chain_reaches():
    """The fixed point agrees with a long Euler–Maruyama run (an oracle that shares no algebra)."""
    gen = torch.Generator().manual_seed(0)
    beta, x = 0.8, torch.zeros(200_000, dtype=torch.float64)
    for _ in range(60):
        x = (1 - beta / 2) * x + math.sqrt(beta) * torch.randn(x.shape, generator=gen,
                                                              dtype=torch.float64)
    assert abs(x.var().item() / em_stationary_variance(beta) - 1) < 0.01
    ch03.check_em_stationary_variance(em_stationary_variance)


@pytest.mark.parametrize("wrong,diagnosis", [
    (lambda beta: 1.0 + 0 * beta, "exact"),
    (lambda beta: 1 + beta / 4, "first-order"),
    (lambda beta: beta / (1 - (1 - beta / 2)) + 0 * beta, "squared"),
    (lambda beta: (1 - beta / 2) ** 2 + beta, "one step"),
    (lambda beta: 1 / (1 - beta / 2), "(?s)constant factor.*stationary means"),  # an algebra slip
    (lambda beta: (1 / (1 - beta / 4)).sum() if torch.is_tensor(beta)
     else 1 / (1 - beta / 4), "shape"),
])
def test_em_stationary_variance_mistakes_are_named(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        ch03.check_em_stationary_variance(wrong)
