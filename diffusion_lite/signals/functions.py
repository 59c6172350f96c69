"""Diffusion over functions: cached models trained with white or GP noise, and their evaluation.

The data are draws of a GP (kernel ``data_kernel``, length ``data_length``) on 64 equally spaced
points of [0, 1]. Two forward processes: white noise x₀ + σ ε, and GP noise x₀ + σ L_n ε
{cite}`kerrigan2023`, {cite}`lim2023`. Both train the same resolution-agnostic network
(:class:`~diffusion_lite.nets.signal_net.SignalNet` with the integral mixer, the grid as its label)
with :func:`~diffusion_lite.training.train`: the GP-noise model is trained in whitened coordinates
y = L_n⁻¹ x, where its noise is white, through :class:`Colored` (F_y(u) = L_n⁻¹ F(L_n u)); its
denoiser of x is the inner network in EDM's preconditioning. Samples on any grid come from the
unchanged samplers, in whitened coordinates for GP noise (:class:`~.gp.WhitenedDenoiser`).

The covariance of n samples is scored against the kernel relative to a noise floor: the relative
Frobenius distance ‖Ĉ_gen − Ĉ_a‖/‖K‖ to the empirical covariance of n exact draws, divided by the
same statistic between two independent sets of n exact draws, ‖Ĉ_b − Ĉ_a‖/‖K‖.

Notation (code → symbol): ``noise`` "white" (C = I) or "gp" (C = K_n) · ``grid`` t ·
``K`` the data kernel matrix · ``cov_ratio`` covariance error ÷ floor · ``spectrum`` mean |x̂(f)|².
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import pretrained, samplers, training
from ..denoisers import Denoiser
from ..nets.signal_net import SignalNetConfig
from ..schedules import karras_sigmas
from ..utils import check_generator, check_int
from .common import build_denoiser, edm_recipe, train_denoiser
from .gp import GPNoise, WhitenedDenoiser, kernel_matrix, sample_gp, uniform_grid

__all__ = ["FunctionModelConfig", "Colored", "build", "train_function_model", "function_denoiser",
           "sample_functions", "covariance_error", "cov_ratio", "power_spectrum", "COURSE_MODELS",
           "function_configs"]

F64 = torch.float64


def _net() -> SignalNetConfig:
    return SignalNetConfig(channels=24, blocks=4, mixer="integral")


def _train() -> training.TrainConfig:
    return edm_recipe(steps=600, batch_size=64, lr=2e-3, p_mean=-1.0, p_std=1.4)


@dataclass(frozen=True)
class FunctionModelConfig:
    noise: str = "gp"  # the forward process: "white" (x₀ + σε) or "gp" (x₀ + σ L_n ε)
    seed: int = 0  # initialisation and the generator behind batches, σ and ε
    n_points: int = 64  # training grid: equally spaced on [0, 1]
    data_kernel: str = "rbf"  # the data's GP kernel k …
    data_length: float = 0.15  # … and its length scale ℓ (physical units)
    noise_kernel: str = "matern52"  # GP noise kernel k_n (used when noise == "gp") …
    noise_length: float = 0.1  # … its length scale …
    noise_jitter: float = 1e-4  # … and the jitter added to K_n (relative to its variance)
    net: SignalNetConfig = field(default_factory=_net)
    train: training.TrainConfig = field(default_factory=_train)

    def __post_init__(self) -> None:
        if self.noise not in ("white", "gp"):
            raise ValueError(f"unknown noise {self.noise!r}; choose 'white' or 'gp'")
        if self.net.mixer != "integral" or self.net.cond_channels != 0:
            raise ValueError("the function models need SignalNetConfig(mixer='integral', "
                             "cond_channels=0): the grid is their only label")

    def noise_model(self, grid: torch.Tensor) -> GPNoise:
        kernel = self.noise_kernel if self.noise == "gp" else "white"
        return GPNoise(grid, kernel, self.noise_length, self.noise_jitter)

    def data_cov(self, grid: torch.Tensor) -> torch.Tensor:
        return kernel_matrix(self.data_kernel, grid, length=self.data_length)

    def sigma_data(self) -> float:
        """σ_d of the coordinates the model is trained in: √(tr(L_n⁻¹ K L_n⁻ᵀ)/T)."""
        grid = uniform_grid(self.n_points)
        L = self.noise_model(grid).L
        M = torch.linalg.solve_triangular(L, self.data_cov(grid), upper=False)  # L⁻¹K
        M = torch.linalg.solve_triangular(L, M.T, upper=False)  # L⁻¹ K L⁻ᵀ
        return math.sqrt(float(M.trace()) / self.n_points)


class Colored(nn.Module):
    """F_y(u, c, t) = L_n⁻¹ F(L_n u, c, t): a network of x used in whitened coordinates y.

    With EDM's preconditioning, D_y(y) = L_n⁻¹ D_x(L_n y), where D_x is ``inner`` in the same
    preconditioning; so training D_y with white noise trains D_x for GP noise.
    """

    def __init__(self, inner: nn.Module, noise: GPNoise) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("L", noise.L.to(torch.float32), persistent=False)
        # An explicit inverse, once, in float64: training calls this every step, and a matrix
        # product is cheaper than a triangular solve; the samplers use GPNoise.whiten instead.
        self.register_buffer("L_inv", torch.linalg.inv(noise.L).to(torch.float32),
                             persistent=False)

    def forward(self, u: torch.Tensor, c_noise: torch.Tensor, labels=None) -> torch.Tensor:
        return self.inner(u @ self.L.T, c_noise, labels) @ self.L_inv.T


def build(cfg: FunctionModelConfig) -> Denoiser:
    """D_x: the inner SignalNet in EDM's preconditioning with the training coordinates' σ_d."""
    return build_denoiser(cfg.net, cfg.seed, "edm", cfg.sigma_data())


def train_function_model(cfg: FunctionModelConfig) -> tuple[nn.Module, dict]:
    """Train on fresh GP draws each step with :func:`training.train` (whitened for GP noise)."""
    den = build(cfg)
    grid = uniform_grid(cfg.n_points)
    noise = cfg.noise_model(grid)
    labels = grid.to(torch.float32)[None, None, :]  # (1, 1, T)

    def data(n: int, generator: torch.Generator):
        x0 = sample_gp(n, grid, kernel=cfg.data_kernel, length=cfg.data_length,
                       generator=generator)  # (n, 1, T)
        return noise.whiten(x0), labels.expand(n, 1, -1)

    net = den.net if cfg.noise == "white" else Colored(den.net, noise)
    state, info = train_denoiser(net, data, cfg.train, cfg.seed, sigma_data=den.sigma_data)
    ema = state.ema.net if cfg.noise == "white" else state.ema.net.inner
    den.net.load_state_dict(ema.state_dict())
    return den, info


def function_configs(seeds=(0, 1, 2)) -> list[FunctionModelConfig]:
    return [FunctionModelConfig(noise=n, seed=s) for n in ("white", "gp") for s in seeds]


def function_denoiser(den: Denoiser, grid: torch.Tensor):
    """D_x(x, σ) on ``grid`` (the grid passed as the network's label)."""
    labels = torch.as_tensor(grid).to(torch.float32)[None, None, :]

    def denoise(x: torch.Tensor, sigma) -> torch.Tensor:
        return den(x, sigma, labels=labels.expand(x.shape[0], 1, -1))

    denoise.accepts_float_sigma = True
    return denoise


@torch.no_grad()
def sample_functions(denoiser, cfg: FunctionModelConfig, grid: torch.Tensor, n: int, *,
                     steps: int = 16, sigma_max: float = 20.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """n samples on ``grid`` (B, 1, T) with DPM-Solver++(2M); ``denoiser(x, σ)`` is a denoiser of
    x for the config's noise; GP noise runs the sampler on y = L_n⁻¹ x and returns L_n y."""
    check_int(n, "n", minimum=1)
    check_generator(generator)
    noise = cfg.noise_model(grid)
    sigmas = karras_sigmas(steps, 0.002, sigma_max).to(torch.float32)
    y = sigmas[0] * torch.randn(n, 1, noise.grid.numel(), generator=generator)
    y = samplers.sample("dpmpp_2m", WhitenedDenoiser(denoiser, noise), y, sigmas,
                        generator=generator)
    return noise.color(y)


def covariance_error(x: torch.Tensor, reference: torch.Tensor, K: torch.Tensor) -> float:
    """‖Ĉ_x − Ĉ_ref‖_F / ‖K‖_F with Ĉ the empirical covariances of the rows of x and reference."""
    cx, cr = (torch.cov(a.reshape(a.shape[0], -1).to(F64).T) for a in (x, reference))
    return float(torch.linalg.matrix_norm(cx - cr) / torch.linalg.matrix_norm(K))


def cov_ratio(x: torch.Tensor, K: torch.Tensor, *, generator: torch.Generator | None = None
              ) -> tuple[float, float]:
    """(error, floor): x against n exact draws N(0, K), and two sets of n exact draws."""
    n, T = x.shape[0], K.shape[0]
    L = torch.linalg.cholesky(K + 1e-6 * torch.eye(T, dtype=F64))
    a, b = (torch.randn(n, T, generator=generator, dtype=F64) @ L.T for _ in range(2))
    return covariance_error(x, a, K), covariance_error(b, a, K)


def power_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Mean |FFT|² over samples of signals on a uniform grid, (T//2 + 1,), normalised per point."""
    X = torch.fft.rfft(x.reshape(x.shape[0], -1).to(F64), dim=-1) / x.shape[-1]
    return (X.abs() ** 2).mean(0)


def _fingerprint() -> str:
    return hashlib.sha256(b"gp draws from sample_gp; no stored data").hexdigest()


pretrained.register("gp_functions", pretrained.Entry(FunctionModelConfig(), build,
                                                     train_function_model, _fingerprint))
COURSE_MODELS = [("gp_functions", cfg) for cfg in function_configs()]
