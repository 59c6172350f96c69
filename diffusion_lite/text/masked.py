r"""Masked (absorbing-state) discrete diffusion: forward masking, the bound, the k-step sampler.

Text is discrete, so there is no Gaussian noise to add: the forward process *masks* tokens. Each
position keeps its token with probability α_t and becomes the absorbing token [M] otherwise,
independently {cite}`austin2021`:

    q(z_t | x) = Π_l [ α_t 1(z_l = x_l) + (1 − α_t) 1(z_l = [M]) ],   α_0 = 1, α_1 = 0.

The network predicts p_θ(x_l | z_t) at every masked position; unmasked positions are copied
(they are already right). The negative ELBO in continuous time is a *weighted masked
cross-entropy* {cite}`sahoo2024,shi2024`

    L(x) = ∫₀¹ w(t) E_{q(z_t|x)} [ Σ_{l: z_l=[M]} −log p_θ(x_l | z_t) ] dt,  w(t) = −α'_t / (1 − α_t),

which is ≥ −log p_θ(x) and does not depend on the schedule α_t: substituting m = 1 − α_t turns
it into Σ_{k=1}^{L} (1/k) E_{|S|=k}[ Σ_{l∈S} −log p_θ(x_l | x with S masked) ] — an average over
the number of masked tokens k {cite}`ou2024`. Cross-entropy, not a squared error and not a
"binary" cross-entropy, is the loss of discrete diffusion.

Notation (code → symbol):

| code | symbol / meaning |
|---|---|
| ``x0`` | x (B, L), clean token ids |
| ``z`` | z_t (B, L), ids with [M] = ``mask_id`` where masked |
| ``t`` | diffusion time t ∈ [0, 1] (t = 1: all masked) |
| ``alpha(t)`` | α_t, probability a token is still visible; ``1 - alpha`` the masking rate |
| ``loss_weight(t)`` | w(t) = −α'_t/(1 − α_t) (linear α_t = 1 − t: w = 1/t) |
| ``k`` | number of masked positions |
| ``net(z)`` | logits (B, L, V) of p_θ(x_l \| z) over the V real tokens |
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["SCHEDULES", "ORDERS", "ESTIMATORS", "alpha", "loss_weight", "mask_tokens",
           "masked_cross_entropy", "diffusion_loss", "exact_bound", "categorical",
           "reveal_counts", "sample"]

SCHEDULES = ("linear", "cosine")
ORDERS = ("random", "confidence")
ESTIMATORS = ("time", "count")


def _check_schedule(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")


def alpha(t: torch.Tensor | float, schedule: str = "linear") -> torch.Tensor:
    """α_t, the probability that a token is still unmasked at time t: 1 − t or cos(πt/2)."""
    _check_schedule(schedule)
    t = torch.as_tensor(t, dtype=torch.float64)
    return 1 - t if schedule == "linear" else torch.cos(math.pi / 2 * t)


def loss_weight(t: torch.Tensor | float, schedule: str = "linear") -> torch.Tensor:
    """w(t) = −α'_t / (1 − α_t): 1/t (linear) or (π/2) sin(πt/2) / (1 − cos(πt/2)) (cosine)."""
    _check_schedule(schedule)
    t = torch.as_tensor(t, dtype=torch.float64)
    if schedule == "linear":
        return 1 / t
    half = math.pi / 2 * t
    return (math.pi / 2) * torch.sin(half) / (1 - torch.cos(half))


