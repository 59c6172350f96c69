"""Non-local means against scikit-image's ``denoise_nl_means`` (slow mode) with matching parameters."""

import numpy as np
import pytest
import torch
from skimage.restoration import denoise_nl_means

from diffusion_lite.data import load_digits
from diffusion_lite.nonlocal_means import fast_exp, nlm_weight, non_local_means, patch_kernel


def _noisy(n=6, sigma=0.3, seed=0):
    x = load_digits(split="test", dtype=torch.float64)[0][:n, 0]  # (n, 8, 8) in [-1, 1]
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)


def _skimage(x, s, d, h, sigma):
    return np.stack([denoise_nl_means(im.numpy(), patch_size=s, patch_distance=d, h=h,
                                      sigma=sigma, fast_mode=False) for im in x])


@pytest.mark.parametrize("s,d,h,sigma", [(3, 2, 0.3, 0.2), (5, 3, 0.5, 0.3), (3, 7, 0.2, 0.0),
                                         (7, 4, 0.4, 0.25), (5, 1, 1.0, 0.0)])
def test_matches_skimage(s, d, h, sigma):
    x = _noisy(sigma=max(sigma, 0.1))
    ref = _skimage(x, s, d, h, sigma)
    same = non_local_means(x, patch_size=s, patch_distance=d, h=h, sigma=sigma,
                           skimage_compatible=True)
    assert np.abs(same.numpy() - ref).max() < 1e-10  # same algorithm, same arithmetic
    exact = non_local_means(x, patch_size=s, patch_distance=d, h=h, sigma=sigma)
    # Only scikit-image's approximate exponential and its early cut-off differ: within 0.1 of the
    # [-1, 1] range everywhere, and within 0.01 on average.
    assert np.abs(exact.numpy() - ref).max() < 0.1
    assert np.abs(exact.numpy() - ref).mean() < 0.01


def test_matches_skimage_on_non_square_images_in_zero_one():
    x = torch.rand(3, 9, 13, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = _skimage(x, 5, 4, 0.2, 0.1)
    ours = non_local_means(x, patch_size=5, patch_distance=4, h=0.2, sigma=0.1,
                           skimage_compatible=True)
    assert np.abs(ours.numpy() - ref).max() < 1e-10


def test_shapes_dtype_and_fixed_points():
    x = _noisy(3).float()
    assert non_local_means(x).shape == x.shape and non_local_means(x).dtype == torch.float32
    assert non_local_means(x[:, None]).shape == (3, 1, 8, 8)
    assert torch.allclose(non_local_means(x[0]), non_local_means(x)[0])
    const = torch.full((8, 8), 0.3, dtype=torch.float64)
    assert torch.allclose(non_local_means(const), const)  # a constant image is a fixed point
    # d = 0: only the pixel itself is in the search window, so nothing changes.
    assert torch.allclose(non_local_means(x, patch_distance=0), x)


def test_weight_formula():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 5, generator=g, dtype=torch.float64), torch.randn(5, 5, generator=g,
                                                                           dtype=torch.float64)
    u = torch.arange(-2, 3, dtype=torch.float64)
    gauss = torch.exp(-(u[:, None] ** 2 + u[None] ** 2) / 2)  # A = (5 - 1)/4 = 1
    d2 = float((gauss * (a - b) ** 2).sum() / gauss.sum())
    for h, sigma in ((0.7, 0.0), (1.3, 0.4), (2.0, 1.2)):
        want = np.exp(-max(d2 - 2 * sigma**2, 0) / h**2)
        assert abs(float(nlm_weight(a, b, h=h, sigma=sigma)) - want) < 1e-12
    assert float(nlm_weight(a, a, h=0.1, sigma=0.5)) == 1.0
    assert torch.isclose(patch_kernel(5, 2.0).sum(), torch.tensor(0.25, dtype=torch.float64))


def test_fast_exp_is_within_a_few_percent():
    y = torch.linspace(-20, 0, 2001, dtype=torch.float64)
    rel = (fast_exp(y) / torch.exp(y) - 1).abs()
    assert float(rel.max()) < 0.05 and float(rel.mean()) > 1e-4  # approximate, but close


@pytest.mark.parametrize("kwargs,match", [({"patch_size": 4}, "odd"), ({"patch_size": 17}, "too large"),
                                          ({"h": 0}, "h > 0")])
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        non_local_means(torch.zeros(8, 8), **kwargs)
