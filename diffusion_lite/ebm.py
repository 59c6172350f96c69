"""Energy-based models: a network that outputs an energy, trained by denoising score matching.

The lineage score-based diffusion came from {cite}`song2019`: a noise-conditional energy
E_θ(x, σ) defines an unnormalised density p_σ(x) ∝ exp(−E_θ(x, σ)) whose score is

    s_θ(x, σ) = −∇_x E_θ(x, σ)                       (autograd; no normaliser needed)

and denoising score matching {cite}`vincent2011` fits it: E ‖σ s_θ(x₀ + σε, σ) + ε‖² over
σ ~ p_train. By Tweedie, D(x, σ) = x + σ² s_θ(x, σ), so an EBM *is* a denoiser and every sampler
of chapter 6 runs it; this module samples it the way the lineage did, by annealed Langevin
dynamics (Song & Ermon 2019, Algorithm 1): on a decreasing ladder σ_1 > … > σ_L, T steps each of

    x ← x + δ_i s_θ(x, σ_i) + √(2δ_i) z,   δ_i = δ σ_i²/σ_L²   (z ~ N(0, I)).

The unadjusted update is stationary only approximately: its bias is of the order of δ_i.

Notation (code → symbol): ``h`` the network (written ψ_θ in prose; h is a time step elsewhere)
in E_θ(x, σ) = ‖x‖²/2(σ²+σ_d²) + ψ_θ(c_in x, c_noise)/σ · ``sigma_data`` σ_d ·
``step_size`` δ the Langevin step size at the smallest σ · ``n_steps`` T per level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from . import mixtures, pretrained
from .losses import LogNormalSigma
from .models import MLP

__all__ = ["EnergyModel", "EBMConfig", "train_ebm", "annealed_langevin", "COURSE_MODELS"]


class EnergyModel(nn.Module):
    """E_θ(x, σ) = ‖x‖²/2(σ² + σ_d²) + ψ_θ(c_in x, ¼ ln σ)/σ, c_in = 1/√(σ² + σ_d²).

    The first term is the energy of Gaussian data with the data's scale (exact at large σ); the
    network learns the rest. Score and denoiser follow by autograd.
    """

    def __init__(self, dim: int = 2, hidden: int = 64, depth: int = 3, sigma_data: float = 1.0,
                 *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if sigma_data <= 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.h = MLP(dim=dim, hidden=hidden, depth=depth, out_dim=1, generator=generator)
        self.sigma_data = float(sigma_data)

    def energy(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """E_θ(x, σ) per sample, shape (B,); ``sigma`` of shape (B,)."""
        var = sigma**2 + self.sigma_data**2  # (B,) variance of x_σ if x₀ were Gaussian
        base = (x**2).sum(1) / (2 * var)  # the Gaussian energy: exact when σ ≫ σ_d
        return base + self.h(x * var.rsqrt()[:, None], sigma.log() / 4)[:, 0] / sigma  # (B,)

    def score(self, x: torch.Tensor, sigma: float | torch.Tensor, *,
              create_graph: bool = False) -> torch.Tensor:
        """s_θ(x, σ) = −∇_x E_θ(x, σ), shape of ``x``."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
        with torch.enable_grad():
            x = x.detach().requires_grad_(True) if not create_graph else x.requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy(x, sigma).sum(), x, create_graph=create_graph)
        return -grad

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """The denoiser D(x, σ) = x + σ² s_θ(x, σ) (Tweedie), so samplers can run the EBM."""
        s2 = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0]) ** 2
        return (x + s2[:, None] * self.score(x, sigma)).detach()


@dataclass(frozen=True)
class EBMConfig:
    steps: int = 1500  # Adam steps on fresh batches from the mixture
    batch_size: int = 256  # samples per step
    lr: float = 2e-3  # Adam learning rate (cosine decay to 0)
    p_mean: float = -1.0  # ln σ ~ N(p_mean, p_std²) during training
    p_std: float = 1.2
    hidden: int = 64  # width of h_θ
    seed: int = 0  # initialisation, batches, σ and ε

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "hidden"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not self.p_std > 0:
            raise ValueError("lr and p_std must be finite and > 0")


def _ring_sigma_data() -> float:
    mix = mixtures.ring()
    return (mix.total_variance / mix.dim) ** 0.5


def _build(cfg: EBMConfig) -> EnergyModel:
    return EnergyModel(hidden=cfg.hidden, sigma_data=_ring_sigma_data(),
                       generator=torch.Generator().manual_seed(cfg.seed))


def train_ebm(cfg: EBMConfig, sample=None) -> tuple[EnergyModel, dict]:
    """Denoising score matching, min E‖σ s_θ(x₀ + σε, σ) + ε‖², on ``sample`` (default: the ring)."""
    sample = sample or mixtures.ring().sample
    model, gen = _build(cfg), torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    sigma_dist, history = LogNormalSigma(cfg.p_mean, cfg.p_std), []
    for _ in tqdm(range(cfg.steps), disable=True):
        x0 = sample(cfg.batch_size, generator=gen)  # (B, d)
        sigma = sigma_dist.sample(cfg.batch_size, generator=gen)  # (B,)
        eps = torch.randn(x0.shape, generator=gen)
        s = model.score(x0 + sigma[:, None] * eps, sigma, create_graph=True)  # (B, d)
        loss = ((sigma[:, None] * s + eps) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())
    tail = history[-50:]
    return model.eval(), {"final_loss": sum(tail) / len(tail)}


@torch.no_grad()
def annealed_langevin(score, x: torch.Tensor, sigmas: torch.Tensor, *, n_steps: int = 50,
                      step_size: float = 1e-3,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1) with ``score(x, σ)`` on ``sigmas``.

    ``sigmas`` decreases; at level i, T = ``n_steps`` steps x ← x + δ_i s(x, σ_i) + √(2δ_i) z with
    δ_i = δ σ_i²/σ_L², δ = ``step_size`` (the step shrinks with the noise level, keeping the
    signal-to-noise ratio of each step fixed). Returns the final x; no denoising step is added.
    """
    if not (isinstance(n_steps, int) and n_steps >= 1) or not step_size > 0:
        raise ValueError(f"need n_steps >= 1 and step_size > 0, got {n_steps!r}, {step_size!r}")
    if sigmas.ndim != 1 or not bool((sigmas[1:] < sigmas[:-1]).all()) or not bool((sigmas > 0).all()):
        raise ValueError("sigmas must be a 1D, strictly decreasing ladder of positive levels")
    last = float(sigmas[-1])
    for sigma in sigmas.tolist():
        step = step_size * sigma**2 / last**2  # δ_i
        for _ in range(n_steps):
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + step * score(x, sigma) + math.sqrt(2 * step) * z
    return x


pretrained.register("ring_ebm", pretrained.Entry(EBMConfig(), _build, train_ebm,
                                                 lambda: mixtures.ring().fingerprint()))
COURSE_MODELS = [("ring_ebm", EBMConfig(seed=s)) for s in (0, 1, 2)]
