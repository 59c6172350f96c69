"""Data: toy 2D sets (shapes, reproducibility, geometry) and the fixed digits split."""

import pytest
import torch

from diffusion_lite import data


@pytest.mark.parametrize("name", ["moons", "swiss_roll", "checkerboard"])
def test_toy_sets_are_reproducible_float32_and_bounded(name):
    a = data.make_2d(name, 2000, generator=torch.Generator().manual_seed(0))
    b = data.make_2d(name, 2000, generator=torch.Generator().manual_seed(0))
    c = data.make_2d(name, 2000, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2000, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() < 4, "toy sets live in a box of about [-3, 3]²"
    assert a.mean(0).abs().max() < 0.5, "toy sets are roughly centred"


def test_moons_without_noise_lie_on_two_unit_half_circles():
    x = data.moons(1000, noise=0.0, generator=torch.Generator().manual_seed(0)).double()
    x = x * 0.85 + torch.tensor([0.5, 0.25], dtype=torch.float64)  # undo the documented scaling
    r_upper = x.norm(dim=1)
    r_lower = (x - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1)
    on_circle = ((r_upper - 1).abs() < 1e-5) | ((r_lower - 1).abs() < 1e-5)
    assert bool(on_circle.all())


def test_checkerboard_only_fills_dark_squares():
    x = data.checkerboard(5000, generator=torch.Generator().manual_seed(0))
    i = torch.floor((x[:, 1] + 2)).long()
    j = torch.floor((x[:, 0] + 2)).long()
    assert bool(((i + j) % 2 == 0).all())
    counts = torch.bincount(i * 4 + j, minlength=16)
    dark = counts[counts > 0]
    assert dark.numel() == 8 and dark.min() > 500  # all 8 dark squares, each about 625 points


def test_swiss_roll_radius_grows_with_angle():
    x = data.swiss_roll(500, noise=0.0, generator=torch.Generator().manual_seed(0)).double()
    r = x.norm(dim=1) * 5  # radius equals the angle s in [1.5π, 4.5π]
    assert r.min() >= 1.5 * torch.pi - 1e-4 and r.max() <= 4.5 * torch.pi + 1e-4


def test_unknown_set_and_bad_sizes_raise():
    with pytest.raises(ValueError, match=r"unknown 2D data set 'spiral'; choose one of .*moons"):
        data.make_2d("spiral", 10)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        data.moons(0)
    with pytest.raises(ValueError, match="squares must be an even int"):
        data.checkerboard(10, squares=3)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        data.moons(10, noise=-1.0)


def test_mixture_based_sets_come_from_the_oracle():
    mixtures = pytest.importorskip("diffusion_lite.mixtures")
    x = data.make_2d("ring", 1000, generator=torch.Generator().manual_seed(0))
    y = mixtures.ring().sample(1000, generator=torch.Generator().manual_seed(0)).float()
    assert x.shape == (1000, 2) and torch.equal(x, y)
    assert data.make_2d("grid", 100, generator=torch.Generator().manual_seed(0)).shape == (100, 2)


def test_digits_split_is_fixed_disjoint_and_scaled():
    xtr, ytr = data.load_digits("train")
    xte, yte = data.load_digits("test")
    xall, yall = data.load_digits("all")
    assert xtr.shape == (1442, 1, 8, 8) and xte.shape == (355, 1, 8, 8) and xall.shape[0] == 1797
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert xall.min() == -1 and xall.max() == 1
    # the documented rule, written independently: every 5th image of each class is a test image
    seen, is_test = [0] * 10, []
    for y in yall.tolist():
        seen[y] += 1
        is_test.append(seen[y] % 5 == 0)
    is_test = torch.tensor(is_test)
    torch.testing.assert_close(xte, xall[is_test])
    torch.testing.assert_close(ytr, yall[~is_test])
    counts = torch.bincount(yte, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 36, "the test split is stratified"
    from sklearn.datasets import load_digits

    assert torch.equal(yall, torch.as_tensor(load_digits().target))
    with pytest.raises(ValueError, match=r"unknown split 'val'; choose one of \('train', 'test', 'all'\)"):
        data.load_digits("val")
