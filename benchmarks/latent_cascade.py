"""Chapter 12 benchmark: pixel U-Net, pixel transformer, latent diffusion and the cascade side by side.

Writes ``benchmarks/latent_cascade.md``: training CPU-seconds (cold, from each cache entry),
CPU milliseconds per sample, Fréchet distance and KID against the 355 held-out digits (with the
noise floor), and classifier accuracy of class-conditional samples, over sampling seeds and, for
the chapter's own models, over training seeds (one cache entry per seed); then local-window vs
global attention for a transformer trained each way.

Goal (issue #14): latent diffusion samples at least 2× cheaper per sample than pixel diffusion at
a Fréchet distance within 1.5× of it.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latent_cascade.py [--train-seeds 2]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import pathlib
import platform
import resource
import time

import numpy as np
import torch
from scipy import stats

from diffusion_lite import data, image_metrics, kid, metrics, samplers, schedules
from diffusion_lite.cascade import CascadeConfig, sample_cascade
from diffusion_lite.denoisers import Denoiser
from diffusion_lite.latent import LatentDiffusionConfig, sample_latent, score_samples
from diffusion_lite.nets.transformer import DigitsTransformerConfig
from diffusion_lite.pretrained import digits_denoiser, pretrained

OUT = pathlib.Path(__file__).with_suffix(".md")
LADDER = schedules.karras_sigmas(18, 0.002, 80.0)  # Heun: 35 network evaluations per stage


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _with_seed(config, seed: int):
    """The same config with every training seed set to ``seed`` (one cache entry per seed)."""
    changes = {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if f.name.startswith("train") and dataclasses.is_dataclass(v):
            changes[f.name] = dataclasses.replace(v, seed=seed)
        elif f.name == "autoencoder":
            changes[f.name] = dataclasses.replace(v, seed=seed)
    return dataclasses.replace(config, **changes)


def _pixel(D):
    def generate(y, generator):
        z = torch.randn((len(y), 1, 8, 8), generator=generator) * LADDER[0]
        return samplers.sample("heun", lambda v, s: D(v, s, y), z, LADDER, generator=generator)
    return generate


def _interval(values) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval (0 for a single value)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), 0.0
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def _fmt(values, digits=2) -> str:
    m, hw = _interval(values)
    return f"{m:.{digits}f} ± {hw:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent-seeds", type=int, default=1,
                        help="training seeds of the latent model (the goal's subject; each trains "
                             "once, cached); the other models use training seed 0")
    parser.add_argument("--sample-seeds", type=int, default=3)
    parser.add_argument("--no-window", action="store_true", help="skip the windowed transformer")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    t_wall, t_cpu = time.perf_counter(), _cpu()
    x_train, _ = data.load_digits(split="train")
    x_test, _ = data.load_digits(split="test")
    labels = torch.arange(len(x_test)) % 10
    classifier = pretrained("digits_classifier", verbose=False)
    sample_seeds = range(args.sample_seeds)

    unet = pretrained("digits_unet", verbose=False)
    rows = {"U-Net (pixels, ch. 7)": [(unet.pretrained_info["train_cpu_s"], _pixel(digits_denoiser(unet)))]}
    recon_fd = []
    tf = pretrained("ch12_transformer", DigitsTransformerConfig(), verbose=False)
    cas = pretrained("ch12_cascade", CascadeConfig(), verbose=False)
    rows["transformer (pixels)"] = [(tf.pretrained_info["train_cpu_s"], _pixel(Denoiser(tf, "edm", 0.5)))]
    for seed in range(args.latent_seeds):
        lat_cfg = _with_seed(LatentDiffusionConfig(), seed)
        lat = pretrained("ch12_latent", lat_cfg, verbose=False)
        ae = pretrained("ch12_autoencoder", lat_cfg.autoencoder, verbose=False)
        with torch.no_grad():
            recon_fd.append(metrics.feature_frechet_distance(classifier, x_test, ae(x_test)))
        rows.setdefault("latent transformer (+ autoencoder)", []).append(
            (lat.pretrained_info["latent_train_cpu_s"] + ae.pretrained_info["train_cpu_s"],
             lambda y, g, m=lat: sample_latent(m, y, LADDER, generator=g)))
    rows["cascade 4×4 → 8×8 (σ_aug = 0.1)"] = [(cas.pretrained_info["train_cpu_s"], lambda y, g:
                                                 sample_cascade(cas, y, LADDER, LADDER, aug_sigma=0.1,
                                                                generator=g))]
    rows["cascade, no augmentation at sampling"] = [(cas.pretrained_info["train_cpu_s"], lambda y, g:
                                                     sample_cascade(cas, y, LADDER, LADDER,
                                                                    aug_sigma=0.0, generator=g))]
    floor = [metrics.feature_frechet_distance(classifier, x_test, x_train[torch.randperm(
        len(x_train), generator=torch.Generator().manual_seed(k))[:len(x_test)]]) for k in range(5)]
    kid_floor = [kid.feature_kid(classifier, x_test, x_train[torch.randperm(
        len(x_train), generator=torch.Generator().manual_seed(k))[:len(x_test)]],
        subset_size=len(x_test), n_subsets=1).value for k in range(5)]

    results = {}
    with torch.no_grad():
        for name, entries in rows.items():
            per = {"train": [], "ms": [], "fd": [], "kid": [], "acc": []}
            for train_cpu, generate in entries:
                per["train"].append(train_cpu)
                for seed in sample_seeds:
                    _, sc = score_samples(generate, labels, x_test, classifier, seed=seed)
                    per["ms"].append(sc.ms_per_sample)
                    per["fd"].append(sc.fd)
                    per["kid"].append(sc.kid)
                    per["acc"].append(100 * sc.accuracy)
            results[name] = per

    window = None if args.no_window else _window_study(x_test)
    _write(args, results, floor, kid_floor, recon_fd, window, time.perf_counter() - t_wall,
           _cpu() - t_cpu)


def _window_study(x_test: torch.Tensor) -> dict:
    """PSNR of a transformer trained with global attention vs one trained with 3×3 windows."""
    base = DigitsTransformerConfig()
    local = dataclasses.replace(base, net=dataclasses.replace(base.net, window=1))
    nets = {"global": pretrained("ch12_transformer", base, verbose=False),
            "window 1 (3×3 patches)": pretrained("ch12_transformer", local, verbose=False)}
    out = {}
    g = torch.Generator().manual_seed(5)
    noisy = {s: x_test + s * torch.randn(x_test.shape, generator=g) for s in (0.1, 0.4, 1.6)}
    with torch.no_grad():
        for name, net in nets.items():
            D = Denoiser(net, "edm", 0.5)
            out[name] = {"train": net.pretrained_info["train_cpu_s"],
                         **{s: float(image_metrics.psnr(D(z, s).clamp(-1, 1), x_test, data_range=2.0))
                            for s, z in noisy.items()}}
    return out


def _write(args, results, floor, kid_floor, recon_fd, window, wall, cpu) -> None:
    fl, fl_hw = _interval(floor)
    lines = [
        "# Chapter 12 benchmark: latent, cascaded and pixel-space diffusion on the digits", "",
        f"Written by `benchmarks/latent_cascade.py` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} with {torch.get_num_threads()} "
        f"thread(s). Load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
        "(the machine was shared: CPU seconds are the steady measure). The run took "
        f"{wall:.0f} s wall, {cpu:.0f} CPU-s (models already cached).", "",
        f"Every model draws one sample per label for the 355 held-out digits' label counts (0–9 in "
        f"turn), Heun on 18 Karras levels (35 network evaluations; the cascade 35 per stage), no "
        f"guidance (w = 1). {args.sample_seeds} sampling seed(s) per model, × {args.latent_seeds} "
        "training seed(s) for the latent model (the others: their one cached training, seed 0); "
        "± is the half-width of a 95% Student-t interval over all (seed, seed) pairs. FD and KID "
        "against the 355 "
        "held-out digits on the digit classifier's 64 features; accuracy = share classified as "
        "the requested digit. ms/sample is CPU time (process time) per sample, sampling only.", "",
        f"Noise floor (held-out digits vs random sets of 355 training digits, 5 sets): FD "
        f"**{fl:.2f} ± {fl_hw:.2f}**. The autoencoder's reconstructions of the held-out digits are "
        f"at FD {_fmt(recon_fd)} from them: a latent model's samples cannot be judged more "
        "precisely than that.", "",
        f"KID noise floor (same sets): {_fmt(kid_floor)}.", "",
        "| model | training CPU-s (cold) | ms/sample | FD | FD / floor | KID | accuracy % |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {_fmt(r['train'], 0)} | {_fmt(r['ms'])} | {_fmt(r['fd'])} | "
                     f"{_interval(r['fd'])[0] / fl:.2f} | {_fmt(r['kid'])} | {_fmt(r['acc'], 1)} |")
    lat, unet = results["latent transformer (+ autoencoder)"], results["U-Net (pixels, ch. 7)"]
    tf = results["transformer (pixels)"]
    lines += ["", "## Goal: latent diffusion ≥ 2× cheaper per sample at FD within 1.5× of pixel "
              "diffusion", ""]
    for ref_name, ref in (("the chapter-7 U-Net", unet), ("the pixel transformer", tf)):
        speed = _interval(ref["ms"])[0] / _interval(lat["ms"])[0]
        ratio = _interval(lat["fd"])[0] / _interval(ref["fd"])[0]
        ok = speed >= 2 and ratio <= 1.5
        lines.append(f"- Against {ref_name}: latent sampling is **{speed:.1f}×** cheaper per sample "
                     f"(goal ≥ 2: {'met' if speed >= 2 else 'NOT met'}), its FD is "
                     f"**{ratio:.2f}×** the pixel model's (goal ≤ 1.5: "
                     f"{'met' if ratio <= 1.5 else 'NOT met'}) — goal **{'met' if ok else 'NOT met'}**.")
    chapter = {"autoencoder": pretrained("ch12_autoencoder", verbose=False),
               "latent transformer": pretrained("ch12_latent", verbose=False),
               "pixel transformer": pretrained("ch12_transformer", verbose=False),
               "cascade (both stages)": pretrained("ch12_cascade", verbose=False)}
    cold = {n: m.pretrained_info.get("latent_train_cpu_s", m.pretrained_info["train_cpu_s"])
            for n, m in chapter.items()}
    lines += ["", "## Cold training of the notebook's cached models (seed 0)", "",
              ", ".join(f"{n} {v:.0f}" for n, v in cold.items())
              + f" CPU-s: **{sum(cold.values()):.0f} CPU-s** in total (budget ≤ 300: "
              f"{'met' if sum(cold.values()) <= 300 else 'NOT met'}). Measured while the shared "
              "machine was loaded; the chapter-7 U-Net is reused, not retrained."]
    lines += ["", "CPU times per sample move by 10–20% between runs on the shared machine (two "
              "runs gave the latent model 2.2× and 2.5× against the U-Net); the FD ratios do not "
              "depend on the machine."]
    if window:
        lines += ["", "## Local-window vs global attention (pixel transformer, trained each way)", "",
                  "PSNR (dB) of one denoiser evaluation on the 355 noisy held-out digits.", "",
                  "| attention | training CPU-s | σ = 0.1 | σ = 0.4 | σ = 1.6 |", "|---|---|---|---|---|"]
        for name, w in window.items():
            lines.append(f"| {name} | {w['train']:.0f} | {w[0.1]:.2f} | {w[0.4]:.2f} | {w[1.6]:.2f} |")
        g, loc = window.values()
        gap = max(abs(g[s] - loc[s]) for s in (0.1, 0.4, 1.6))
        lines += ["", f"Trained with 3×3-patch windows from the start, the transformer denoises within "
                  f"{gap:.2f} dB of the globally attending one at every σ, at the same training cost "
                  "(the mask does not save compute at 16 tokens). Masking the *global* model's "
                  "attention only at inference costs 0.3–0.6 dB (notebook 12): the trained network "
                  "reaches across the digit when it can, but it does not need to."]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
