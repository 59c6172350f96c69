"""Benchmark 3 — per-step time outside the model: our samplers vs diffusers' schedulers.

Both sides drive the same small MLP (``models.MLP``, 2D, batch 1000, float32) for the same number
of steps in one process. Every call of the network is timed and subtracted from the time of the
whole loop, so what remains is the sampler's own cost: for diffusers ``scale_model_input`` and
``step`` (which converts ε to x0 inside); for us the ladder check, the update and the ε → x0
conversion, measured twice: with the package wrapper ``denoisers.Denoiser`` (which validates σ on
every call) and with a bare two-line ε wrapper (the conversion alone, as diffusers does it).
A last pair of columns times the loops alone, with the network replaced by a precomputed output
(no conversion on our side, where it lives in the denoiser; diffusers' ``step`` still converts).
Times are CPU time of this (single) thread, which is steadier than wall time on a shared machine;
each figure is the median of several repeats, per network evaluation (NFE).

Run: ``.venv/bin/python benchmarks/sampler_overhead.py`` → ``benchmarks/sampler_overhead.md``.
"""

from __future__ import annotations

import pathlib
import platform
import statistics
import time
import warnings

import diffusers
import torch

from diffusion_lite import denoisers, models, samplers, schedules

BATCH, STEPS, REPEATS, T = 1000, 50, 7, 1000
GOAL = 0.3
OUT = pathlib.Path(__file__).with_suffix(".md")
BETAS = dict(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")

PAIRS = {  # label -> (our sampler, kwargs, diffusers scheduler class, its config)
    "DDPM ancestral": ("ddpm", {}, diffusers.DDPMScheduler,
                       dict(clip_sample=False, timestep_spacing="leading", steps_offset=0)),
    "DDIM η=0": ("ddim", {}, diffusers.DDIMScheduler,
                 dict(clip_sample=False, set_alpha_to_one=True, steps_offset=0,
                      timestep_spacing="leading")),
    "Euler": ("euler", {}, diffusers.EulerDiscreteScheduler, dict(timestep_spacing="linspace")),
    "Heun": ("heun", {}, diffusers.HeunDiscreteScheduler, dict(timestep_spacing="linspace")),
    "DPM-Solver++(2M)": ("dpmpp_2m", {}, diffusers.DPMSolverMultistepScheduler,
                         dict(algorithm_type="dpmsolver++", solver_order=2,
                              solver_type="midpoint", final_sigmas_type="zero")),
}


class TimedNet(torch.nn.Module):
    """The network, with the CPU time of each call added to ``self.seconds``."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.seconds, self.calls = net, 0.0, 0

    def forward(self, x, c_noise, labels=None):
        t = time.thread_time()
        out = self.net(x, c_noise, labels)
        self.seconds += time.thread_time() - t
        self.calls += 1
        return out


def bare_eps_denoiser(net):
    """D(x, σ) = x − σ ε(x/√(1 + σ²), ¼ log σ): the conversion alone, no checks."""
    def den(x, sigma):
        s = sigma[:, None]                                                  # (B, 1)
        return x - s * net(x * (1 + s**2).rsqrt(), sigma.log() / 4)
    return den


def run_ours(timed: TimedNet, name: str, kw: dict, sigmas: torch.Tensor, z: torch.Tensor,
             bare: bool) -> float:
    den = (bare_eps_denoiser(timed) if bare
           else denoisers.Denoiser(timed, prediction="eps", sigma_data=1.0))  # c_in = 1/√(1 + σ²)
    t = time.thread_time()
    samplers.sample(name, den, sigmas[0] * z, sigmas, generator=torch.Generator().manual_seed(0), **kw)
    return time.thread_time() - t


def run_diffusers(timed: TimedNet, sched, z: torch.Tensor) -> float:
    gen = torch.Generator().manual_seed(0)
    t = time.thread_time()
    sched.set_timesteps(STEPS)
    x = z * sched.init_noise_sigma
    for step_t in sched.timesteps:
        x_in = sched.scale_model_input(x, step_t)
        eps = timed(x_in, (step_t / T).expand(BATCH).to(x.dtype))   # the net sees t/T
        kwargs = {"generator": gen} if "generator" in sched.step.__code__.co_varnames else {}
        x = sched.step(eps, step_t, x, **kwargs).prev_sample
    return time.thread_time() - t


class Constant(TimedNet):
    """A "network" that returns a precomputed output at no cost: only the loop is left."""

    def forward(self, x, c_noise, labels=None):
        self.calls += 1
        return FIXED


def loop_alone(name: str, kw: dict, sigmas: torch.Tensor, cls, cfg: dict, z: torch.Tensor):
    """CPU µs per NFE of our loop (denoiser returns FIXED) and diffusers' loop (ε = FIXED)."""
    ours, theirs = [], []
    for _ in range(REPEATS):
        t = time.thread_time()
        samplers.sample(name, lambda x, s: FIXED, sigmas[0] * z, sigmas,
                        generator=torch.Generator().manual_seed(0), **kw)
        ours.append((time.thread_time() - t) / samplers.nfe_of(name, len(sigmas) - 1) * 1e6)
        const = Constant(NET)
        theirs.append(run_diffusers(const, cls(**BETAS, **cfg), z) / const.calls * 1e6)
    return statistics.median(ours), statistics.median(theirs)


def measure(fn) -> tuple[float, int]:
    """Median over repeats of (loop time − network time) per NFE, in microseconds; and the NFE."""
    per_nfe = []
    for _ in range(REPEATS):
        timed = TimedNet(NET)
        total = fn(timed)
        per_nfe.append((total - timed.seconds) / timed.calls * 1e6)
    return statistics.median(per_nfe), timed.calls


torch.set_num_threads(1)
NET = models.MLP(dim=2, hidden=64, depth=2, generator=torch.Generator().manual_seed(0)).eval()
FIXED = 0.1 * torch.randn(BATCH, 2, generator=torch.Generator().manual_seed(2))


def main() -> None:
    warnings.filterwarnings("ignore")
    z = torch.randn(BATCH, 2, generator=torch.Generator().manual_seed(1))
    rows, t0 = [], time.perf_counter()
    with torch.no_grad():
        net_us = statistics.median(_net_time(z) for _ in range(REPEATS))
        for label, (name, kw, cls, cfg) in PAIRS.items():
            sched = cls(**BETAS, **cfg)
            sched.set_timesteps(STEPS)
            sigmas = _ladder(sched)
            bare, nfe_ours = measure(lambda timed: run_ours(timed, name, kw, sigmas, z, True))
            full, _ = measure(lambda timed: run_ours(timed, name, kw, sigmas, z, False))
            theirs, nfe_theirs = measure(lambda timed: run_diffusers(timed, cls(**BETAS, **cfg), z))
            alone = loop_alone(name, kw, sigmas, cls, cfg, z)
            rows.append((label, nfe_ours, nfe_theirs, bare, full, theirs, *alone))
    write_table(rows, net_us, time.perf_counter() - t0)


def _ladder(sched) -> torch.Tensor:
    """The σ ladder a scheduler walks, so both sides take the same steps."""
    if hasattr(sched, "sigmas"):
        return sched.sigmas.unique_consecutive().float()            # Heun repeats each σ
    a = sched.alphas_cumprod[sched.timesteps.long()].double()
    return torch.cat([schedules.sigma_from_alpha_bar(a), torch.zeros(1, dtype=a.dtype)]).float()


def _net_time(z: torch.Tensor) -> float:
    timed = TimedNet(NET)
    for _ in range(20):
        timed(z, torch.zeros(BATCH))
    return timed.seconds / timed.calls * 1e6


def write_table(rows, net_us, seconds) -> None:
    lines = [
        "# Benchmark 3 — sampler overhead outside the model: ours vs diffusers",
        "",
        f"Same network for both (`models.MLP(dim=2, hidden=64, depth=2)`, float32, batch {BATCH}), "
        f"{STEPS} steps, diffusers {diffusers.__version__}, torch {torch.__version__}, one CPU "
        f"thread ({platform.processor() or platform.machine()}). Overhead = CPU time of the "
        "whole sampling loop minus the CPU time spent inside the network, per NFE, median of "
        f"{REPEATS} runs. One network call costs {net_us:.0f} µs here.",
        "",
        "| sampler | NFE ours / diffusers | diffusers (µs/NFE) | ours, bare ε wrapper (µs/NFE) "
        "| ratio | ours, `denoisers.Denoiser` (µs/NFE) | ratio | loops alone: ours / diffusers "
        "(µs/NFE) | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, n1, n2, bare, full, theirs, a_ours, a_theirs in rows:
        lines.append(f"| {label} | {n1} / {n2} | {theirs:.0f} | {bare:.0f} | {bare / theirs:.2f} "
                     f"| {full:.0f} | {full / theirs:.2f} | {a_ours:.0f} / {a_theirs:.0f} "
                     f"| {a_ours / a_theirs:.2f} |")
    worst_bare = max(r[3] / r[5] for r in rows)
    worst_full = max(r[4] / r[5] for r in rows)
    worst_alone = max(r[6] / r[7] for r in rows)
    lines += ["", f"**Goal** ours ≤ {GOAL}× diffusers. Sampler with the bare ε wrapper: worst ratio "
              f"{worst_bare:.2f} — {'met' if worst_bare <= GOAL else 'not met'}. With the package's "
              f"`denoisers.Denoiser` (σ validated and preconditioning recomputed on every call): "
              f"worst ratio {worst_full:.2f} — {'met' if worst_full <= GOAL else 'not met'}. "
              f"Loops alone (our update vs diffusers' `scale_model_input` + `step`): worst ratio "
              f"{worst_alone:.2f} — {'met' if worst_alone <= GOAL else 'not met'}. Our per-call "
              "cost outside the loop is the ε → x0 conversion and, in `denoisers.Denoiser`, the "
              "σ validation (`utils.as_sigma`) and the recomputed preconditioning.", "",
              f"Wall time of the benchmark: {seconds:.0f} s.", ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