def mask_tokens(x0: torch.Tensor, t: torch.Tensor, mask_id: int, *, schedule: str = "linear",
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample z_t ~ q(z_t | x): each token becomes [M] independently with probability 1 − α_t.

    ``t`` is a float or has shape (B,) (one time per sequence). Returns ``(z, masked)``, (B, L).
    """
    keep = alpha(t, schedule).to(x0.device)
    if keep.ndim > 1 or keep.numel() not in (1, x0.shape[0]):
        raise ValueError(f"t must be a float or shape (B,) = ({x0.shape[0]},), got {tuple(keep.shape)}")
    keep = keep.reshape(-1, 1)  # (B, 1) or (1, 1)
    u = torch.rand(x0.shape, generator=generator, dtype=torch.float64).to(x0.device)  # (B, L)
    masked = u >= keep
    return torch.where(masked, torch.full_like(x0, mask_id), x0), masked


def masked_cross_entropy(logits: torch.Tensor, x0: torch.Tensor, masked: torch.Tensor,
                         weight: torch.Tensor) -> torch.Tensor:
    """Σ_{l masked} weight · (−log p_θ(x_l | z)) per sequence, in nats: shape (B,).

    A *sum* over the masked positions only (visible positions carry no loss: their token is copied),
    multiplied by one weight per sequence — w(t) for the time estimator, L/k for the count one.
    """
    ce = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")  # (B, L)
    return weight.to(ce.dtype) * (ce * masked).sum(dim=1)


def _stratified(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """n draws in [0, 1), one per stratum [i/n, (i+1)/n), shuffled: each is marginally uniform."""
    u = (torch.arange(n, dtype=torch.float64) + torch.rand(n, generator=generator,
                                                           dtype=torch.float64)) / n
    return u[torch.randperm(n, generator=generator)]


def diffusion_loss(net: Callable[..., torch.Tensor], x0: torch.Tensor, mask_id: int, *,
                   estimator: str = "count", schedule: str = "linear", stratified: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """One unbiased Monte Carlo draw of the bound L(x) per sequence, in nats: shape (B,).

    ``estimator="time"``: t ~ U(0, 1), mask with rate 1 − α_t, weight w(t).
    ``estimator="count"``: k ~ U{1, …, L}, mask k positions chosen uniformly, weight L/k — the
    same expectation with t integrated out exactly, and never an all-visible (wasted) draw.
    ``stratified`` spreads the batch's t (or k) over [0, 1) like a low-discrepancy sampler
    (each draw stays marginally uniform, so the estimate stays unbiased) {cite}`sahoo2024`.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {ESTIMATORS}")
    B, L = x0.shape
    u = _stratified(B, generator) if stratified else torch.rand(B, generator=generator,
                                                                dtype=torch.float64)
    if estimator == "time":
        t = u.clamp_min(1e-6)  # t = 0 masks nothing (and w = ∞ · 0): avoid the single point
        z, masked = mask_tokens(x0, t, mask_id, schedule=schedule, generator=generator)
        weight = loss_weight(t, schedule)
    else:
        k = (u * L).floor().long() + 1  # (B,) in 1 … L
        rank = torch.rand(B, L, generator=generator).argsort(dim=1).argsort(dim=1)  # random ranks
        masked = (rank < k[:, None]).to(x0.device)  # exactly k masked positions per row
        z = torch.where(masked, torch.full_like(x0, mask_id), x0)
        weight = L / k.to(torch.float64)
    return masked_cross_entropy(net(z), x0, masked, weight.to(x0.device))


@torch.no_grad()
def exact_bound(net: Callable[..., torch.Tensor], x0: torch.Tensor, mask_id: int) -> torch.Tensor:
    """L(x) exactly, by enumerating all 2^L − 1 mask sets S (small L only): shape (B,), nats.

    L(x) = Σ_{S ≠ ∅} [(|S| − 1)! (L − |S|)! / L!] Σ_{l∈S} −log p_θ(x_l | x with S masked): the
    time integral ∫ m^{|S|−1} (1 − m)^{L−|S|} dm is a Beta function.
    """
    B, L = x0.shape
    if L > 14:
        raise ValueError(f"L={L} gives 2^L mask sets; exact_bound is for L <= 14 "
                         "(use diffusion_loss and average many draws)")
    sets = torch.tensor(list(itertools.product([False, True], repeat=L))[1:], device=x0.device)
    k = sets.sum(1)  # (2^L − 1,)
    weight = torch.tensor([math.factorial(int(j) - 1) * math.factorial(L - int(j))
                           / math.factorial(L) for j in k], dtype=torch.float64)
    out = []
    for row in x0:  # one batch of all mask sets per sequence
        xs = row.expand(len(sets), L)
        z = torch.where(sets, torch.full_like(xs, mask_id), xs)
        out.append(masked_cross_entropy(net(z), xs, sets, weight.to(x0.device)).sum())
    return torch.stack(out)


def categorical(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample ids ∝ softmax(logits) over the last dim by the Gumbel-max trick, in float64.

    In float32 the uniforms u are never closer to 1 than 2^-24, so the Gumbel noise −log(−log u)
    is capped near 16.6: rare tokens are under-sampled, an unintended lower temperature
    {cite}`zheng2024`. Float64 raises the cap to about 36.7.
    """
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64).to(logits.device)
    u = u.clamp(torch.finfo(torch.float64).tiny, 1.0)
    gumbel = -torch.log(-torch.log(u))
    return (logits.to(torch.float64) + gumbel).argmax(dim=-1)


def reveal_counts(n_masked: torch.Tensor, steps: int, schedule: str = "linear") -> torch.Tensor:
    """How many tokens each of ``steps`` steps reveals: (B, steps) summing to ``n_masked`` (B,).

    Step i goes from t_i = 1 − i/steps to t_{i+1}; after it, round(n · (1 − α(t_{i+1})))
    positions stay masked, so the counts follow the schedule and add up exactly.
    """
    _check_schedule(schedule)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    t = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    left = torch.round(n_masked.to(torch.float64)[:, None] * (1 - alpha(t, schedule))[None])
    left[:, 0], left[:, -1] = n_masked.to(torch.float64), 0  # all masked at t=1, none at t=0
    return (left[:, :-1] - left[:, 1:]).long()  # (B, steps)


@torch.no_grad()
def sample(net: Callable[..., torch.Tensor], z: torch.Tensor, steps: int, mask_id: int, *,
           schedule: str = "linear", order: str = "random", generator: torch.Generator | None = None,
           callback: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Fill every [M] of ``z`` (B, L) in ``steps`` steps; tokens given in ``z`` are never changed.

    Each step predicts all masked positions at once, draws a token for each in float64
    (:func:`categorical`), and reveals exactly the scheduled number (:func:`reveal_counts`):
    ``order="random"`` picks them uniformly among the masked positions — the reverse of the
    forward process, exact when each step reveals one token (any-order autoregression);
    ``order="confidence"`` picks those whose drawn token the model found most likely
    (MaskGIT-style greedy order {cite}`chang2022`). All-masked ``z`` generates; a ``z`` with a
    given prefix and suffix infills. ``callback(i, z)`` sees the state after step i.
    """
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose one of {ORDERS}")
    if z.ndim != 2 or z.dtype != torch.long:
        raise ValueError(f"z must be (B, L) int64 token ids, got {tuple(z.shape)} {z.dtype}")
    masked = z == mask_id
    counts = reveal_counts(masked.sum(1), steps, schedule).to(z.device)  # (B, steps)
    z = z.clone()
    for i in range(steps):
        logits = net(z).to(torch.float64)  # (B, L, V)
        x_draw = categorical(logits, generator)  # (B, L) a candidate token everywhere
        if order == "random":
            score = torch.rand(z.shape, generator=generator, dtype=torch.float64).to(z.device)
        else:
            score = logits.log_softmax(-1).gather(-1, x_draw[..., None])[..., 0]
        score = score.masked_fill(~masked, -math.inf)  # only masked positions compete
        rank = score.argsort(dim=1, descending=True).argsort(dim=1)  # 0 = first to reveal
        reveal = masked & (rank < counts[:, i, None])
        z = torch.where(reveal, x_draw, z)
        masked &= ~reveal
        if callback is not None:
            callback(i, z)
    return z
