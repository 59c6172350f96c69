"""Reconstruction metrics for images: PSNR and SSIM (chapter 8).

Both compare an image with *its own* reference (a denoised digit with the clean digit). They
measure the fidelity of a reconstruction, not the quality of a generator: a generated sample has no
reference image.

Conventions (stated once, used everywhere):

* **per-image mean** — each metric is computed per image, then averaged over the batch
  (``reduction="mean"``); ``reduction="none"`` returns the ``(B,)`` per-image values;
* **explicit data range** — ``data_range`` R is the width of the value range (2 for images in
  [−1, 1], 1 for [0, 1], 255 for bytes); it is never guessed from the data;
* SSIM uses the Gaussian window of Wang et al. (σ_w = 1.5, truncated at 3.5 σ_w: 11×11) and keeps
  only the pixels whose window lies inside the image, as scikit-image does.

| code name | symbol | meaning |
|---|---|---|
| ``x``, ``ref`` | x, x₀ | image under test and its reference, ``(B, H, W)`` or ``(B, C, H, W)`` |
| ``data_range`` | R | width of the value range |
| ``mse`` | MSE | per-image mean squared error |
| ``win_sigma`` | σ_w | standard deviation of the SSIM window, in pixels |
| ``mu_x``, ``var_x``, ``cov`` | μ_x, σ_x², σ_xy | local (windowed) means, variances, covariance |
"""

from __future__ import annotations

import torch

from .utils import check_finite

__all__ = ["psnr", "ssim", "gaussian_window"]

_REDUCTIONS = ("mean", "none")


def _check_pair(x: torch.Tensor, ref: torch.Tensor, data_range: float, reduction: str) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(ref, torch.Tensor):
        raise TypeError("x and ref must be torch tensors; wrap arrays with torch.as_tensor(...)")
    if x.shape != ref.shape:
        raise ValueError(f"x has shape {tuple(x.shape)} but ref has {tuple(ref.shape)}; "
                         "compare each image with its own reference (same shape)")
    if x.ndim not in (3, 4):
        raise ValueError(f"images must have shape (B, H, W) or (B, C, H, W), got {tuple(x.shape)}")
    if not (isinstance(data_range, (int, float)) and 0 < data_range < float("inf")):
        raise ValueError(f"data_range must be a finite positive number (2 for [-1, 1] images), "
                         f"got {data_range!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {_REDUCTIONS}")
    check_finite(x, "x")
    check_finite(ref, "ref")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    return values.mean() if reduction == "mean" else values


def psnr(x: torch.Tensor, ref: torch.Tensor, *, data_range: float,
         reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio in decibels, per image then averaged.

    PSNR = 10 · log10(R² / MSE), with MSE the mean of (x − x₀)² over one image's pixels
    {cite}`wang2004`. Identical images give +inf. Returns a scalar (``"mean"``) or ``(B,)``.
    """
    _check_pair(x, ref, data_range, reduction)
    diff = (x.to(torch.float64) - ref.to(torch.float64)).flatten(1)  # (B, D)
    mse = diff.pow(2).mean(dim=1)  # (B,)
    values = 10.0 * torch.log10(data_range**2 / mse)
    return _reduce(values, reduction).to(x.dtype)


def gaussian_window(win_sigma: float = 1.5, truncate: float = 3.5,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1D Gaussian weights exp(−k²/2σ_w²), k = −r..r with r = ⌊truncate·σ_w + ½⌋.

    The same discretisation as ``scipy.ndimage.gaussian_filter1d``; σ_w = 1.5 gives 11 taps.
    """
    if not (0 < win_sigma < float("inf") and 0 < truncate < float("inf")):
        raise ValueError(f"win_sigma and truncate must be finite and positive, got {win_sigma}, "
                         f"{truncate}")
    radius = int(truncate * win_sigma + 0.5)
    k = torch.arange(-radius, radius + 1, dtype=dtype)
    w = torch.exp(-0.5 * (k / win_sigma) ** 2)
    return w / w.sum()


def _blur_valid(img: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Separable 2D filtering of ``(N, 1, H, W)`` keeping only fully-inside windows."""
    n = w.numel()
    img = torch.nn.functional.conv2d(img, w.view(1, 1, n, 1))  # (N, 1, H - n + 1, W)
    return torch.nn.functional.conv2d(img, w.view(1, 1, 1, n))  # (N, 1, H - n + 1, W - n + 1)


def ssim(x: torch.Tensor, ref: torch.Tensor, *, data_range: float, win_sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, reduction: str = "mean") -> torch.Tensor:
    """Structural similarity of Wang et al. with a Gaussian window, per image then averaged.

    SSIM(x, x₀) = mean over pixels of
    (2 μ_x μ₀ + C₁)(2 σ_x0 + C₂) / ((μ_x² + μ₀² + C₁)(σ_x² + σ₀² + C₂)),
    C₁ = (k₁R)², C₂ = (k₂R)², local moments weighted by the window (population, not sample,
    covariances) {cite}`wang2004`. Colour channels are averaged. The window must fit inside the
    image: an 8×8 digit needs ``win_sigma <= 0.9`` (7×7 window at most).
    """
    _check_pair(x, ref, data_range, reduction)
    w = gaussian_window(win_sigma, dtype=torch.float64).to(x.device)
    h, wd = x.shape[-2:]
    if w.numel() > min(h, wd):
        raise ValueError(f"the SSIM window ({w.numel()}x{w.numel()} for win_sigma={win_sigma}) "
                         f"is larger than the {h}x{wd} image; lower win_sigma")
    b = x.shape[0]
    a = x.to(torch.float64).reshape(-1, 1, h, wd)  # (B·C, 1, H, W)
    r = ref.to(torch.float64).reshape(-1, 1, h, wd)
    mu_x, mu_r = _blur_valid(a, w), _blur_valid(r, w)
    var_x = _blur_valid(a * a, w) - mu_x**2
    var_r = _blur_valid(r * r, w) - mu_r**2
    cov = _blur_valid(a * r, w) - mu_x * mu_r
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    smap = ((2 * mu_x * mu_r + c1) * (2 * cov + c2)
            / ((mu_x**2 + mu_r**2 + c1) * (var_x + var_r + c2)))  # (B·C, 1, h', w')
    values = smap.reshape(b, -1).mean(dim=1)  # (B,): channels and pixels averaged
    return _reduce(values, reduction).to(x.dtype)

