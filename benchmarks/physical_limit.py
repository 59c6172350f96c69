"""Benchmark 1 — distance to the physical limit, on many 2D Gaussian mixtures.

Trains the course's default 2D recipe (``training.default_2d``, σ_d set from the data) on several
2D Gaussian mixtures — the ring of chapters 5-6 and random mixtures with up to 16 modes, unequal
weights and component std down to 0.05, each with several training seeds — and measures the
held-out denoising loss divided by the Bayes-optimal loss (the mixture's exact posterior mean)
under the *same* noise-level distribution and weighting, on the same x₀, σ and ε (a paired
comparison). Goal: every ratio ≤ 1.05 with ≤ 30 s of training on 2 CPU cores.

    .venv/bin/python benchmarks/physical_limit.py            # writes benchmarks/physical_limit.md
    .venv/bin/python benchmarks/physical_limit.py --quick    # two mixtures, one seed
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import platform
import time

import torch

from diffusion_lite import losses, mixtures, training

EDGES = (0.1, 0.3, 1.0, 3.0)
GOAL_RATIO, GOAL_SECONDS = 1.05, 30.0
MAX_MODES, MIN_STD = 16, 0.05


def random_mixture(seed: int, n_modes: int | None = None, min_std: float = MIN_STD
                   ) -> mixtures.GaussianMixture:
    """A random 2D mixture: K ≤ 16 modes (uniform in 2..16 unless given), Dirichlet(1) weights
    (unequal), means uniform in [−2, 2]², isotropic std log-uniform in [min_std, 0.4]."""
    gen = torch.Generator().manual_seed(seed)
    k = n_modes or int(torch.randint(2, MAX_MODES + 1, (1,), generator=gen))
    weights = -torch.rand(k, generator=gen, dtype=torch.float64).log()        # Exp(1) → Dirichlet(1)
    means = 4 * torch.rand(k, 2, generator=gen, dtype=torch.float64) - 2
    log_std = math.log(min_std) + torch.rand(k, generator=gen, dtype=torch.float64) * math.log(
        0.4 / min_std)
    return mixtures.GaussianMixture(weights / weights.sum(), means, log_std.exp() ** 2)


def cases(quick: bool) -> list[tuple[str, mixtures.GaussianMixture]]:
    """The mixtures measured: the ring, the hardest allowed case (16 modes, all std 0.05), random."""
    out = [("ring (8 modes, std 0.15)", mixtures.ring())]
    for seed in (98, 99):
        hard = random_mixture(seed, n_modes=MAX_MODES, min_std=MIN_STD)
        hard = mixtures.GaussianMixture(hard.weights, hard.means,
                                        torch.full((MAX_MODES,), MIN_STD**2))
        out.append((f"hard #{seed}: 16 modes, all std 0.05, unequal weights", hard))
    if not quick:
        for seed in (1, 2, 3, 4):
            m = random_mixture(seed)
            out.append((f"random #{seed} ({m.n_components} modes, std "
                        f"{m.variances.sqrt().min():.2f}–{m.variances.sqrt().max():.2f})", m))
    return out


def measure(mix: mixtures.GaussianMixture, seed: int, held_out: int) -> dict:
    """Train the default recipe on ``mix`` with ``seed``; the paired held-out ratio per σ band."""
    net, config = training.default_2d((mix.total_variance / mix.dim) ** 0.5, seed=seed,
                                      progress=False)
    wall, cpu = time.perf_counter(), time.process_time()
    state = training.train(net, mix.sample, config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    x0 = mix.sample(held_out, generator=torch.Generator().manual_seed(10_000 + seed))  # unseen
    rows = losses.compare_to_oracle(state.ema, mix, x0, training.sigma_dist_from_config(config),
                                    config.weighting or config.prediction, edges=EDGES,
                                    sigma_data=config.sigma_data,
                                    generator=torch.Generator().manual_seed(20_000 + seed))
    return {"rows": rows, "ratio": rows[-1]["ratio"], "wall": wall, "cpu": cpu, "config": config}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny MLP: 1)")
    parser.add_argument("--held-out", type=int, default=100_000, help="held-out samples per run")
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per mixture")
    parser.add_argument("--quick", action="store_true", help="two mixtures only")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    results = [(label, mix, [measure(mix, s, args.held_out) for s in range(args.seeds)])
               for label, mix in cases(args.quick)]
    write(results, args, load_before)


def write(results, args, load_before: float) -> None:
    config = results[0][2][0]["config"]
    all_runs = [r for _, _, runs in results for r in runs]
    worst = max(r["ratio"] for r in all_runs)
    worst_label = next(label for label, _, runs in results for r in runs if r["ratio"] == worst)
    cpu_max, wall_max = max(r["cpu"] for r in all_runs), max(r["wall"] for r in all_runs)
    lines = [
        "# Benchmark 1 — distance to the physical limit",
        "",
        "**What is measured.** The course's default 2D recipe (`training.default_2d`: a 64-wide "
        f"residual MLP, {config.steps} Adam steps of batch {config.batch_size}, prediction and "
        f"weighting `{config.prediction}`, ln σ ~ N({config.p_mean}, {config.p_std}²), σ_d set "
        "from the data) is trained on several 2D Gaussian mixtures. For each run, the held-out "
        "denoising loss E λ(σ)‖D − x₀‖²/d is divided by the loss of the exact posterior mean "
        f"(the Bayes floor) on the same {args.held_out} fresh x₀, σ and ε (a paired comparison). "
        "A ratio of 1 is the physical limit: no denoiser can do better on average.",
        "",
        f"**Goal:** every ratio ≤ {GOAL_RATIO} with ≤ {GOAL_SECONDS:.0f} s of training on 2 CPU "
        f"cores, on any 2D mixture with up to {MAX_MODES} modes, unequal weights and component "
        f"std ≥ {MIN_STD}. Random mixtures: `random_mixture(seed)` in this script (K uniform in "
        f"2..{MAX_MODES}, Dirichlet(1) weights, means uniform in [−2, 2]², std log-uniform in "
        f"[{MIN_STD}, 0.4]); the two \"hard\" mixtures are the hardest allowed case, {MAX_MODES} "
        f"modes all of std {MIN_STD}.",
        "",
        "| mixture | σ_d | seed | ratio (all σ) | worst σ band (ratio) | training CPU-s | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, mix, runs in results:
        for seed, r in enumerate(runs):
            band = max(r["rows"][:-1], key=lambda b: b["ratio"])
            lo, hi = band["band"]
            lines.append(f"| {label} | {(mix.total_variance / mix.dim) ** 0.5:.2f} | {seed} | "
                         f"{r['ratio']:.4f} | [{lo:g}, {hi:g}): {band['ratio']:.4f} | "
                         f"{r['cpu']:.1f} | {r['wall']:.1f} |")
    met = worst <= GOAL_RATIO and cpu_max <= GOAL_SECONDS
    lines += [
        "",
        f"**Result:** worst ratio {worst:.4f} over {len(all_runs)} runs ({worst_label}; the margin "
        f"to the goal is {GOAL_RATIO - worst:.4f}); the slowest training took {cpu_max:.1f} CPU-s "
        f"({wall_max:.1f} s wall on the shared machine). Goal **{'met' if met else 'NOT met'}** "
        "(time judged in CPU-seconds). "
        "Where the recipe falls short it is in the σ band of the components' own width, where the "
        "optimal denoiser switches sharply between neighbouring modes.",
        "",
        f"Machine: {args.threads} torch thread(s), torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; 1-minute load "
        f"average {load_before:.1f} at the start (other jobs shared the machine when it exceeds "
        "the cores, which inflates wall time but not CPU time).",
    ]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
