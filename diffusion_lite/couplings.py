"""Couplings: which noise ε goes with which data point x₀ when flow matching draws its pairs.

Flow matching may pair data and noise in any way whose marginals are right; the pairing decides
how curved the learned paths are. Three couplings:

- independent: ε ~ N(0, I) drawn apart from x₀ (plain flow matching) {cite}`lipman2023`;
- minibatch optimal transport: within each batch, permute the noise so that Σ_i ‖x₀ⁱ − ε^{π(i)}‖²
  is minimal (an exact assignment problem) {cite}`tong2024` {cite}`pooladian2023`;
- reflow: ε and the point x₀ = Φ(ε) the trained flow's ODE carries it to (2-rectified flow)
  {cite}`liu2023`.

Straightness S = ∫ E‖(x_end − x_start)/(t_end − t_start) − ẋ_t‖² dt / |t_end − t_start| is 0
exactly when every path is a straight line at constant speed, where one Euler step is exact
{cite}`liu2023`.

Notation (code → symbol): ``x0`` x₀ · ``eps`` ε · ``perm`` π · ``ts`` the time grid t_k ·
``xs`` the states x_{t_k}, shape (K + 1, B, ...) · ``chord`` (x_end − x_start)/(t_end − t_start).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from scipy.optimize import linear_sum_assignment

from . import samplers
from .flow_matching import uniform_t_sigmas

__all__ = ["ot_permutation", "ot_pair", "reflow_pairs", "straightness"]


def ot_permutation(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """π minimising Σ_i ‖x₀ⁱ − ε^{π(i)}‖² over permutations (exact; Hungarian-type solver).

    For two equally large point sets with uniform weights, the optimal transport plan is a
    permutation, so this is the exact discrete OT solution (what POT's ``ot.emd`` returns, times
    1/B) {cite}`peyre2019`. Returns ``perm`` of shape (B,): ε[perm] is the noise paired with x₀.
    """
    if x0.shape[0] != eps.shape[0] or x0[0].numel() != eps[0].numel():
        raise ValueError(f"x0 and eps must be equally large batches of equal-size samples, got "
                         f"{tuple(x0.shape)} and {tuple(eps.shape)}")
    cost = torch.cdist(x0.detach().flatten(1).double(), eps.detach().flatten(1).double()) ** 2
    rows, cols = linear_sum_assignment(cost.cpu().numpy())  # rows = 0..B-1 in order
    return torch.as_tensor(cols, device=x0.device)


def ot_pair(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The noise reordered by the minibatch OT coupling: ε[π] with π from :func:`ot_permutation`."""
    return eps[ot_permutation(x0, eps)]


@torch.no_grad()
def reflow_pairs(model: Callable[..., torch.Tensor], n: int, shape: tuple[int, ...], *,
                 steps: int = 32, sampler: str = "dpmpp_2m", sigma_max: float = 1e3,
                 batch_size: int = 4096, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (x₀, ε) with x₀ = Φ(ε) the endpoint of the model's ODE started from noise ε.

    ``model`` is any ``denoiser(x, sigma)`` (a :class:`VelocityDenoiser` for 2-rectified flow);
    the ODE runs through ``samplers.sample(sampler, ...)`` on the ladder uniform in t
    (:func:`uniform_t_sigmas`), starting at x = σ_max ε. Training on these pairs straightens the
    flow (Liu et al. 2023, Algorithm 1) {cite}`liu2023`. Returns x₀ and ε, each (n, *shape).
    """
    if not (isinstance(n, int) and n >= 1 and steps >= 1 and batch_size >= 1):
        raise ValueError("n, steps and batch_size must be positive integers")
    sigmas = uniform_t_sigmas(steps, sigma_max=sigma_max)
    eps = torch.randn((n, *shape), generator=generator, dtype=dtype)  # (n, ...)
    x0 = torch.cat([samplers.sample(sampler, model, sigma_max * e, sigmas.to(dtype))
                    for e in eps.split(batch_size)])
    return x0, eps


def straightness(ts: torch.Tensor, xs: torch.Tensor) -> float:
    """S = Σ_k |Δt_k| · mean_b ‖v_k − chord‖² / |t_K − t_0| for a trajectory ``xs`` (K+1, B, ...).

    v_k = (x_{k+1} − x_k)/(t_{k+1} − t_k) is the velocity on step k and chord = (x_K − x_0)/
    (t_K − t_0) the constant velocity of the straight path; ‖·‖² sums over coordinates
    {cite}`liu2023`. Needs a fine grid (the integral is a Riemann sum).
    """
    ts = torch.as_tensor(ts, dtype=torch.float64)
    if ts.ndim != 1 or ts.numel() < 2 or xs.shape[0] != ts.numel():
        raise ValueError(f"need a 1-D time grid with one entry per state; got ts of shape "
                         f"{tuple(ts.shape)} and xs of shape {tuple(xs.shape)}")
    xs = xs.detach().double().flatten(2)  # (K+1, B, d)
    dt = ts.diff()  # (K,)
    if bool((dt == 0).any()):
        raise ValueError("the time grid has repeated times; use a strictly monotone grid")
    v = xs.diff(dim=0) / dt[:, None, None]  # (K, B, d) velocity on each step
    chord = (xs[-1] - xs[0]) / (ts[-1] - ts[0])  # (B, d)
    dev = (v - chord).pow(2).sum(-1).mean(-1)  # (K,)
    return float((dt.abs() * dev).sum() / (ts[-1] - ts[0]).abs())
