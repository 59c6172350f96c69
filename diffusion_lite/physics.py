"""Physics of diffusion: random walks, Brownian motion and the heat equation.

Part I of the course (chapters 1–2); no neural networks. The Ornstein–Uhlenbeck process of
chapter 2 lives in :mod:`diffusion_lite.ou`; its functions (``ou_scale_std``,
``ou_marginal``, ``simulate_ou``, ``simulate_ou_reverse``, ``simulate_ou_flow``,
``reverse_times``) are re-exported here, so ``physics.simulate_ou_reverse`` keeps working.

Notation (code name -> symbol in the notebooks):

    x         particle positions x_t; trajectories have shape (T, N, d)
    x0        starting positions x_0 (the ink drop)
    D_coef    diffusion constant D (in code, D is reserved for the denoiser of Part II)
    dt, dx    time step Δt (h in chapter 2's code), grid spacing Δx
    dim       number of space dimensions d
    msd       mean squared displacement ⟨|x_t − x_0|²⟩ = 2·d·D·t
    p, p0     a density p(x, t) on a grid; p0 = p(x, 0)
    r         the FTCS number D·Δt/Δx² (the explicit scheme is stable iff r ≤ 1/2)

Citations are keys of ``book/references.bib``, written ``{cite}`key```.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .utils import check_int, check_positive as _positive

# ---------------------------------------------------------------------------------------------
# Random walks and Brownian motion (chapter 1)
# ---------------------------------------------------------------------------------------------

STEP_KINDS = ("gaussian", "lattice", "uniform")


def _count(value: int, name: str, minimum: int = 1) -> int:
    return check_int(value, name, minimum=minimum)


def random_steps(n_steps: int, n_particles: int, dim: int = 1, *, D_coef: float = 0.5,
                 dt: float = 1.0, step: str = "gaussian", generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Independent random steps, each coordinate with mean 0 and variance 2·D·Δt.

    Step kinds (all with the same variance, so all give the same Brownian limit):

    - ``"gaussian"``: Δx = sqrt(2 D Δt) ε with ε ~ N(0, I).
    - ``"lattice"``: move ±a along one axis chosen uniformly among the d axes, a = sqrt(2 d D Δt)
      (the simple random walk on the square lattice).
    - ``"uniform"``: each coordinate uniform on [−a, a] with a = sqrt(3 · 2 D Δt).

    Returns a tensor of shape ``(n_steps, n_particles, dim)``. {cite}`einstein1905`
    """
    n_steps, n_particles = _count(n_steps, "n_steps"), _count(n_particles, "n_particles")
    dim = _count(dim, "dim")
    var = 2 * _positive(D_coef, "D_coef") * _positive(dt, "dt")  # variance per coordinate
    shape = (n_steps, n_particles, dim)
    kw = dict(generator=generator, dtype=dtype, device=device)
    if step == "gaussian":
        return math.sqrt(var) * torch.randn(shape, **kw)  # (n_steps, N, d)
    if step == "uniform":
        return math.sqrt(3 * var) * (2 * torch.rand(shape, **kw) - 1)  # (n_steps, N, d)
    if step == "lattice":
        # One of the 2d neighbours: index k -> axis k // 2, sign (-1)^k.
        k = torch.randint(0, 2 * dim, shape[:2], generator=generator, device=device)  # (n_steps, N)
        axis = torch.nn.functional.one_hot(k // 2, dim).to(dtype)  # (n_steps, N, d)
        sign = (1 - 2 * (k % 2)).to(dtype).unsqueeze(-1)  # (n_steps, N, 1)
        return math.sqrt(dim * var) * sign * axis
    raise ValueError(f"unknown step kind {step!r}; choose one of {STEP_KINDS}")


def random_walk(n_particles: int, n_steps: int, dim: int = 1, *, D_coef: float = 0.5,
                dt: float = 1.0, step: str = "gaussian", x0: torch.Tensor | None = None,
                save_every: int = 1, generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float64,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Trajectories of ``n_particles`` independent random walkers released at ``x0``.

    x_{k+1} = x_k + Δx_k with steps from :func:`random_steps`, so for every step kind
    ⟨|x_t − x_0|²⟩ = 2·d·D·t with t = k·Δt (Einstein's relation {cite}`einstein1905`).

    ``x0`` (default: the origin) has shape ``(dim,)`` or ``(n_particles, dim)``; when given it
    also sets dtype and device. Returns shape ``(n_steps // save_every + 1, n_particles, dim)``:
    row j holds the positions at time ``j * save_every * dt`` (row 0 is ``x0``). The increments
    are drawn in one call, in the same order as ``random_steps(n_steps, n_particles, dim, ...)``
    (memory O(n_steps · N · d)).
    """
    save_every = _count(save_every, "save_every")
    if n_steps % save_every:
        raise ValueError(f"n_steps={n_steps} must be a multiple of save_every={save_every}")
    if x0 is not None:
        x0 = torch.as_tensor(x0)
        dtype, device = (x0.dtype if x0.is_floating_point() else dtype), x0.device
        if x0.shape not in ((dim,), (n_particles, dim)):
            raise ValueError(f"x0 must have shape ({dim},) or ({n_particles}, {dim}), "
                             f"got {tuple(x0.shape)}")
    steps = random_steps(n_steps, n_particles, dim, D_coef=D_coef, dt=dt, step=step,
                         generator=generator, dtype=dtype, device=device)  # (n_steps, N, d)
    start = torch.zeros(1, n_particles, dim, dtype=dtype, device=device)  # (1, N, d)
    x = torch.cat([start, steps.cumsum(dim=0)])  # (n_steps + 1, N, d)
    if x0 is not None:
        x = x + x0.to(dtype)
    return x[::save_every]  # (n_steps // save_every + 1, N, d)


def mean_squared_displacement(x: torch.Tensor) -> torch.Tensor:
    """Mean squared displacement of trajectories ``x`` of shape ``(T, N, d)``: returns ``(T,)``.

    msd(t) = (1/N) Σ_n |x_t^(n) − x_0^(n)|², the squared distance summed over the d coordinates
    and averaged over the N particles. For Brownian motion it equals 2·d·D·t on average
    {cite}`einstein1905`.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (T, N, d), got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (T, N, d), got {tuple(x.shape)}; "
                         "for 1D walks add the coordinate axis with x[..., None]")
    return ((x - x[0]) ** 2).sum(dim=-1).mean(dim=-1)  # (T,)


def einstein_msd(t: torch.Tensor | float, D_coef: float, dim: int = 1) -> torch.Tensor:
    """The theoretical mean squared displacement ⟨|x_t − x_0|²⟩ = 2·d·D·t {cite}`einstein1905`."""
    _positive(D_coef, "D_coef")
    return 2 * _count(dim, "dim") * D_coef * torch.as_tensor(t)


def fit_diffusion_constant(t: torch.Tensor, msd: torch.Tensor, dim: int = 1) -> float:
    """Least-squares D in msd(t) ≈ 2·d·D·t (a line through the origin).

    D̂ = Σ t·msd / (2 d Σ t²), the estimate a physicist reads off a tracked-particle plot
    {cite}`einstein1905`.
    """
    t, msd = torch.as_tensor(t, dtype=torch.float64), torch.as_tensor(msd, dtype=torch.float64)
    if t.shape != msd.shape or t.ndim != 1:
        raise ValueError(f"t and msd must be 1D with the same length, got {tuple(t.shape)} and "
                         f"{tuple(msd.shape)}")
    if not bool((t * t).sum() > 0):
        raise ValueError("t must contain at least one non-zero time")
    return float((t * msd).sum() / (2 * _count(dim, "dim") * (t * t).sum()))


def heat_kernel(x: torch.Tensor, t: torch.Tensor | float, D_coef: float,
                x0: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Heat kernel: the density at time t of particles released at ``x0``, points ``x`` of shape (..., d).

    p(x, t) = (4πDt)^(−d/2) · exp(−|x − x0|² / (4Dt)), i.e. N(x0, 2Dt·I); it solves
    ∂p/∂t = D ∇²p with p(·, 0) = δ(· − x0) {cite}`einstein1905`. Returns shape ``(...)``;
    ``t`` (> 0) broadcasts against it. For a 1D grid pass ``grid[:, None]``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (..., d), got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError("x must have a trailing coordinate axis (..., d); use x[..., None] in 1D")
    _positive(D_coef, "D_coef")
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if bool((t <= 0).any()):
        raise ValueError("t must be > 0: at t = 0 the heat kernel is a point mass (Dirac delta)")
    d = x.shape[-1]
    var = 2 * D_coef * t  # variance per coordinate
    r2 = ((x - torch.as_tensor(x0, dtype=x.dtype, device=x.device)) ** 2).sum(dim=-1)  # (...)
    return torch.exp(-r2 / (2 * var)) / (2 * math.pi * var) ** (d / 2)


def histogram_density(x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Particle histogram as a density on the bins ``edges`` (1D): count / (N · bin width).

    Particles outside [edges[0], edges[-1]) are counted in N but in no bin, so the histogram
    integrates to the fraction inside. Compare it with :func:`heat_kernel` at the bin centres.
    """
    x = torch.as_tensor(x).reshape(-1).to(torch.float64)
    if x.numel() == 0:
        raise ValueError("x is empty: a histogram needs at least one particle")
    edges = torch.as_tensor(edges, dtype=torch.float64, device=x.device)
    if edges.ndim != 1 or edges.numel() < 2 or not bool((edges.diff() > 0).all()):
        raise ValueError("edges must be a 1D increasing tensor with at least 2 entries")
    idx = torch.bucketize(x, edges, right=True) - 1  # bin i holds edges[i] <= x < edges[i+1]
    inside = (idx >= 0) & (idx < edges.numel() - 1)
    counts = torch.bincount(idx[inside], minlength=edges.numel() - 1).to(torch.float64)
    return counts / (x.numel() * edges.diff())


# ---------------------------------------------------------------------------------------------
# The heat equation (chapters 1–2)
# ---------------------------------------------------------------------------------------------

BOUNDARIES = ("reflecting", "absorbing", "periodic")


def max_stable_dt(dx: float, D_coef: float) -> float:
    """Largest time step of the explicit (FTCS) scheme: D·Δt/Δx² ≤ 1/2 ⇔ Δt ≤ Δx²/(2D).

    Von Neumann analysis: the highest grid frequency is multiplied by 1 − 4r each step, which
    exceeds 1 in size when r = DΔt/Δx² > 1/2 and the solution blows up {cite}`leveque2007`.
    """
    return _positive(dx, "dx") ** 2 / (2 * _positive(D_coef, "D_coef"))


def _laplacian_1d(p: torch.Tensor, dx: float, boundary: str) -> torch.Tensor:
    """(p[i−1] − 2p[i] + p[i+1]) / Δx² along the last axis, with ghost cells for the boundary."""
    if boundary == "periodic":
        left, right = p[..., -1:], p[..., :1]
    elif boundary == "reflecting":  # ghost = edge value: zero flux through the walls
        left, right = p[..., :1], p[..., -1:]
    else:  # absorbing: the density is 0 one grid step beyond each end
        left, right = torch.zeros_like(p[..., :1]), torch.zeros_like(p[..., -1:])
    padded = torch.cat([left, p, right], dim=-1)  # (..., M + 2)
    return (padded[..., :-2] - 2 * p + padded[..., 2:]) / dx**2


def solve_heat_1d(p0: torch.Tensor, dx: float, D_coef: float, times: Sequence[float] | torch.Tensor,
                  *, dt: float | None = None, boundary: str = "reflecting") -> torch.Tensor:
    """Solve ∂p/∂t = D ∂²p/∂x² on a uniform 1D grid with the explicit FTCS scheme.

    p_i ← p_i + r (p_{i−1} − 2p_i + p_{i+1}),  r = DΔt/Δx²  {cite}`leveque2007`.

    ``p0`` has shape ``(..., M)`` (a batch of densities on M grid points, spacing ``dx``);
    returns ``(len(times), ..., M)``, the density at each requested time (non-decreasing,
    starting at or after 0). ``dt`` defaults to 0.8 × the stability limit; the last step before
    each requested time is shortened to land on it exactly. Boundaries:

    - ``"reflecting"`` (default): zero flux through the walls; the total mass Σ p Δx is conserved,
      as for particles bouncing off the walls.
    - ``"absorbing"``: p = 0 one grid step beyond each end; mass leaks out.
    - ``"periodic"``: the grid is a ring.

    Raises ``ValueError`` if ``dt`` breaks the stability bound D·Δt/Δx² ≤ 1/2.
    """
    if not isinstance(p0, torch.Tensor):
        raise TypeError(f"p0 must be a torch.Tensor of shape (..., M), got {type(p0).__name__}")
    if p0.ndim == 0 or p0.shape[-1] < 3:
        raise ValueError(f"p0 needs at least 3 grid points on its last axis, got {tuple(p0.shape)}")
    if not p0.is_floating_point():
        raise TypeError(f"p0 must be a floating-point tensor, got {p0.dtype}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"unknown boundary {boundary!r}; choose one of {BOUNDARIES}")
    dt_max = max_stable_dt(dx, D_coef)
    if dt is None:
        dt = 0.8 * dt_max
    elif _positive(dt, "dt") > dt_max:
        raise ValueError(
            f"unstable time step: D·Δt/Δx² = {D_coef * dt / dx**2:.4g} exceeds the FTCS stability "
            f"bound D·Δt/Δx² ≤ 1/2; use dt <= {dt_max:.6g} (= Δx²/(2D)) or a coarser grid")
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if times.numel() == 0 or bool((times < 0).any()) or bool((times.diff() < 0).any()):
        raise ValueError("times must be a non-empty, non-decreasing sequence of times >= 0")
    p, t_now, out = p0.clone(), 0.0, []
    for t_target in times.tolist():
        n = math.ceil((t_target - t_now) / dt - 1e-9)  # steps to reach t_target
        h = (t_target - t_now) / n if n > 0 else 0.0  # h <= dt: still stable
        for _ in range(n):
            p = p + D_coef * h * _laplacian_1d(p, dx, boundary)
        t_now = t_target
        out.append(p)
    return torch.stack(out)  # (len(times), ..., M)


# The Ornstein–Uhlenbeck process (chapter 2), re-exported for code written before the split.
from .ou import (ou_marginal, ou_scale_std, reverse_times, simulate_ou,  # noqa: E402,F401
                 simulate_ou_flow, simulate_ou_reverse)
