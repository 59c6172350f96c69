"""Benchmark 16 — the practitioner's workflow: a longer run on photo tiles, and DDP vs one process.

1. Quality: the chapter-16 command line on 8×8 tiles of scikit-learn's temple photograph (1040
   non-overlapping 16×16 tiles, resized), a small U-Net trained ``--steps`` steps, then
   ``evaluate`` with 50 bootstrap resamples, with the deterministic Heun sampler and the
   stochastic DDPM sampler, three sampling seeds each. Goal: every metric at its noise floor (the
   model's interval overlaps the floor's) with m = 104 held-out tiles per half, for every seed.
2. Data parallelism: the same ``train`` command in one process and under ``torchrun`` with two
   gloo processes (global batch equal), on the wine table (MLP) and on the tiles (U-Net).
   Goals: the two runs' denoisers D(x, σ) and loss histories equal within 1e-5 (weights too for
   the MLP; the U-Net has directions its output ignores, see the table); time per step reported
   (a 2-core CPU is not where DDP pays; see the chapter).

    .venv/bin/python benchmarks/workflow.py            # writes benchmarks/workflow.md
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file
from sklearn.datasets import load_sample_images, load_wine

from diffusion_lite import cli, runs
from diffusion_lite.export import CHECK_SIGMAS

SAMPLERS = (("heun", 32), ("ddpm", 64))  # (name, steps): 63 and 64 network evaluations
SEEDS = (0, 1, 2)
ARCH = ["--image-size", "8", "--base-channels", "8", "--channel-mults", "1,2", "--emb-dim", "32",
        "--attention", "false", "--no-progress"]


def _cpu() -> float:
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _data(work: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    photo = load_sample_images().images[0]  # china.jpg, (427, 640, 3)
    tiles = work / "china"
    tiles.mkdir()
    for r in range(photo.shape[0] // 16):
        for c in range(photo.shape[1] // 16):
            Image.fromarray(photo[16 * r:16 * r + 16, 16 * c:16 * c + 16]).save(tiles / f"{r}_{c}.png")
    wine = load_wine()
    table = work / "wine.csv"
    np.savetxt(table, np.column_stack([wine.data, wine.target]), delimiter=",", comments="",
               header=",".join([*wine.feature_names, "cultivar"]), fmt="%.6g")
    return tiles, table


def _ddp(work: pathlib.Path, name: str, data: pathlib.Path, extra: list[str]) -> dict:
    """One process vs two under torchrun: seconds per step (training loop only), weight gap."""
    one, two = work / f"{name}1", work / f"{name}2"
    assert cli.main(["train", str(data), "--out", str(one), *extra]) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "diffusion_lite", "train", str(data), "--out", str(two), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    a, b = load_file(str(one / "checkpoint.safetensors")), load_file(str(two / "checkpoint.safetensors"))
    gap = max(float((a[k] - b[k]).abs().max()) for k in a if k.startswith(("model.", "ema.")))
    (d1, meta), (d2, _) = runs.load_denoiser(one), runs.load_denoiser(two)
    x = torch.randn((64, *meta["data"]["shape"]), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out_gap = max(float((d1(x * (1 + s * s) ** 0.5, s) - d2(x * (1 + s * s) ** 0.5, s)).abs().max())
                      for s in CHECK_SIGMAS)
    loss_gap = float((a["history.loss"] - b["history.loss"]).abs().max())
    logs = [json.loads((d / "log.jsonl").read_text().splitlines()[-1]) for d in (one, two)]
    steps = logs[0]["steps"]
    return {"name": name, "gap": gap, "out_gap": out_gap, "loss_gap": loss_gap,
            "s_per_step_1": logs[0]["wall_s"] / steps, "s_per_step_2": logs[1]["wall_s"] / steps,
            "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps of the quality run")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench16-"))
    tiles, table = _data(work)
    load_before = os.getloadavg()[0]

    wall, cpu = time.perf_counter(), _cpu()
    run = work / "quality"
    assert cli.main(["train", str(tiles), "--out", str(run), *ARCH, "--steps", str(args.steps),
                     "--batch-size", "64", "--lr-warmup", "50", "--ema-decay", "0.995"]) == 0
    train_wall, train_cpu = time.perf_counter() - wall, _cpu() - cpu
    grid = {}
    for sampler, steps in SAMPLERS:
        for seed in SEEDS:
            out = work / f"eval-{sampler}-{seed}"
            assert cli.main(["evaluate", str(run), "--sampler", sampler, "--steps", str(steps),
                             "--seed", str(seed), "--n-boot", "50", "--out", str(out)]) == 0
            grid[sampler, seed] = json.loads((out / "evaluation.json").read_text())
    report = grid["ddpm", SEEDS[0]]
    md_report = (work / f"eval-ddpm-{SEEDS[0]}" / "evaluation.md").read_text().split("\n", 2)[2]

    ddp = [_ddp(work, "wine", table, ["--label-column", "cultivar", "--steps", "60", "--batch-size",
                                      "64", "--hidden", "64", "--lr-warmup", "5", "--no-progress"]),
           _ddp(work, "tiles", tiles, [*ARCH, "--steps", "40", "--batch-size", "64", "--lr-warmup", "5"])]
    load_after = os.getloadavg()[0]

    def short(e: dict) -> str:
        return f"{e['value']:.3f} [{e['low']:.2f}, {e['high']:.2f}]"

    rows, met = [], {}
    for (sampler, seed), rep in grid.items():
        missed = [k for k, v in rep["metrics"].items() if v["verdict"] != "at the noise floor"]
        met.setdefault(sampler, []).append(not missed)
        m = rep["metrics"]
        rows.append(f"| {sampler} | {seed} | {short(m['precision']['model'])} | "
                    f"{short(m['precision']['floor'])} | {short(m['recall']['model'])} | "
                    f"{short(m['recall']['floor'])} | {6 - len(missed)} of 6 |"
                    + (f" {', '.join(missed)} |" if missed else " — |"))
    verdict = {s: all(v) for s, v in met.items()}
    lines = [
        "# Benchmark 16 — the practitioner's workflow",
        "",
        f"## 1. A longer run on photo tiles ({args.steps} steps)",
        "",
        f"`diffusion-lite train` on 1040 8×8 tiles of scikit-learn's `china.jpg` (20 % held out), "
        f"U-Net with 8 base channels, levels (1, 2), no attention; batch 64, {args.steps} steps. "
        f"Training: {train_wall:.1f} s wall, {train_cpu:.1f} CPU-s. Then `diffusion-lite evaluate` "
        "(50 bootstrap resamples, m = 104) with two samplers and three sampling seeds:",
        "",
        "| sampler | seed | precision | its floor | recall | its floor | metrics at the floor | not at the floor |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "**Goal: every metric at its noise floor for every seed — "
        + "; ".join(f"{s}: {'met' if v else 'not met'}" for s, v in verdict.items()) + ".** "
        "The deterministic Heun sampler's tiles carry a pixel grain that the k-NN precision sees "
        "(the samples lie off the data's manifold) and the global distances at m = 104 do not; the "
        "stochastic DDPM sampler, whose fresh noise at each step corrects part of the denoiser's "
        "error, lifts precision into the floor's interval at some cost in recall (still inside "
        "its floor's interval) — the same direction as stochastic Heun on the digits (`digits.md`). "
        "The full "
        f"report for DDPM, seed {SEEDS[0]}:",
        "",
        md_report.strip(),
        "",
        "## 2. Two processes (torchrun, gloo) vs one, same global batch",
        "",
        "| data | steps | max \\|D₁ − D₂\\| (σ 0.002…80) | max loss difference | largest weight "
        "difference | s/step, 1 process | s/step, 2 processes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {d['name']} | {d['steps']} | {d['out_gap']:.1e} | {d['loss_gap']:.1e} | "
              f"{d['gap']:.1e} | {d['s_per_step_1']:.4f} | {d['s_per_step_2']:.4f} |" for d in ddp]
    eq = all(max(d["out_gap"], d["loss_gap"]) <= 1e-5 for d in ddp)
    lines += [
        "",
        f"**Goal: denoisers and loss histories equal within 1e-5 — {'met' if eq else 'not met'}** "
        f"(largest {max(max(d['out_gap'], d['loss_gap']) for d in ddp):.1e}: float32 round-off of "
        "summing the gradient in two halves). The MLP's weights agree too; the U-Net's do not, "
        "and need not: some directions in its weights change nothing the network computes (a bias "
        "before GroupNorm shifts a group's mean, which the norm removes; two biases added to the same "
        "sum trade off), their exact gradient is 0, and Adam divides round-off by round-off and moves "
        "them by up to the learning rate per step. The function stays the same; only its "
        "parametrisation drifts. Seconds per step time the training loop only (no start-up). On "
        "one 2-core CPU shared with "
        "other jobs two processes do not pay: each step is small and the two processes compete "
        "for the same cores. DDP pays with one process per GPU and steps whose compute dominates "
        "the gradient exchange. No GPU was available for this run, so NCCL was not measured.",
        "",
        "## Machine",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, 1 torch thread per process; "
        f"1-minute load average {load_before:.1f} before, {load_after:.1f} after (above the core "
        "count, other jobs shared the machine and wall times are inflated). Date (UTC): "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())}.",
        "",
    ]
    pathlib.Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
