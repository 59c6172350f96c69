"""Benchmark — flow matching, minibatch OT and reflow against diffusion (chapter 10).

1. Velocity loss ÷ exact floor: flow matching on ``mixtures.ring()`` trained afresh per seed,
   held-out loss over E‖u − u_cond‖² from the oracle on the same (x₀, ε, t), and training time.
   Goal: ≤ 1.05× in ≤ 30 s.
2. Few steps: sliced W2 ÷ noise floor and mode coverage at NFE 1/2/4/8/16 for flow matching,
   minibatch-OT flow, 2-rectified flow and diffusion (EDM MLP) with the best chapter-6 sampler per
   budget, 3 seeds, 95% Student-t intervals. Goal: at 2 NFE reflow or OT at least halves plain
   flow matching's excess over the floor.
3. Straightness of every model's ODE paths; 4. the digit U-Nets at equal NFE (Fréchet, KID);
5. the cold training CPU-seconds of every cached model.

    .venv/bin/python benchmarks/flow_matching.py        # writes benchmarks/flow_matching.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import time
from dataclasses import replace

import torch

from diffusion_lite import data, flow_matching as fm, flow_models, kid, metrics, mixtures, pretrained
from diffusion_lite.flow_training import sample_t, train_flow_matching
from diffusion_lite.models import MLP

SEEDS = (0, 1, 2)
NFES = (1, 2, 4, 8, 16)
GOAL_RATIO, GOAL_SECONDS = 1.05, 30.0


def loss_vs_floor(mix, lines):
    base = flow_models.RingFlowConfig()
    g = torch.Generator().manual_seed(10_000)
    x0 = mix.sample(200_000, generator=g, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = sample_t(len(x0), base.train, g, torch.float64)
    floor = fm.velocity_floor(mix, x0, eps, t)
    lines += ["## 1. Velocity loss ÷ exact floor (trained afresh, 1 thread)", "",
              f"Data `mixtures.ring()`; MLP {base.hidden} wide, {base.depth} blocks; "
              f"{base.train.steps} steps of {base.train.batch_size}; t ~ U(0, 1); 200,000 held-out "
              f"(x₀, ε, t), floor E‖u − u_cond‖²/d = {floor.mean():.4f} (computed from the oracle).", "",
              "| seed | loss (EMA) | ratio | E‖u_θ − u‖² ÷ E‖u‖² | wall s | CPU s |", "|---|---|---|---|---|---|"]
    ratios, walls, cpus = [], [], []
    u = fm.oracle_velocity(mix, fm.interpolate(x0, eps, t), t)
    for s in SEEDS:
        cfg = replace(base.train, seed=s)
        net = MLP(dim=2, hidden=base.hidden, depth=base.depth, generator=torch.Generator().manual_seed(s))
        wall, cpu = time.perf_counter(), time.process_time()
        model = train_flow_matching(net, mix.sample, cfg).ema.double()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with torch.no_grad():
            loss = fm.flow_matching_loss(model, x0, eps, t)
            excess = (model.velocity(fm.interpolate(x0, eps, t), t) - u).pow(2).sum(1).mean()
        ratio = float(loss.mean() / floor.mean())
        ratios.append(ratio), walls.append(wall), cpus.append(cpu)
        lines.append(f"| {s} | {loss.mean():.4f} | {ratio:.4f} | "
                     f"{excess / u.pow(2).sum(1).mean():.4f} | {wall:.1f} | {cpu:.1f} |")
    met = max(ratios) <= GOAL_RATIO and max(cpus) <= GOAL_SECONDS
    lines += ["", f"**Goal** loss ≤ {GOAL_RATIO}× floor in ≤ {GOAL_SECONDS:.0f} s: "
              f"{'met' if met else 'NOT met'} on every seed (worst ratio {max(ratios):.4f}, worst "
              f"{max(cpus):.1f} CPU-s, {max(walls):.1f} s wall on the shared machine).", ""]


def few_steps(lines):
    study = flow_models.few_step_study(SEEDS, NFES, n=4000, n_ref=20_000)
    rows = study["rows"]
    lines += ["## 2. Few steps: sliced W2 ÷ noise floor (mean [95% interval] over 3 seeds)", "",
              f"4000 samples per model and seed, reference set 20,000 fresh ring samples, noise floor "
              f"(4000 fresh samples vs the reference, mean of 10) = {study['floor']:.4f}; 128 fixed "
              "projections. Flows: Euler in t on a uniform-t ladder. Rows marked *best sampler* take, "
              "per NFE, the best of Euler/Heun/DPM-Solver++(2M) on uniform-t or EDM ladders "
              "(σ ∈ [0.02, 10], ρ = 7) by the mean over seeds. Modes: covered out of 8 (mean).", "",
              "| method | " + " | ".join(f"NFE {k}" for k in NFES) + " |",
              "|---|" + "---|" * len(NFES)]
    for m, row in rows.items():
        cells = []
        for k in NFES:
            e = flow_models.seed_interval(row[k]["sw"])
            cells.append(f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}], {sum(row[k]['modes']) / 3:.1f} modes")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    choices = {k: "/".join(rows["diffusion (EDM)"][k]["choice"]) for k in NFES}
    lines += ["", f"Diffusion's best sampler/ladder per NFE: {choices}.", ""]
    mean = {m: sum(rows[m][2]["sw"]) / len(SEEDS) for m in rows}
    ex = {m: v - 1 for m, v in mean.items()}
    best = min(ex["2-rectified flow"], ex["minibatch OT"])
    lines += [f"**Goal** at 2 NFE, reflow or OT at least halves plain flow matching's excess over the "
              f"floor: excess plain {ex['flow matching']:.2f}, reflow {ex['2-rectified flow']:.2f}, "
              f"OT {ex['minibatch OT']:.2f}, diffusion (best sampler) {ex['diffusion (EDM)']:.2f} → "
              f"{'met' if best <= ex['flow matching'] / 2 else 'NOT met'} (best reduction "
              f"{ex['flow matching'] / max(best, 1e-9):.1f}×).", ""]


def straightness(mix, lines):
    noise = torch.randn(4000, 2, generator=torch.Generator().manual_seed(5))
    lines += ["## 3. Straightness S of the ODE paths (4000 paths, 200 Euler steps in t)", "",
              f"Exact marginal flow of the ring: S = {flow_models.path_straightness(mix, noise.double()):.3f}.", "",
              "| method | " + " | ".join(f"seed {s}" for s in SEEDS) + " |", "|---|" + "---|" * len(SEEDS)]
    models = {s: flow_models.ring_models(s) for s in SEEDS}
    for m in flow_models.METHODS:
        lines.append(f"| {m} | " + " | ".join(
            f"{flow_models.path_straightness(models[s][m], noise):.4f}" for s in SEEDS) + " |")
    lines.append("")


def digits(lines):
    fm_unet = pretrained.pretrained("fm_digits_unet", verbose=False)
    edm_unet = pretrained.digits_denoiser(pretrained.pretrained("digits_unet", verbose=False))
    feats = pretrained.pretrained("digits_classifier", verbose=False).features
    test, _ = data.load_digits(split="test")
    train, _ = data.load_digits(split="train")
    f_test = metrics.extract_features(feats, test)
    n = 1000
    f_floor = metrics.extract_features(feats, train[:n])
    k_floor = kid.kid(f_test, f_floor, subset_size=300, n_subsets=50, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n) % 10
    lines += ["## 4. Digits: flow-matching U-Net vs chapter 7's U-Net at equal NFE", "",
              f"{n} class-conditional samples (w = 1, digits 0–9 in turn) per model, NFE and seed, "
              "DPM-Solver++(2M) (flow: uniform-t ladder; chapter 7: its EDM ladder σ ∈ [0.002, 80], "
              "and chapter 6's ladder matched to the data, σ ∈ [0.02, 10]); "
              "features of the digit classifier against the 355 held-out digits. Floor: 1000 "
              f"training digits vs the held-out ones: Fréchet {metrics.frechet_distance(f_test, f_floor):.2f}, "
              f"KID {k_floor.value:.1f}. Mean [95% interval] over 3 seeds.", "",
              "| model | " + " | ".join(f"NFE {k}: Fréchet / KID" for k in (2, 4, 8, 16)) + " |",
              "|---|---|---|---|---|"]
    fds = {}
    for name, model, ladder in (("flow matching (no attention)", fm_unet, "uniform_t"),
                                ("chapter 7 EDM (attention)", edm_unet, "karras"),
                                ("chapter 7 EDM, data ladder", edm_unet, "karras_data")):
        cells = []
        for nfe in (2, 4, 8, 16):
            fd, kd = [], []
            for s in SEEDS:
                eps = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(500 + s))
                x = flow_models.sample_with_budget(lambda x, sig: model(x, sig, labels), eps, nfe,
                                                   sampler="dpmpp_2m", ladder_name=ladder).clamp(-1, 1)
                f_gen = metrics.extract_features(feats, x)
                fd.append(metrics.frechet_distance(f_test, f_gen))
                kd.append(kid.kid(f_test, f_gen, subset_size=300, n_subsets=50,
                                  generator=torch.Generator().manual_seed(s)).value)
            a, b = flow_models.seed_interval(fd), flow_models.seed_interval(kd)
            fds[name, nfe] = a
            cells.append(f"{a.value:.2f} [{a.low:.2f}, {a.high:.2f}] / {b.value:.0f} [{b.low:.0f}, {b.high:.0f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for nfe in (4, 8, 16):
        f, e, d = (fds[k, nfe] for k in ("flow matching (no attention)", "chapter 7 EDM (attention)",
                                          "chapter 7 EDM, data ladder"))
        order = lambda a, b: "lower than" if a.high < b.low else "higher than" if a.low > b.high else "within the intervals of"  # noqa: E731
        lines.append(f"- NFE {nfe}: the flow's Fréchet distance is {order(f, e)} chapter 7's on its "
                     f"EDM ladder and {order(f, d)} chapter 7's on the data ladder.")
    lines.append("")


def cold_costs(lines):
    lines += ["## 5. Cold training cost of the chapter's cached models (recorded when cached)", "",
              "| model | seed | CPU s | wall s |", "|---|---|---|---|"]
    total = 0.0
    for s in SEEDS:
        for m, model in flow_models.ring_models(s).items():
            info = model.pretrained_info
            total += info["train_cpu_s"]
            lines.append(f"| {m} | {s} | {info['train_cpu_s']:.1f} | {info['train_wall_s']:.1f} |")
    info = pretrained.pretrained("fm_digits_unet", verbose=False).pretrained_info
    total += info["train_cpu_s"]
    lines += [f"| flow-matching digit U-Net | 0 | {info['train_cpu_s']:.1f} | {info['train_wall_s']:.1f} |",
              "", f"Total {total:.0f} CPU-s (budget for chapter 10: 280 CPU-s; "
              f"{'within' if total <= 280 else 'OVER'}). Wall seconds were measured on a machine "
              "shared with other jobs.", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    mix = mixtures.ring()
    lines = ["# Benchmark — flow matching, minibatch OT and reflow (chapter 10)", "",
             f"Written by `benchmarks/flow_matching.py` on "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
             f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, 1 thread; "
             f"1-minute load average at the start {os.getloadavg()[0]:.1f} (the machine was shared: "
             "CPU seconds are the steadier measure).", ""]
    loss_vs_floor(mix, lines)
    few_steps(lines)
    straightness(mix, lines)
    digits(lines)
    cold_costs(lines)
    lines.append(f"Whole benchmark: {time.perf_counter() - wall0:.0f} s wall, "
                 f"{time.process_time() - cpu0:.0f} CPU-s (warm cache).")
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
