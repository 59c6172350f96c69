"""Non-local means: the classical non-local denoiser {cite}`buades2005`.

Each pixel is replaced by a weighted average of the pixels around it *whose surrounding patches
look alike* — wherever they are in a search window, hence "non-local":

    NLM(x)_i = Σ_j w_ij x_j / Σ_j w_ij,
    w_ij = exp(−max(d²_ij − 2σ², 0) / h²),   d²_ij = Σ_u g_u (x_{i+u} − x_{j+u})² / Σ_u g_u,

with g a Gaussian window over the s×s patch offsets u (standard deviation (s − 1)/4), σ the noise
level (subtracting 2σ² removes the distance two noisy copies of the *same* patch have on average)
and h the filtering strength. Self-attention computes the same kind of average with *learned*
similarities: softmax(q_i·k_j) is a normalised weight over all positions j {cite}`wang2018nonlocal`.

This implementation follows scikit-image's ``denoise_nl_means(fast_mode=False)`` step for step
(reflect padding by s//2, the search window clipped to the image), so the two agree; with
``skimage_compatible=True`` it also reproduces scikit-image's speed-ups — a weight is set to 0
when the distance summed over the first rows of the patch already exceeds 5 — and its fast
approximate exponential {cite}`schraudolph1999`, so the outputs match to round-off.

Notation (code → symbol):

| code | symbol | meaning |
|---|---|---|
| ``patch_size`` | s | patch side (odd) |
| ``patch_distance`` | d | search radius: j − i ∈ [−d, d]² |
| ``h`` | h | filtering strength (a distance scale, in grey levels) |
| ``sigma`` | σ | known noise standard deviation (0: not used) |
| ``kernel`` | g_u / (Σg h²) | patch weights, already divided by h² |
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["patch_kernel", "nlm_weight", "non_local_means", "fast_exp"]

DISTANCE_CUTOFF = 5.0  # scikit-image stops summing a patch distance beyond this


def patch_kernel(patch_size: int, h: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """g_u / (Σ_u g_u · h²), ``(s, s)``, with g_u = exp(−‖u‖²/(2A²)) and A = (s − 1)/4."""
    o = patch_size // 2
    u = torch.arange(-o, o + 1, dtype=dtype)
    r2 = u[:, None] ** 2 + u[None, :] ** 2  # (s, s)
    A = (patch_size - 1) / 4
    g = torch.exp(-r2 / (2 * A * A))
    return g / (g.sum() * h * h)


def nlm_weight(patch_i: torch.Tensor, patch_j: torch.Tensor, *, h: float,
               sigma: float = 0.0) -> torch.Tensor:
    """The (unnormalised) weight exp(−max(d² − 2σ², 0)/h²) between two s×s patches ``(..., s, s)``.

    d² is the g-weighted mean of the squared differences (see the module docstring).
    """
    kernel = patch_kernel(patch_i.shape[-1], h, dtype=patch_i.dtype)
    dist = (kernel * ((patch_i - patch_j) ** 2 - 2 * sigma**2)).sum(dim=(-2, -1))
    return torch.exp(-dist.clamp_min(0))


def fast_exp(y: torch.Tensor) -> torch.Tensor:
    """Schraudolph's approximate e^y (a few % error), as scikit-image computes NLM weights
    {cite}`schraudolph1999`: the integer part of 2²⁰ y/ln 2, plus the exponent bias (tuned), is
    written into the high 32 bits of a double."""
    hi = (1512775.3951951856938 * y.to(torch.float64)).trunc().to(torch.int64) + 1072632447
    return (hi << 32).view(torch.float64)


def _check(x: torch.Tensor, patch_size: int, patch_distance: int, h: float, sigma: float) -> None:
    if x.ndim not in (2, 3, 4) or (x.ndim == 4 and x.shape[1] != 1):
        raise ValueError(f"x must be (H, W), (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}")
    if patch_size < 3 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd and >= 3, got {patch_size} (scikit-image "
                         "silently uses patch_size + 1 for an even size)")
    if patch_size // 2 >= min(x.shape[-2:]):
        raise ValueError(f"patch_size {patch_size} is too large for a {tuple(x.shape[-2:])} "
                         "image: reflect padding needs patch_size // 2 < H, W")
    if patch_distance < 0 or h <= 0 or sigma < 0:
        raise ValueError("need patch_distance >= 0, h > 0 and sigma >= 0")


def non_local_means(x: torch.Tensor, *, patch_size: int = 5, patch_distance: int = 6,
                    h: float = 0.1, sigma: float = 0.0,
                    skimage_compatible: bool = False) -> torch.Tensor:
    """Non-local means of a grey image or a batch, same shape as ``x`` (float64 inside).

    Equal to ``skimage.restoration.denoise_nl_means(x, patch_size, patch_distance, h,
    sigma=sigma, fast_mode=False)`` per image (exactly with ``skimage_compatible=True``, else up
    to scikit-image's approximate exponential and cut-offs) {cite}`buades2005`.
    """
    _check(x, patch_size, patch_distance, h, sigma)
    shape, dtype = x.shape, x.dtype
    img = x.reshape(-1, 1, *shape[-2:]).to(torch.float64)  # (B, 1, H, W)
    B, _, H, W = img.shape
    o, d = patch_size // 2, patch_distance
    padded = F.pad(img, (o, o, o, o), mode="reflect")  # (B, 1, H+2o, W+2o)
    room = F.pad(padded, (d, d, d, d))  # zeros around, so every shift has the same shape
    kernel = patch_kernel(patch_size, h).to(img.device)  # (s, s)
    rows = torch.zeros(patch_size, 1, patch_size, patch_size, dtype=kernel.dtype,
                       device=kernel.device)  # rows[u] keeps row u of the kernel only
    for u in range(patch_size):
        rows[u, 0, u] = kernel[u]
    num, den = torch.zeros_like(img), torch.zeros_like(img)
    r = torch.arange(H, device=img.device)[:, None]
    c = torch.arange(W, device=img.device)[None, :]
    for di in range(-d, d + 1):
        for dj in range(-d, d + 1):
            other = room[:, :, d + di:d + di + H + 2 * o, d + dj:d + dj + W + 2 * o]  # P(· + Δ)
            diff2 = (padded - other) ** 2  # (B, 1, H+2o, W+2o)
            if skimage_compatible:
                per_row = F.conv2d(diff2 - 2 * sigma**2, rows)  # (B, s, H, W): row u's share
                dist = per_row.sum(1, keepdim=True)
                prefix = per_row.cumsum(1)[:, :-1]  # distance after rows 0..k−1 (k < s)
                cut = (prefix > DISTANCE_CUTOFF).any(1, keepdim=True)
                weight = torch.where(cut, 0.0, fast_exp(-dist.clamp_min(0)))
            else:
                dist = F.conv2d(diff2 - 2 * sigma**2, kernel[None, None])  # (B, 1, H, W)
                weight = torch.exp(-dist.clamp_min(0))
            inside = ((r + di >= 0) & (r + di < H) & (c + dj >= 0) & (c + dj < W)).to(weight)
            weight = weight * inside  # the candidate centre must lie in the image
            num += weight * other[:, :, o:o + H, o:o + W]  # x_j, the candidate's centre pixel
            den += weight
    return (num / den).reshape(shape).to(dtype)
