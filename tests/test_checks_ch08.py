"""The chapter 8 checkers accept the reference and name the typical mistakes."""

import math

import pytest
import torch

from diffusion_lite import metrics
from diffusion_lite.checks import ExerciseError, ch08
from diffusion_lite.image_metrics import psnr


# ----- PSNR -----------------------------------------------------------------------------------

def good_psnr(x, ref, data_range):
    return psnr(x, ref, data_range=data_range, reduction="none")


def psnr_range_one(x, ref, data_range):
    return 10 * torch.log10(1.0 / (x - ref).pow(2).flatten(1).mean(1))


def psnr_natural_log(x, ref, data_range):
    return 10 * torch.log(data_range**2 / (x - ref).pow(2).flatten(1).mean(1))


def psnr_global_mse(x, ref, data_range):
    return (10 * torch.log10(data_range**2 / (x - ref).pow(2).mean())).expand(len(x))


def psnr_stub(x, ref, data_range):
    raise NotImplementedError


def test_psnr_accepts_reference(capsys):
    ch08.check_psnr(good_psnr)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,message", [(psnr_range_one, "data_range = 1"),
                                           (psnr_natural_log, "natural logarithm"),
                                           (psnr_global_mse, "one PSNR per image"),
                                           (psnr_stub, "not written yet")])
def test_psnr_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch08.check_psnr(wrong)


# ----- MMD² -----------------------------------------------------------------------------------

def good_mmd2(x, y, bandwidth):
    return metrics.mmd2(x, y, bandwidth=bandwidth)


def biased_mmd2(x, y, bandwidth):
    k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * bandwidth**2))  # noqa: E731
    return k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()


def mmd2_h_squared_missing_factor(x, y, bandwidth):
    k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / bandwidth**2)  # noqa: E731
    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1))
            - 2 * k(x, y).mean())


def mmd2_returns_none(x, y, bandwidth):
    metrics.mmd2(x, y, bandwidth=bandwidth)


def test_mmd2_accepts_reference(capsys):
    ch08.check_mmd2(good_mmd2)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,message", [(biased_mmd2, "biased"),
                                           (mmd2_h_squared_missing_factor, r"2h²"),
                                           (mmd2_returns_none, "returned None")])
def test_mmd2_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch08.check_mmd2(wrong)


def test_unknown_mistake_gets_generic_diagnosis():
    with pytest.raises(ExerciseError, match="not an unbiased estimator.*biased high"):
        ch08.check_mmd2(lambda x, y, bandwidth: metrics.mmd2(x, y, bandwidth=bandwidth) + 0.01)


# Other unbiased estimators: they differ from the U-statistic on every data set, agree in mean.

def _k(a, b, h):
    return torch.exp(-torch.cdist(a, b) ** 2 / (2 * h**2))


def _within(a, h):
    k, n = _k(a, a, h), len(a)
    return (k.sum() - k.trace()) / (n * (n - 1))


def mmd2_paired_cross(x, y, bandwidth):
    """Gretton et al.'s form: cross pairs with i ≠ j too (pairs (x_i, y_i) left out)."""
    kxy, r = _k(x, y, bandwidth), min(len(x), len(y))
    cross = (kxy.sum() - kxy.diagonal()[:r].sum()) / (len(x) * len(y) - r)
    return _within(x, bandwidth) + _within(y, bandwidth) - 2 * cross


def mmd2_linear_time(x, y, bandwidth):
    """The linear-time estimator: h((x, y), (x', y')) averaged over disjoint consecutive pairs."""
    r = (min(len(x), len(y)) // 2) * 2
    x1, x2, y1, y2 = x[0:r:2], x[1:r:2], y[0:r:2], y[1:r:2]
    k = lambda a, b: torch.exp(-((a - b) ** 2).sum(1) / (2 * bandwidth**2))  # noqa: E731
    return float((k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)).mean())


def mmd2_upper_triangle(x, y, bandwidth):
    """The U-statistic through i < j pairs, doubled (equal to the reference up to rounding)."""
    def within(a):
        n = len(a)
        return 2 * torch.triu(_k(a, a, bandwidth), diagonal=1).sum() / (n * (n - 1))
    return within(x) + within(y) - 2 * _k(x, y, bandwidth).mean()


def mmd2_half_split(x, y, bandwidth):
    """An incomplete U-statistic: the within-set terms from two halves only (unbiased, noisier)."""
    def within(a):
        half = len(a) // 2
        return (_within(a[:half], bandwidth) + _within(a[half:], bandwidth)) / 2
    return within(x) + within(y) - 2 * _k(x, y, bandwidth).mean()


@pytest.mark.parametrize("estimator", [mmd2_paired_cross, mmd2_linear_time, mmd2_upper_triangle,
                                       mmd2_half_split])
def test_mmd2_accepts_every_unbiased_estimator(estimator, capsys):
    ch08.check_mmd2(estimator)
    assert "correct" in capsys.readouterr().out


def v_statistic_paired(x, y, bandwidth):
    """A biased V-statistic written another way (cross pairs i ≠ j): not the named exact form."""
    kxy, r = _k(x, y, bandwidth), min(len(x), len(y))
    cross = (kxy.sum() - kxy.diagonal()[:r].sum()) / (len(x) * len(y) - r)
    return _k(x, x, bandwidth).mean() + _k(y, y, bandwidth).mean() - 2 * cross


def mmd2_n_squared(x, y, bandwidth):
    kxx, kyy = _k(x, x, bandwidth), _k(y, y, bandwidth)
    return ((kxx.sum() - kxx.trace()) / len(x) ** 2 + (kyy.sum() - kyy.trace()) / len(y) ** 2
            - 2 * _k(x, y, bandwidth).mean())


def mmd2_ignores_bandwidth(x, y, bandwidth):
    return metrics.mmd2(x, y)  # median heuristic: right shape, scale and mean 0 when p = q


def mmd2_random_subsets(x, y, bandwidth):
    keep = torch.randperm(len(x))[: len(x) - 2]
    return metrics.mmd2(x[keep], y, bandwidth=bandwidth)


@pytest.mark.parametrize("wrong,message", [
    (v_statistic_paired, "biased V-statistic"),
    (mmd2_n_squared, "n²"),
    (mmd2_ignores_bandwidth, "not an unbiased estimator"),
    (mmd2_random_subsets, "same sets"),
    (lambda x, y, bandwidth: torch.zeros(()), "biased low"),
    (lambda x, y, bandwidth: torch.zeros(2), "one number"),
])
def test_mmd2_names_biased_and_other_wrong_estimators(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch08.check_mmd2(wrong)
