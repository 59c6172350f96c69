"""Chapter 9 benchmark — five generative families on the same data.

Loads (training once if the cache is cold) the GAN, VAE, RealNVP flow, autoregressive model and
diffusion model of :mod:`diffusion_lite.families.zoo`, three seeds each, on the many-mode 2D
mixture and on the 8×8 digits, measures them with :mod:`diffusion_lite.families.evaluate` on
larger samples than the notebook, and writes both tables with intervals over seeds, the costs and
the goals of issue #11 (met / not met) to ``benchmarks/families.md``.

    .venv/bin/python benchmarks/families.py        # about 2 CPU-minutes with a warm cache
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import pathlib
import platform
import resource
import time

import torch

from diffusion_lite import pretrained
from diffusion_lite.families import evaluate, zoo
from diffusion_lite.families.common import seed_interval

BUDGET_CPU_S = 200.0  # all of chapter 9's cached models, cold (the briefing's ch09 budget)
KEYS_2D = ("modes", "weight_error", "off_mode", "precision", "recall", "sw_ratio", "bpd", "nfe",
           "ms_per_1000", "train_cpu_s")
KEYS_DIG = ("classes", "class_error", "precision", "recall", "fd_ratio", "kid", "bpd", "nfe",
            "ms_per_1000", "train_cpu_s")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_all(data: str) -> tuple[dict, dict]:
    """{family: [Model per seed]} and {family: 'cold'/'warm' (state of the cache before)}."""
    models, state = {}, {}
    for f in zoo.FAMILIES:
        cold = []
        for s in zoo.SEEDS:
            if f == "diffusion" and data == "digits":
                cold.append(not pretrained.cache_path("digits_unet").exists())
            else:
                name = "families_diffusion_2d" if f == "diffusion" else f"families_{f}"
                cold.append(not pretrained.cache_path(name, zoo.config_for(f, data, s)).exists())
        models[f] = [zoo.load(f, data, s) for s in zoo.SEEDS]
        state[f] = "cold" if all(cold) else "warm" if not any(cold) else "mixed"
    return models, state


def fmt(e, digits=2) -> str:
    if math.isnan(e.value):
        return "—"
    return f"{e.value:.{digits}f} ± {e.high - e.value:.{digits}f}"


def table(summary: dict, keys: tuple[str, ...]) -> list[str]:
    out = ["| family | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for family, est in summary.items():
        out.append(f"| {family} | " + " | ".join(fmt(est[k], 3 if k in ("weight_error", "off_mode",
                                                                          "class_error") else 2)
                                                  for k in keys) + " |")
    return out


def per_seed(rows: list[dict], keys: tuple[str, ...]) -> list[str]:
    out = ["| family | seed | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for r in rows:
        out.append(f"| {r['family']} | {r['seed']} | " + " | ".join(
            "—" if isinstance(r[k], float) and math.isnan(r[k]) else
            (f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k])) for k in keys) + " |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-2d", type=int, default=5000, help="samples per 2D model")
    parser.add_argument("--n-likelihood-2d", type=int, default=2000, help="held-out 2D points")
    parser.add_argument("--n-likelihood-digits", type=int, default=128, help="held-out digits")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), cpu_seconds()

    models_2d, state_2d = load_all("2d")
    rows_2d = [evaluate.evaluate_2d(m, n=args.n_2d, n_likelihood=args.n_likelihood_2d, seed=m.seed)
               for f in zoo.FAMILIES for m in models_2d[f]]
    oracle_rows = [evaluate.evaluate_2d(zoo.oracle_2d(s), n=args.n_2d,
                                        n_likelihood=args.n_likelihood_2d, seed=s)
                   for s in zoo.SEEDS]
    sum_2d = evaluate.summarise(rows_2d + oracle_rows, KEYS_2D)

    classifier = pretrained.pretrained("digits_classifier", verbose=False)
    reference = evaluate.digit_reference(classifier)
    models_dig, state_dig = load_all("digits")
    rows_dig = [evaluate.evaluate_digits(m, classifier, reference, seed=m.seed,
                                         n_likelihood=args.n_likelihood_digits)
                for f in zoo.FAMILIES for m in models_dig[f]]
    sum_dig = evaluate.summarise(rows_dig, KEYS_DIG)

    # Cold training CPU-seconds of the chapter's own cached models (the U-Net is chapter 7's).
    own = {(f, d): sum(m.train_cpu_s for m in ms) for d, models in (("2d", models_2d),
                                                                    ("digits", models_dig))
           for f, ms in models.items() if not (f == "diffusion" and d == "digits")}
    total = sum(own.values())
    diff_modes = [r["modes"] for r in rows_2d if r["family"] == "diffusion"]
    oracle_modes = [r["modes"] for r in oracle_rows]
    gan_modes = [(r["seed"], r["modes"]) for r in rows_2d if r["family"] == "gan"]
    ratio = {d: seed_interval([a["ms_per_1000"] / b["ms_per_1000"] for a, b in zip(
        [r for r in rows if r["family"] == "diffusion"], [r for r in rows if r["family"] == "gan"])])
        for d, rows in (("2D", rows_2d), ("digits", rows_dig))}
    gan_off = [round(r["off_mode"], 3) for r in rows_2d if r["family"] == "gan"]
    oracle_off = [round(r["off_mode"], 3) for r in oracle_rows]
    rank = {d: sorted(((s[f]["bpd"].value, f) for f in s
                       if f != "oracle" and not math.isnan(s[f]["bpd"].value)))
            for d, s in (("2D", sum_2d), ("digits", sum_dig))}

    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Chapter 9 benchmark: five generative families on the same data",
        "",
        f"Written by `benchmarks/families.py` on {now}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} with 1 thread, Python "
        f"{platform.python_version()}. Load average at the end: "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} (a shared machine: CPU seconds are the "
        f"steady measure, wall seconds are inflated by other jobs). This run: {wall:.0f} s wall, "
        f"{cpu:.0f} CPU-s.",
        "",
        "Every entry is a mean over seeds 0, 1, 2 with a Student-t 95% interval (t₂ = 4.30). "
        "Diffusion on digits is chapter 7's one U-Net (unconditional, null label), so its seeds "
        "are sampling seeds. `ms_per_1000` is CPU milliseconds (process time, 1 thread) to draw "
        "1,000 samples in one batch; `train_cpu_s` the CPU-seconds recorded when the model was "
        "trained (cold).",
        "",
        "## Goals (issue #11)",
        "",
        f"- **Every family within the chapter's budget** (all of chapter 9's cached models, cold, "
        f"≤ {BUDGET_CPU_S:.0f} CPU-s): {total:.0f} CPU-s — "
        f"**{'met' if total <= BUDGET_CPU_S else 'NOT met'}**. Per family and data set (3 seeds): "
        + ", ".join(f"{f} {d} {v:.0f}" for (f, d), v in own.items())
        + ". The digit U-Net is chapter 7's (trained there: "
        f"{models_dig['diffusion'][0].train_cpu_s:.0f} CPU-s when this cache was filled).",
        f"- **Diffusion's mode coverage on the 2D mixture equals the oracle's (8 of 8)**: "
        f"{diff_modes} modes on seeds {list(zoo.SEEDS)}, the oracle's own samples {oracle_modes} — "
        f"**{'met' if diff_modes == oracle_modes else 'NOT met'}**. GAN, (seed, modes): "
        f"{gan_modes}; its off-mode rates {gan_off} against the oracle's {oracle_off}: where it "
        "fails, it fails by putting samples between the modes.",
        "- **Likelihood ranking, measured** (bits/dim, lower is better; digits: discrete-equivalent, "
        "exact for the autoregressive model, upper bounds for the dequantised others): "
        + "; ".join(f"{d}: " + " < ".join(f"{f} {v:.3f}" for v, f in r) for d, r in rank.items())
        + ". The GAN has no likelihood: its samples lie on a surface the generator draws, and "
        "nothing in it defines a density. A ranking between two families holds only where their "
        "intervals below do not overlap.",
        "- **Cost ratios, measured**: diffusion / GAN CPU time per sample "
        + "; ".join(f"{d} {e.value:.0f}× (95% interval {e.low:.0f}–{e.high:.0f}×)"
                    for d, e in ratio.items())
        + f"; network evaluations {sum_2d['diffusion']['nfe'].value:.0f} vs 1 (2D) and "
        f"{sum_dig['diffusion']['nfe'].value:.0f} vs 1 (digits).",
        "",
        f"## 2D: the many-mode mixture ({args.n_2d} samples per model, bits/dim on "
        f"{args.n_likelihood_2d} held-out points)",
        "",
        "modes: covered of 8 (≥ ¼ of the expected count within 3 standard deviations); "
        "weight_error: total variation to the true weights with off-mode samples as a ninth bin; "
        "sw_ratio: sliced Wasserstein to fresh data ÷ the same between two real sets. Cache state "
        "at this run: " + ", ".join(f"{f} {s}" for f, s in state_2d.items()) + ".",
        "",
        *table(sum_2d, KEYS_2D),
        "",
        "Per seed:",
        "",
        *per_seed(rows_2d + oracle_rows, ("modes", "weight_error", "off_mode", "sw_ratio", "bpd",
                            "ms_per_1000", "train_cpu_s")),
        "",
        f"## Digits (355 samples per model against the 355 held-out test digits; bits/dim on "
        f"{args.n_likelihood_digits} of them)",
        "",
        f"On the digit classifier's 64 features. Noise floors: Fréchet {reference['fd_floor']:.2f} "
        f"(test split vs as many training digits), KID {reference['kid_floor']:.1f}. classes: "
        "digit classes found in ≥ ¼ of their expected share; class_error: total variation between "
        "the samples' and the data's class frequencies. Cache state at this run: "
        + ", ".join(f"{f} {s}" for f, s in state_dig.items()) + ".",
        "",
        *table(sum_dig, KEYS_DIG),
        "",
        "Per seed:",
        "",
        *per_seed(rows_dig, ("classes", "class_error", "fd_ratio", "kid", "bpd", "ms_per_1000",
                             "train_cpu_s")),
        "",
    ]
    pathlib.Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
