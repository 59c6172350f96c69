"""PSNR and SSIM against scikit-image on the same inputs."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from diffusion_lite.image_metrics import gaussian_window, psnr, ssim


def _pair(shape, noise=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    return (ref + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(-1, 1), ref


def test_psnr_matches_skimage_per_image():
    x, ref = _pair((5, 16, 16))
    ours = psnr(x, ref, data_range=2.0, reduction="none")
    theirs = [peak_signal_noise_ratio(r.numpy(), a.numpy(), data_range=2.0) for a, r in zip(x, ref)]
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12)
    assert torch.isclose(psnr(x, ref, data_range=2.0), ours.mean())


def test_psnr_is_per_image_mean_not_global_mse():
    x, ref = _pair((4, 8, 8))
    x[0] = ref[0] + 0.5  # one much worse image
    global_psnr = peak_signal_noise_ratio(ref.numpy(), x.numpy(), data_range=2.0)
    assert abs(float(psnr(x, ref, data_range=2.0)) - global_psnr) > 0.5


def test_gaussian_window_matches_scipy():
    from scipy.ndimage import gaussian_filter1d

    impulse = np.zeros(11)
    impulse[5] = 1.0
    np.testing.assert_allclose(gaussian_window(1.5).numpy(),
                               gaussian_filter1d(impulse, 1.5, truncate=3.5, mode="constant"),
                               atol=1e-15)


@pytest.mark.parametrize("shape,win_sigma,noise", [((3, 32, 32), 1.5, 0.2), ((3, 24, 20), 1.5, 0.5),
                                                   ((4, 8, 8), 0.5, 0.3), ((2, 8, 8), 0.9, 0.1)])
def test_ssim_matches_skimage(shape, win_sigma, noise):
    x, ref = _pair(shape, noise)
    ours = ssim(x, ref, data_range=2.0, win_sigma=win_sigma, reduction="none")
    theirs = [structural_similarity(r.numpy(), a.numpy(), gaussian_weights=True, sigma=win_sigma,
                                    use_sample_covariance=False, data_range=2.0)
              for a, r in zip(x, ref)]
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-10, atol=1e-12)


def test_ssim_channels_match_skimage_channel_axis():
    x, ref = _pair((2, 3, 16, 16))
    ours = ssim(x, ref, data_range=2.0, reduction="none")
    theirs = [structural_similarity(r.numpy(), a.numpy(), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=2.0, channel_axis=0)
              for a, r in zip(x, ref)]
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-10)


def test_identical_images():
    _, ref = _pair((2, 16, 16))
    assert torch.isinf(psnr(ref, ref, data_range=2.0))
    assert torch.allclose(ssim(ref, ref, data_range=2.0), torch.tensor(1.0, dtype=ref.dtype))


def test_errors_name_the_fix():
    x, ref = _pair((2, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, ref[:1], data_range=2.0)
    with pytest.raises(ValueError, match="data_range"):
        ssim(x, ref, data_range=0)
    with pytest.raises(ValueError, match="lower win_sigma"):
        ssim(x[:, :8, :8], ref[:, :8, :8], data_range=2.0)
    with pytest.raises(ValueError, match="NaN"):
        psnr(x * float("nan"), ref, data_range=2.0)
    with pytest.raises(ValueError, match="reduction"):
        psnr(x, ref, data_range=2.0, reduction="sum")
    with pytest.raises(TypeError, match="torch.as_tensor"):
        psnr(x.numpy(), ref, data_range=2.0)
