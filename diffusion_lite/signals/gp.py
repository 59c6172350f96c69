"""Random functions from a Gaussian process, Gaussian-process noise, and the exact denoiser.

Chapter 14 treats a signal as a function x(t) observed on a grid t₁ < … < t_T. A Gaussian process
(GP) with kernel k draws x = L z, L Lᵀ = K, K_ij = k(t_i, t_j), z ~ N(0, I) {cite}`rasmussen2006`.
The same construction gives *GP noise*: the forward process x_σ = x₀ + σ L_n ε with a noise
kernel k_n instead of white noise {cite}`kerrigan2023`, {cite}`lim2023`. In whitened coordinates
y = L_n⁻¹ x the noise is white again, y_σ = y₀ + σ ε, so the course's samplers run unchanged on
:class:`WhitenedDenoiser`, which wraps a denoiser of x: D_y(y, σ) = L_n⁻¹ D_x(L_n y, σ).

For GP data, x₀ ~ N(0, K), the optimal denoiser is linear (a Wiener filter):
D*(x_σ) = E[x₀ | x_σ] = K (K + σ² C)⁻¹ x_σ with C = I (white) or C = K_n (GP noise).

Notation (code → symbol):

| code | symbol | meaning |
|---|---|---|
| ``grid`` | t | observation points, shape (T,), in physical units (the interval [0, 1]) |
| ``kernel_matrix(name, s, t, length)`` | K_ij = k(s_i, t_j) | covariance of the GP |
| ``length`` | ℓ | the kernel's length scale (physical units, not grid steps) |
| ``L`` | L | lower Cholesky factor, L Lᵀ = K + jitter·I |
| ``GPNoise`` | L_n | the noise model: ``sample``, ``whiten`` (L_n⁻¹ x), ``color`` (L_n y) |
| ``x``, ``y`` | x, y = L_n⁻¹ x | a signal and its whitened coordinates, shape (B, 1, T) |
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..utils import check_generator, check_int, check_positive

__all__ = ["KERNELS", "kernel_matrix", "cholesky", "sample_gp", "GPNoise", "WhitenedDenoiser",
           "gp_denoiser", "uniform_grid", "irregular_grid"]

F64 = torch.float64


def _rbf(r: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * r**2)


def _matern12(r: torch.Tensor) -> torch.Tensor:
    return torch.exp(-r)


def _matern32(r: torch.Tensor) -> torch.Tensor:
    a = math.sqrt(3) * r
    return (1 + a) * torch.exp(-a)


def _matern52(r: torch.Tensor) -> torch.Tensor:
    a = math.sqrt(5) * r
    return (1 + a + a**2 / 3) * torch.exp(-a)


KERNELS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rbf": _rbf, "matern12": _matern12, "matern32": _matern32, "matern52": _matern52}
"""Stationary kernels k(r) of the scaled distance r = |s − t|/ℓ {cite}`rasmussen2006` (ch. 4)."""


def kernel_matrix(name: str, s: torch.Tensor, t: torch.Tensor | None = None, *,
                  length: float = 0.2, variance: float = 1.0) -> torch.Tensor:
    """K_ij = v · k(|s_i − t_j| / ℓ) in float64, shape (len(s), len(t)) {cite}`rasmussen2006`."""
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; choose one of {sorted(KERNELS)}")
    check_positive(length, "length")
    check_positive(variance, "variance")
    s = torch.as_tensor(s, dtype=F64).reshape(-1)
    t = s if t is None else torch.as_tensor(t, dtype=F64).reshape(-1)
    r = (s[:, None] - t[None, :]).abs() / length  # (S, T)
    return variance * KERNELS[name](r)


def cholesky(K: torch.Tensor, jitter: float = 1e-6) -> torch.Tensor:
    """Lower factor L with L Lᵀ = K + jitter·v̄·I (v̄ the mean variance), in float64.

    Smooth kernels (``"rbf"``) are numerically singular on fine grids; the jitter keeps the factor
    finite and is far below any σ the samplers use.
    """
    K = torch.as_tensor(K, dtype=F64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square matrix, got shape {tuple(K.shape)}")
    scale = float(K.diagonal().mean())
    eye = torch.eye(K.shape[0], dtype=F64)
    L, info = torch.linalg.cholesky_ex(K + jitter * scale * eye)
    if int(info) != 0:
        raise ValueError("K is not positive definite: check the grid has no repeated points, or "
                         "raise the jitter")
    return L


def uniform_grid(n: int) -> torch.Tensor:
    """n equally spaced points on [0, 1], float64, shape (n,)."""
    check_int(n, "n", minimum=2)
    return torch.linspace(0.0, 1.0, n, dtype=F64)


def irregular_grid(n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """n sorted points on [0, 1]: the ends plus n − 2 uniform draws, at least 1e-3 apart."""
    check_int(n, "n", minimum=3)
    check_generator(generator)
    for _ in range(100):
        inner = torch.rand(n - 2, generator=generator, dtype=F64).sort().values
        t = torch.cat([torch.zeros(1, dtype=F64), inner, torch.ones(1, dtype=F64)])
        if float(t.diff().min()) > 1e-3:
            return t
    raise RuntimeError("could not draw a grid with distinct points; use a smaller n")


def sample_gp(n: int, grid: torch.Tensor, *, kernel: str = "rbf", length: float = 0.2,
              variance: float = 1.0, generator: torch.Generator | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """n draws x = L z of the GP on ``grid``, shape (n, 1, T) {cite}`rasmussen2006`."""
    check_int(n, "n", minimum=1)
    check_generator(generator)
    L = cholesky(kernel_matrix(kernel, grid, length=length, variance=variance))
    z = torch.randn(n, L.shape[0], generator=generator, dtype=F64)  # (n, T)
    return (z @ L.T).to(dtype).unsqueeze(1)  # rows L z: (n, 1, T)


class GPNoise:
    """GP-correlated noise L_n ε on a grid: the forward process x_σ = x₀ + σ L_n ε.

    ``whiten(x) = L_n⁻¹ x`` and ``color(y) = L_n y`` map between x and the coordinates y where the
    noise is white; ``kernel="white"`` gives L_n = I, the ordinary forward process
    {cite}`kerrigan2023`, {cite}`lim2023`.
    """

    def __init__(self, grid: torch.Tensor, kernel: str = "matern52", length: float = 0.1,
                 jitter: float = 1e-6) -> None:
        self.grid = torch.as_tensor(grid, dtype=F64).reshape(-1)
        self.kernel, self.length = kernel, length
        T = self.grid.numel()
        if kernel == "white":
            self.L = torch.eye(T, dtype=F64)
        else:
            self.L = cholesky(kernel_matrix(kernel, self.grid, length=length), jitter)
        self.cov = self.L @ self.L.T  # (T, T), what the noise's covariance is

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != 1 or x.shape[2] != self.grid.numel():
            raise ValueError(f"expected signals of shape (B, 1, {self.grid.numel()}) on this "
                             f"grid, got {tuple(x.shape)}")

    def sample(self, n: int, *, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """n draws of L_n ε, shape (n, 1, T)."""
        z = torch.randn(n, 1, self.grid.numel(), generator=generator, dtype=F64)
        return self.color(z).to(dtype)

    def color(self, y: torch.Tensor) -> torch.Tensor:
        """x = L_n y, row by row (the dtype of y is kept)."""
        self._check(y)
        return (y.to(F64) @ self.L.T).to(y.dtype)

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        """y = L_n⁻¹ x by a triangular solve (never an explicit inverse)."""
        self._check(x)
        y = torch.linalg.solve_triangular(self.L, x.to(F64).reshape(-1, x.shape[-1]).T, upper=False)
        return y.T.reshape(x.shape).to(x.dtype)


class WhitenedDenoiser:
    """The contract D_y(y, σ) = L_n⁻¹ D_x(L_n y, σ) for samplers run in whitened coordinates.

    ``denoiser`` is a denoiser of x trained (or exact) for the noise x₀ + σ L_n ε; ``kwargs``
    (e.g. ``labels=`` the grid) are passed on to it. Start the sampler from y = σ_max ε and map its
    output back with ``noise.color(y)``.
    """

    def __init__(self, denoiser: Callable, noise: GPNoise, **kwargs) -> None:
        self.denoiser, self.noise, self.kwargs = denoiser, noise, kwargs
        self.accepts_float_sigma = bool(getattr(denoiser, "accepts_float_sigma", False))

    def __call__(self, y: torch.Tensor, sigma) -> torch.Tensor:
        x0_hat = self.denoiser(self.noise.color(y), sigma, **self.kwargs)
        return self.noise.whiten(x0_hat)


def gp_denoiser(K: torch.Tensor, noise_cov: torch.Tensor | None = None) -> Callable:
    """The exact D*(x, σ) = K (K + σ² C)⁻¹ x for x₀ ~ N(0, K), noise σ L_n ε with C = L_n L_nᵀ
    (C = I when ``noise_cov`` is None); x of shape (B, 1, T), σ a float or (B,) tensor."""
    K = torch.as_tensor(K, dtype=F64)
    C = torch.eye(K.shape[0], dtype=F64) if noise_cov is None else torch.as_tensor(noise_cov, dtype=F64)
    evals, U = torch.linalg.eigh(C)  # generalised eigenproblem via C^{-1/2} K C^{-1/2}
    C_half = U @ torch.diag(evals.clamp_min(1e-300).sqrt()) @ U.T
    C_ihalf = U @ torch.diag(evals.clamp_min(1e-300).rsqrt()) @ U.T
    lam, V = torch.linalg.eigh(C_ihalf @ K @ C_ihalf)  # K = C½ V Λ Vᵀ C½
    A, B = C_half @ V, V.T @ C_ihalf  # D* = A diag(λ/(λ+σ²)) B

    def denoise(x: torch.Tensor, sigma) -> torch.Tensor:
        s2 = torch.as_tensor(sigma, dtype=F64).reshape(-1, 1) ** 2  # (B or 1, 1)
        gain = lam.clamp_min(0) / (lam.clamp_min(0) + s2)  # (B or 1, T)
        z = x.to(F64).squeeze(1) @ B.T  # (B, T)
        return ((gain * z) @ A.T).unsqueeze(1).to(x.dtype)

    return denoise
