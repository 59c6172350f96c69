"""Benchmark 13 — steering generation against an exact posterior.

2D: a ring-of-eight Gaussian-mixture prior and three linear-Gaussian observations, plus a class
label; each conditioning method's sliced Wasserstein distance to exact posterior samples divided by
the noise floor (two exact sets), over seeds, with a paired bootstrap interval over seeds. Goal: the
exact-score sampler within 1.25 × the floor for every observation (a check of the machinery); the
approximate methods' biases measured and ranked. Digits (chapter-7 U-Net): inpainting,
super-resolution and denoising (residual, MSE, accuracy), SDEdit's trade-off, and classifier
guidance vs CFG at matched accuracy, over seeds.

    .venv/bin/python benchmarks/inverse.py            # writes benchmarks/inverse.md
    .venv/bin/python benchmarks/inverse.py --quick    # fewer seeds, for a smoke test
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import time

import numpy as np
import torch

from diffusion_lite import data, inverse, metrics, mixtures, posterior, samplers, schedules
from diffusion_lite.pretrained import digits_denoiser, pretrained

F64 = torch.float64
GOAL_EXACT = 1.25
DIGIT_NOISE = {"inpainting": 0.05, "super-resolution": 0.05, "denoising": 0.5}  # s per task


# ------------------------------------------------------------------------------------ 2D
def _draw(denoiser, sigmas, sampler="heun"):
    def draw(n, g):
        x = sigmas[0] * torch.randn(n, 2, generator=g, dtype=F64)
        return samplers.sample(sampler, denoiser, x, sigmas, generator=g)
    return draw


def _replacement(prior, y, sigmas, resample):
    known = torch.tensor([[float(y[0]), 0.0]], dtype=F64)

    def draw(n, g):
        x = sigmas[0] * torch.randn(n, 2, generator=g, dtype=F64)
        return inverse.sample_replacement(prior, x, sigmas, torch.tensor([1.0, 0.0]),
                                          known.expand(n, 2), resample=resample, generator=g)
    return draw


def bench_2d(seeds, n, steps):
    prior = mixtures.ring(8, 2.0, 0.15)
    sig = schedules.karras_sigmas(steps, 0.002, 20.0).to(F64)
    v = float(prior.covariance.diagonal().mean())
    operators = {
        "observe x₁ = 1.2, s = 0.1": ([[1.0, 0.0]], [1.2], 0.1),
        "observe (x₁ + x₂)/√2 = 0.5, s = 0.2": ([[2**-0.5, 2**-0.5]], [0.5], 0.2),
        "denoise: observe x = (1, 1), s = 0.5": ([[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0], 0.5),
    }
    tables = {}
    for name, (A, y, s) in operators.items():
        A, y = torch.tensor(A, dtype=F64), torch.tensor(y, dtype=F64)
        exact = posterior.linear_gaussian_posterior(prior, A, y, s)
        methods = {"exact score (Heun)": _draw(exact, sig),
                   "DPS ζ = 1": _draw(inverse.DPSDenoiser(prior, A, y, s), sig),
                   "DPS ζ = 0.3": _draw(inverse.DPSDenoiser(prior, A, y, s, scale=0.3), sig),
                   "ΠGDM": _draw(inverse.PiGDMDenoiser(prior, A, y, s, data_var=v), sig),
                   "ΠGDM (DDPM sampler)": _draw(inverse.PiGDMDenoiser(prior, A, y, s, data_var=v),
                                                sig, "ddpm")}
        if A.shape[0] == 1 and A[0, 1] == 0:
            methods["replacement"] = _replacement(prior, y, sig, 1)
            methods["RePaint r = 5"] = _replacement(prior, y, sig, 5)
        dist = posterior.distance_to_posterior(exact, methods, n=n, seeds=seeds)
        tables[name] = {k: posterior.ratio_to_floor(dist[k], dist["floor"]) for k in methods}

    classes = torch.arange(8) % 2
    target = posterior.class_posterior(prior, classes, 0)
    clf = posterior.class_log_prob(prior, classes)

    def guided(scale, noise_aware=True):
        f = clf if noise_aware else (lambda x, s: clf(x, torch.full_like(torch.as_tensor(s), 0.05)))
        return lambda x, s: inverse.ClassifierGuidedDenoiser(
            prior, f, torch.zeros(len(x), dtype=torch.long), scale)(x, s)

    methods = {"exact score (Heun)": _draw(target.denoise, sig),
               "classifier guidance γ = 1 (exact classifier)": _draw(guided(1.0), sig),
               "classifier guidance γ = 3 = CFG w = 3": _draw(guided(3.0), sig),
               "classifier guidance γ = 1, noise-unaware classifier": _draw(guided(1.0, False), sig)}
    dist = posterior.distance_to_posterior(target, methods, n=n, seeds=seeds)
    tables["class label c = 0 (even modes)"] = {
        k: posterior.ratio_to_floor(dist[k], dist["floor"]) for k in methods}
    return tables


# ------------------------------------------------------------------------------------ digits
def bench_digits(seeds, n_digits):
    unet, clf = pretrained("digits_unet", verbose=False), pretrained("digits_classifier", verbose=False)
    noisy_clf = pretrained("digits_noisy_classifier", verbose=False)
    D_cond = digits_denoiser(unet)
    D = lambda x, s: D_cond(x, s, None)  # noqa: E731 (the unconditional prior)
    x_train, _ = data.load_digits(split="train")
    x_test, y_test = data.load_digits(split="test")
    v = float(x_train.var(0).mean())
    sig = schedules.karras_sigmas(20, 0.002, 80.0)
    top = torch.zeros(1, 8, 8)
    top[:, :4] = 1
    tasks = {"inpainting (top half seen), s = 0.05": (inverse.mask_operator(top),
                                                      DIGIT_NOISE["inpainting"]),
             "super-resolution 4×4 → 8×8, s = 0.05": (inverse.downsample_operator(8, 8, 2),
                                                      DIGIT_NOISE["super-resolution"]),
             "denoising, s = 0.5": (torch.eye(64), DIGIT_NOISE["denoising"])}
    task_rows = {}
    for task, (A, s) in tasks.items():
        acc = {}
        for seed in seeds:
            g = torch.Generator().manual_seed(100 + seed)
            idx = torch.randperm(len(x_test), generator=g)[:n_digits]
            x0, lab = x_test[idx], y_test[idx]
            y = x0.flatten(1) @ A.T + s * torch.randn(n_digits, A.shape[0], generator=g)
            run = lambda den: lambda x, g: samplers.sample("ddpm", den, x, sig, generator=g)  # noqa
            methods = {"DPS ζ = 1": run(inverse.DPSDenoiser(D, A, y, s)),
                       "DPS ζ = 0.3": run(inverse.DPSDenoiser(D, A, y, s, scale=0.3)),
                       "DPS ζ = 0.1": run(inverse.DPSDenoiser(D, A, y, s, scale=0.1)),
                       "ΠGDM": run(inverse.PiGDMDenoiser(D, A, y, s, data_var=v))}
            if task.startswith("inpainting"):
                known = (y @ A).reshape(-1, 1, 8, 8)
                for r in (1, 3):
                    methods["replacement" if r == 1 else "RePaint r = 3"] = (
                        lambda r: lambda x, g: inverse.sample_replacement(
                            D, x, sig, top, known, resample=r, generator=g))(r)
            if task.startswith("denoising"):
                methods["reverse process from σ = s"] = lambda x, g: samplers.sample(
                    "ddpm", D, y.reshape(-1, 1, 8, 8), schedules.karras_sigmas(10, 0.002, s),
                    generator=g)
            for name, method in methods.items():
                x = method(sig[0] * torch.randn(n_digits, 1, 8, 8, generator=g), g).clamp(-1, 1)
                with torch.no_grad():
                    correct = int((clf.logits(x).argmax(1) == lab).sum())
                r = acc.setdefault(name, {"resid": [], "mse": [], "k": 0, "n": 0})
                r["resid"].append((x.flatten(1) @ A.T - y).pow(2).mean(1).sqrt())
                r["mse"].append((x - x0).pow(2).flatten(1).mean(1))
                r["k"] += correct
                r["n"] += n_digits
        task_rows[task] = {k: (float(torch.cat(r["resid"]).mean()), float(torch.cat(r["mse"]).mean()),
                               r["k"] / r["n"], metrics.binomial_ci(r["k"], r["n"]))
                           for k, r in acc.items()}

    # SDEdit from binary sketches with 10% flipped pixels.
    g = torch.Generator().manual_seed(1)
    x_src, lab_src = x_test[:200], y_test[:200]
    guides = torch.where((x_src > 0) ^ (torch.rand(x_src.shape, generator=g) < 0.1), 1.0, -1.0)

    def scores(x):
        with torch.no_grad():
            p = clf.logits(x).softmax(1)
        return (float((p.argmax(1) == lab_src).float().mean()), float(p.max(1).values.mean()),
                metrics.feature_frechet_distance(clf, x_test, x),
                float((x - guides).pow(2).mean().sqrt()))

    sde = {"guides": [scores(guides)]}
    for lvl in (0.2, 0.5, 1.0, 2.0, 5.0):
        sde[lvl] = [scores(inverse.sdedit(D, guides, lvl, n_steps=15,
                                          generator=torch.Generator().manual_seed(s)).clamp(-1, 1))
                    for s in seeds]

    # Classifier guidance vs CFG, matched accuracy.
    labels = torch.arange(10).repeat(20)

    def guided(kind, scale, seed):
        g = torch.Generator().manual_seed(seed)
        x = sig[0] * torch.randn(len(labels), 1, 8, 8, generator=g)
        den = ((lambda x, s: D(x, s) + scale * (D_cond(x, s, labels) - D(x, s))) if kind == "CFG"
               else inverse.ClassifierGuidedDenoiser(D, noisy_clf.log_prob, labels, scale))
        out = samplers.sample("dpmpp_2m", den, x, sig, generator=g).clamp(-1, 1)
        with torch.no_grad():
            a = float((clf.logits(out).argmax(1) == labels).float().mean())
        return a, metrics.feature_frechet_distance(clf, x_test, out)

    sweep = {"CFG": {w: [guided("CFG", w, s) for s in seeds] for w in (0.0, 0.25, 0.5, 0.75, 1.0, 2.0)},
             "CG": {w: [guided("CG", w, s) for s in seeds] for w in (0.0, 3.0, 10.0, 20.0, 30.0)}}
    return task_rows, sde, sweep, noisy_clf.pretrained_info


def _fd_at(rows, target, i):
    a = np.array([v[i][0] for v in rows.values()])
    f = np.array([v[i][1] for v in rows.values()])
    o = np.argsort(a)
    return float(np.interp(target, a[o], f[o]))


# ------------------------------------------------------------------------------------ report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, fewer samples")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds_2d = tuple(range(3 if args.quick else 10))
    seeds_dig = tuple(range(3 if args.quick else 5))
    load0, wall, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
    t2d = bench_2d(seeds_2d, 1000 if args.quick else 2000, 30)
    cpu_2d = time.process_time() - cpu
    tasks, sde, sweep, clf_info = bench_digits(seeds_dig, 32 if args.quick else 64)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    L = ["# Benchmark 13 — steering generation against an exact posterior", "",
         "Generated by `benchmarks/inverse.py`. **Goals:** (1) the exact-score sampler (Heun, 30 "
         f"levels, driven by the closed-form noised posterior) within {GOAL_EXACT} × the noise floor "
         "for every 2D observation (a check of the machinery); (2) the approximate methods' biases "
         "measured and ranked; (3) the digit tasks measured over seeds.", "",
         f"## 2D: distance to exact posterior samples ÷ noise floor ({len(seeds_2d)} seeds)", "",
         "Prior `mixtures.ring(8, 2.0, 0.15)`. Per seed: sliced Wasserstein (64 projections) "
         "between each method's samples and an exact posterior set of the same size; the floor is "
         "the mean distance between that set and eight more exact sets. Ratio = mean over seeds "
         "÷ mean floor, with a 95% paired bootstrap interval over seeds. Wrappers run Heun's "
         "sampler on a 30-level Karras ladder (σ_max = 20) unless noted; replacement/RePaint run "
         "their DDPM loop on the same ladder.", ""]
    goal_met = True
    for op, rows in t2d.items():
        L += [f"### {op}", "", "| rank | method | distance / floor | 95% interval |", "|---|---|---|---|"]
        for rank, (k, (r, lo, hi)) in enumerate(sorted(rows.items(), key=lambda kv: kv[1][0]), 1):
            L.append(f"| {rank} | {k} | {r:.2f} | [{lo:.2f}, {hi:.2f}] |")
        ex = rows["exact score (Heun)"][0]
        goal_met &= ex <= GOAL_EXACT
        L += ["", f"Exact-score sampler: {ex:.2f} × floor — goal ≤ {GOAL_EXACT}: "
              f"{'met' if ex <= GOAL_EXACT else 'NOT met'}.", ""]
    L += [f"**Goal (1): {'met' if goal_met else 'NOT met'}** on every observation. Goal (2): the "
          "tables rank the methods; ranks whose intervals overlap are not resolved at this "
          "number of seeds.", ""]

    L += [f"## Digits: inverse problems ({len(seeds_dig)} seeds × "
          f"{32 if args.quick else 64} test digits)", "",
          "Unconditional chapter-7 U-Net (null label), DDPM ancestral sampler, 20 levels. Residual "
          "= ‖Ax − y‖/√m (a posterior sample keeps it near s); MSE per pixel to the hidden truth; "
          "accuracy = chapter 8's classifier reads the true label (Clopper–Pearson 95%).", ""]
    for task, rows in tasks.items():
        L += [f"### {task}", "", "| method | residual | MSE | accuracy | 95% interval |",
              "|---|---|---|---|---|"]
        for k, (res, mse, a, ci) in rows.items():
            L.append(f"| {k} | {res:.3f} | {mse:.3f} | {a:.2f} | [{ci[0]:.2f}, {ci[1]:.2f}] |")
        L.append("")

    L += ["## SDEdit: realism vs faithfulness (200 sketches: binarised test digits, 10% pixels "
          "flipped)", "", "| σ_start | accuracy (guide's digit) | confidence | Fréchet distance | "
          "RMS distance to guide |", "|---|---|---|---|---|"]
    for lvl, rs in sde.items():
        m = np.mean(rs, axis=0)
        L.append(f"| {lvl} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.1f} | {m[3]:.2f} |")
    L += ["", "Means over seeds (the guides row is the unedited sketches).", "",
          "## Classifier guidance vs classifier-free guidance (200 samples, 20 per class)", "",
          "| method | scale | accuracy | Fréchet distance |", "|---|---|---|---|"]
    for kind, rows in sweep.items():
        for sc, per in rows.items():
            a, f = np.mean(per, axis=0)
            L.append(f"| {kind} | {sc} | {a:.2f} | {f:.1f} |")
    n_seed = len(seeds_dig)
    for target in (0.5, 0.7):
        fc = [_fd_at(sweep["CFG"], target, i) for i in range(n_seed)]
        fg = [_fd_at(sweep["CG"], target, i) for i in range(n_seed)]
        wins = sum(a < b for a, b in zip(fc, fg))
        L.append("")
        L.append(f"At matched accuracy {target}: Fréchet distance CFG {np.mean(fc):.1f} "
                 f"(min {min(fc):.1f}, max {max(fc):.1f}), classifier guidance {np.mean(fg):.1f} "
                 f"(min {min(fg):.1f}, max {max(fg):.1f}); CFG lower in {wins} of {n_seed} seeds.")
    L += ["", "## Findings (computed from the tables above)", ""]
    for op, rows in t2d.items():
        approx = {k: v for k, v in rows.items()
                  if not k.startswith("exact") and "exact classifier" not in k}
        best, worst = min(approx, key=lambda k: approx[k][0]), max(approx, key=lambda k: approx[k][0])
        L.append(f"- 2D, {op}: least biased approximate method {best} ({approx[best][0]:.2f} × "
                 f"floor), most biased {worst} ({approx[worst][0]:.2f} ×).")
    for task, rows in tasks.items():
        s = next(v for k, v in DIGIT_NOISE.items() if task.startswith(k))
        ok = [k for k, r in rows.items() if r[0] <= 2 * s]
        rest = [k for k in rows if k not in ok]
        L.append(f"- Digits, {task}: residual within 2s for {', '.join(ok) or 'no method'}"
                 + (f"; not for {', '.join(rest)}." if rest else " (every method)."))
    for zeta in ("DPS ζ = 1", "DPS ζ = 0.3", "DPS ζ = 0.1"):
        bad = [task.split(" ")[0].rstrip(",") for task, rows in tasks.items()
               if rows[zeta][0] > 2 * next(v for k, v in DIGIT_NOISE.items() if task.startswith(k))
               or rows[zeta][2] < max(r[2] for r in rows.values()) - 0.15]
        L.append(f"- {zeta} fails (residual above 2s, or accuracy more than 0.15 below the task's "
                 f"best) on: {', '.join(bad) or 'no task'}.")
    pigdm_ok = all(rows["ΠGDM"][0] <= 2 * next(v for k, v in DIGIT_NOISE.items() if t.startswith(k))
                   for t, rows in tasks.items())
    L.append("- ΠGDM is biased in 2D, where its isotropic Gaussian prior (variance 2 per axis) is "
             "far from the ring's tight modes (std 0.15); on the digits, whose per-pixel variance "
             "it uses, its residual " + ("stayed within 2s on every task." if pigdm_ok else
                                         "exceeded 2s on at least one task."))
    L += ["", "## Cost", "",
          f"Noise-aware classifier (`pretrained(\"digits_noisy_classifier\")`), cold training: "
          f"{clf_info.get('train_cpu_s', float('nan')):.1f} CPU-s (budget for the chapter's cached "
          "models: 60 CPU-s).",
          f"This benchmark: {wall:.0f} s wall, {cpu:.0f} s CPU (2D part {cpu_2d:.0f} s CPU), 1 torch "
          f"thread, torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} cores, "
          f"1-minute load average {load0:.1f} at the start (the machine was shared when it exceeds "
          "the cores)."]
    pathlib.Path(args.out).write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
