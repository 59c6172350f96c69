"""The Ornstein–Uhlenbeck process: drift towards 0, forgetting, and running it backwards.

Chapter 2. dx = −θx dt + √(2D) dW has an exact Gaussian transition, so every start ends at
N(0, D/θ) — the data is forgotten {cite}`uhlenbeck1930,gardiner2009`; reversing time needs the
score ∇ log p_t {cite}`anderson1982`. Random walks and the heat equation are in
:mod:`diffusion_lite.physics` (which re-exports these functions).

| code name   | symbol       | meaning                                                        |
|-------------|--------------|----------------------------------------------------------------|
| ``theta``   | θ            | restoring rate of the drift −θx                                |
| ``D_coef``  | D            | diffusion constant: dx = −θx dt + √(2D) dW                     |
| ``t``       | t            | time; the stationary law is N(0, D/θ) (N(0, 1) by default)     |
| ``scale``   | e^{−θt}      | how much of x_0 survives: x_t = e^{−θt} x_0 + sigma·ε          |
| ``sigma``   | σ_t          | std of the accumulated OU noise, σ_t² = (D/θ)(1 − e^{−2θt})    |
| ``score_fn``| ∇ log p_t    | ``score_fn(x, t)``: the score of the marginal at time t        |

(``sigma`` here is the OU process's own noise scale, local to this module; from Part II on σ is
the noise level of x_σ = x₀ + σε.)
"""

from __future__ import annotations

import torch

from .utils import check_int

__all__ = ["ou_scale_sigma", "ou_marginal", "simulate_ou", "simulate_ou_reverse"]


def _check_ou(theta: float, D_coef: float) -> None:
    if not theta >= 0:
        raise ValueError(f"theta must be >= 0 (theta = 0 is free diffusion), got {theta}")
    if not D_coef > 0:
        raise ValueError(f"D_coef must be > 0, got {D_coef}")


def _check_run(n_steps: int, t_end: float) -> None:
    check_int(n_steps, "n_steps", minimum=1)
    if not t_end > 0:
        raise ValueError(f"t_end must be > 0, got {t_end}")


def ou_scale_sigma(t: float | torch.Tensor, theta: float = 1.0,
                   D_coef: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(e^{−θt}, σ_t) with x_t = e^{−θt}·x_0 + σ_t·ε exactly {cite}`uhlenbeck1930,gardiner2009`.

    σ_t² = (D/θ)(1 − e^{−2θt}); at θ = 0 this is 2Dt, free diffusion (chapter 1).
    """
    _check_ou(theta, D_coef)
    t = torch.as_tensor(t, dtype=torch.float64)
    if bool(torch.any(t < 0)):
        raise ValueError("t must be >= 0")
    scale = torch.exp(-theta * t)
    if theta == 0:
        var = 2 * D_coef * t
    else:
        var = -(D_coef / theta) * torch.expm1(-2 * theta * t)
    return scale, var.sqrt()


def ou_marginal(mean0: float | torch.Tensor, var0: float | torch.Tensor, t: float | torch.Tensor,
                theta: float = 1.0, D_coef: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and variance of x_t for dx = −θx dt + sqrt(2D) dW {cite}`uhlenbeck1930,gardiner2009`.

    m_t = e^{−θt}·m_0,  v_t = e^{−2θt}·v_0 + (D/θ)(1 − e^{−2θt}). Every start forgets itself
    at rate θ (mean) and 2θ (variance) and ends at N(0, D/θ).
    """
    scale, sigma = ou_scale_sigma(t, theta, D_coef)
    mean0 = torch.as_tensor(mean0, dtype=torch.float64)
    var0 = torch.as_tensor(var0, dtype=torch.float64)
    if bool(torch.any(var0 < 0)):
        raise ValueError("var0 must be >= 0")
    return scale * mean0, scale**2 * var0 + sigma**2


def simulate_ou(x0: torch.Tensor, t_end: float, n_steps: int, *, theta: float = 1.0,
                D_coef: float = 1.0, method: str = "euler", generator: torch.Generator | None = None,
                return_path: bool = False) -> torch.Tensor:
    """Simulate dx = −θx dt + sqrt(2D) dW from ``x0`` up to ``t_end`` in ``n_steps`` steps.

    ``method="euler"``: Euler–Maruyama, x ← x − θx·h + sqrt(2Dh)·z {cite}`sarkka2019`;
    ``method="exact"``: the exact transition x ← e^{−θh}x + σ_h·z (no discretisation error).
    Returns x at ``t_end`` (shape of ``x0``), or the path ``(n_steps + 1, *x0.shape)``.
    """
    _check_ou(theta, D_coef)
    if method not in ("euler", "exact"):
        raise ValueError(f"unknown method {method!r}; choose one of ('euler', 'exact')")
    _check_run(n_steps, t_end)
    h = t_end / n_steps
    if method == "euler":
        a, b = 1 - theta * h, (2 * D_coef * h) ** 0.5
        if theta * h >= 1:
            raise ValueError(f"Euler–Maruyama needs theta·h < 1 (got {theta * h:.3g}); use more steps")
    else:
        scale, sigma = ou_scale_sigma(h, theta, D_coef)
        a, b = float(scale), float(sigma)
    x, path = x0, [x0]
    for _ in range(n_steps):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = a * x + b * z
        if return_path:
            path.append(x)
    return torch.stack(path) if return_path else x


def simulate_ou_reverse(score_fn, x_end: torch.Tensor, t_end: float, n_steps: int, *,
                        theta: float = 1.0, D_coef: float = 1.0, spacing: str = "uniform",
                        generator: torch.Generator | None = None,
                        return_path: bool = False) -> torch.Tensor:
    """Run the OU process backwards in time from ``x_end`` (a sample of p_{t_end}) to t = 0.

    Reverse-time SDE {cite}`anderson1982`: dx = [−θx − 2D·∇log p_t(x)] dt + sqrt(2D) dW̄, integrated
    from t_end down to 0 with Euler–Maruyama: x ← x + h·(θx + 2D·s(x, t)) + sqrt(2Dh)·z, where
    ``score_fn(x, t)`` returns ∇ log p_t(x) (shape of x). ``spacing="uniform"`` uses equal steps;
    ``"quadratic"`` uses the times t_i = t_end·(1 − i/n)², finer near t = 0 where the score of
    sharp data changes fastest. Returns x at t = 0, or the path ``(n_steps + 1, *x.shape)``
    ordered from t_end to 0.
    """
    _check_ou(theta, D_coef)
    _check_run(n_steps, t_end)
    if spacing not in ("uniform", "quadratic"):
        raise ValueError(f"unknown spacing {spacing!r}; choose one of ('uniform', 'quadratic')")
    ramp = torch.linspace(1.0, 0.0, n_steps + 1, dtype=torch.float64)
    times = (t_end * (ramp if spacing == "uniform" else ramp**2)).tolist()  # t_end, ..., 0
    x, path = x_end, [x_end]
    for i in range(n_steps):
        t, h = times[i], times[i] - times[i + 1]
        s = score_fn(x, t)
        if s.shape != x.shape:
            raise ValueError(f"score_fn returned shape {tuple(s.shape)}, expected {tuple(x.shape)}")
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x + h * (theta * x + 2 * D_coef * s) + (2 * D_coef * h) ** 0.5 * z
        if return_path:
            path.append(x)
    return torch.stack(path) if return_path else x
