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
| ``scale``   | a_t = e^{−θt}| how much of x_0 survives: x_t = a_t x_0 + b_t ε                 |
| ``noise_std``| b_t         | std of the accumulated OU noise, b_t² = (D/θ)(1 − e^{−2θt})    |
| ``h``       | h = Δt       | one time step of a discretisation (Euler–Maruyama)             |
| ``score_fn``| ∇ log p_t    | ``score_fn(x, t)``: the score of the marginal at time t        |
| —           | g = √(2D)    | the SDE's diffusion coefficient, dx = f dt + g dW              |

σ is kept for the variance-exploding noise level of Part II (x_σ = x₀ + σε). With θ = D = 1,
a_t² = ᾱ(t) = e^{−2θt} and b_t² = 1 − ᾱ(t): chapter 3's VP forward process, whose σ-view
noise level is σ = b_t / a_t = sqrt(e^{2θt} − 1).
"""

from __future__ import annotations

import torch

from .utils import check_int

__all__ = ["ou_scale_std", "ou_marginal", "simulate_ou", "simulate_ou_reverse", "simulate_ou_flow",
           "reverse_times"]

SPACINGS = ("uniform", "quadratic")


def _check_ou(theta: float, D_coef: float) -> None:
    if not theta >= 0:
        raise ValueError(f"theta must be >= 0 (theta = 0 is free diffusion), got {theta}")
    if not D_coef > 0:
        raise ValueError(f"D_coef must be > 0, got {D_coef}")


def _check_run(n_steps: int, t_end: float) -> None:
    check_int(n_steps, "n_steps", minimum=1)
    if not t_end > 0:
        raise ValueError(f"t_end must be > 0, got {t_end}")


def ou_scale_std(t: float | torch.Tensor, theta: float = 1.0,
                 D_coef: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(a_t, b_t) = (e^{−θt}, noise std) with x_t = a_t·x_0 + b_t·ε exactly
    {cite}`uhlenbeck1930,gardiner2009`.

    b_t² = (D/θ)(1 − e^{−2θt}); at θ = 0 this is 2Dt, free diffusion (chapter 1).
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
    scale, noise_std = ou_scale_std(t, theta, D_coef)
    mean0 = torch.as_tensor(mean0, dtype=torch.float64)
    var0 = torch.as_tensor(var0, dtype=torch.float64)
    if bool(torch.any(var0 < 0)):
        raise ValueError("var0 must be >= 0")
    return scale * mean0, scale**2 * var0 + noise_std**2


def simulate_ou(x0: torch.Tensor, t_end: float, n_steps: int, *, theta: float = 1.0,
                D_coef: float = 1.0, method: str = "euler", generator: torch.Generator | None = None,
                return_path: bool = False) -> torch.Tensor:
    """Simulate dx = −θx dt + sqrt(2D) dW from ``x0`` up to ``t_end`` in ``n_steps`` steps.

    ``method="euler"``: Euler–Maruyama, x ← x − θx·h + sqrt(2Dh)·z {cite}`sarkka2019`;
    ``method="exact"``: the exact transition x ← a_h·x + b_h·z (no discretisation error).
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
        scale, noise_std = ou_scale_std(h, theta, D_coef)
        a, b = float(scale), float(noise_std)
    x, path = x0, [x0]
    for _ in range(n_steps):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = a * x + b * z
        if return_path:
            path.append(x)
    return torch.stack(path) if return_path else x


def reverse_times(t_end: float, n_steps: int, spacing: str = "uniform") -> list[float]:
    """The decreasing times t_0 = t_end > t_1 > ... > t_n = 0 of a reverse-time run.

    ``"uniform"``: t_i = t_end·(1 − i/n); ``"quadratic"``: t_i = t_end·(1 − i/n)², finer near
    t = 0 where the score of sharp data changes fastest. Python floats, so a loop over them
    does no tensor work per step.
    """
    _check_run(n_steps, t_end)
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; choose one of {SPACINGS}")
    ramp = torch.linspace(1.0, 0.0, n_steps + 1, dtype=torch.float64)
    return (t_end * (ramp if spacing == "uniform" else ramp**2)).tolist()  # t_end, ..., 0


def _reverse(score_fn, x_end: torch.Tensor, t_end: float, n_steps: int, *, theta: float,
             D_coef: float, spacing: str, noise: bool, generator: torch.Generator | None,
             return_path: bool) -> torch.Tensor:
    _check_ou(theta, D_coef)
    times = reverse_times(t_end, n_steps, spacing)
    x, path = x_end, [x_end]
    for t, t_next in zip(times[:-1], times[1:]):
        dt = t_next - t  # < 0: time runs backwards
        s = score_fn(x, t)
        if s.shape != x.shape:
            raise ValueError(f"score_fn returned shape {tuple(s.shape)}, expected {tuple(x.shape)}")
        if noise:  # reverse SDE: drift f − g²·s, g² = 2D
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + (-theta * x - 2 * D_coef * s) * dt + (2 * D_coef * -dt) ** 0.5 * z
        else:  # probability-flow ODE: velocity f − (g²/2)·s
            x = x + (-theta * x - D_coef * s) * dt
        if return_path:
            path.append(x)
    return torch.stack(path) if return_path else x


def simulate_ou_reverse(score_fn, x_end: torch.Tensor, t_end: float, n_steps: int, *,
                        theta: float = 1.0, D_coef: float = 1.0, spacing: str = "uniform",
                        generator: torch.Generator | None = None,
                        return_path: bool = False) -> torch.Tensor:
    """Run the OU process backwards in time from ``x_end`` (a sample of p_{t_end}) to t = 0.

    Reverse-time SDE {cite}`anderson1982`: dx = [f(x) − g²·∇log p_t(x)] dt + g dW̄ with
    f = −θx, g² = 2D, integrated from t_end down to 0 with Euler–Maruyama on the times of
    :func:`reverse_times`. With dt = t_{i+1} − t_i < 0 each step is
    x ← x + (−θx − 2D·s(x, t_i))·dt + sqrt(2D·|dt|)·z, z = randn(x.shape, generator) drawn
    once per step after the score; ``score_fn(x, t)`` returns ∇ log p_t(x) (shape of x).
    Returns x at t = 0, or the path ``(n_steps + 1, *x.shape)`` ordered from t_end to 0.
    """
    return _reverse(score_fn, x_end, t_end, n_steps, theta=theta, D_coef=D_coef, spacing=spacing,
                    noise=True, generator=generator, return_path=return_path)


def simulate_ou_flow(score_fn, x_end: torch.Tensor, t_end: float, n_steps: int, *,
                     theta: float = 1.0, D_coef: float = 1.0, spacing: str = "uniform",
                     return_path: bool = False) -> torch.Tensor:
    """Integrate the OU's probability-flow ODE from t_end down to 0 with Euler steps.

    dx/dt = f(x) − ½g²·∇log p_t(x) = −θx − D·s(x, t) {cite}`song2021sde`: deterministic, with
    the same marginals p_t as the SDE (its Fokker–Planck equation is the same continuity
    equation). Step x ← x + (−θx − D·s(x, t_i))·dt with dt = t_{i+1} − t_i < 0 on the times of
    :func:`reverse_times`. Returns x at t = 0, or the path ``(n_steps + 1, *x.shape)``.
    """
    return _reverse(score_fn, x_end, t_end, n_steps, theta=theta, D_coef=D_coef, spacing=spacing,
                    noise=False, generator=None, return_path=return_path)
