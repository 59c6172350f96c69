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
    with pytest.raises(ExerciseError, match="differs from the reference|constant"):
        ch08.check_mmd2(lambda x, y, bandwidth: metrics.mmd2(x, y, bandwidth=bandwidth) + math.pi)
