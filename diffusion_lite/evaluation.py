"""Evaluating a run against held-out data, every number next to its noise floor (step 6).

The held-out set (never trained on) is cut into two halves of m samples, A and B. The model
draws m samples G. Each metric of chapter 8 is computed twice, on the same footing:

- model: metric(A, G), how far the samples are from real data;
- noise floor: metric(A, B), the value a *perfect* model gets with m samples (B is real data);

each with a bootstrap interval {cite}`efron1993`. A model whose interval overlaps the floor's
cannot be told apart from the data by that metric at this sample size; one above it can. The
memorisation ratio ρ(y) = d(y, train)/d(y, held-out) compares each sample's nearest training
point with its nearest held-out point (equally many of each) {cite}`carlini2023`: ρ ≈ 1 for a
model that generalises, ρ → 0 for copies of training data. Metrics are computed in the model's
space (standardised points, images in [−1, 1]) so columns in large units do not dominate.

Notation (code → symbol): ``A``, ``B`` the held-out halves · ``G`` generated samples · ``m`` their
size · ``h`` the MMD bandwidth (fixed from A) · ``theta`` the sliced-Wasserstein directions ·
``rho`` ρ.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import metrics
from .datasets_io import DataError

__all__ = ["evaluate", "to_markdown", "METRICS"]

# name → (what it measures, "lower"/"higher" is better)
METRICS = {
    "mmd2": ("squared MMD, RBF kernel (bandwidth from A)", "lower"),
    "sliced_w2": ("sliced Wasserstein-2, 64 fixed directions", "lower"),
    "frechet": ("Fréchet distance of Gaussian fits (coordinates, or 64 projections)", "lower"),
    "precision": ("precision, k = 3 (share of samples on the data manifold)", "higher"),
    "recall": ("recall, k = 3 (share of data covered by the samples)", "higher"),
    "memorisation": ("median ρ = d(train)/d(held-out); ≈ 1 generalises, → 0 copies", "higher"),
}


def _metric_fns(A: torch.Tensor, train: torch.Tensor,
                generator: torch.Generator) -> dict[str, Callable[[torch.Tensor, torch.Tensor], float]]:
    """Each metric as f(real, gen), its free parameters fixed once so model and floor are comparable."""
    h = metrics.median_bandwidth(A)
    d = A.shape[1]
    theta = metrics.random_projections(d, 64, generator=generator)  # (d, 64)
    proj = (lambda z: z) if d <= 64 else (lambda z: z @ theta)

    def memo(real: torch.Tensor, gen: torch.Tensor) -> float:
        return float(metrics.memorisation_ratios(gen, train, real).median())

    return {
        "mmd2": lambda r, g: metrics.mmd2(r, g, bandwidth=h),
        "sliced_w2": lambda r, g: metrics.sliced_wasserstein(r, g, projections=theta),
        "frechet": lambda r, g: metrics.frechet_distance(proj(r), proj(g)),
        "precision": lambda r, g: metrics.precision_recall(r, g, k=3).precision,
        "recall": lambda r, g: metrics.precision_recall(r, g, k=3).recall,
        "memorisation": memo,
    }


def _as_dict(e: metrics.Estimate, share: bool) -> dict:
    """An estimate as JSON; a share (precision, recall) keeps its interval inside [0, 1]."""
    low, high = (max(e.low, 0.0), min(e.high, 1.0)) if share else (e.low, e.high)
    return {"value": e.value, "low": low, "high": high, "se": e.se}


def evaluate(train: torch.Tensor, heldout: torch.Tensor, generate: Callable[[int], torch.Tensor], *,
             n_boot: int = 20, seed: int = 0) -> dict:
    """Compare ``generate(m)`` with held-out data, each metric beside its noise floor.

    ``train`` and ``heldout`` are the data in the model's space; ``generate(m)`` returns m samples
    in the same space. Returns a JSON-able report: per metric the model's and the floor's value with
    a bootstrap interval (``n_boot`` resamples), and a verdict.
    """
    m = heldout.shape[0] // 2
    if m < 8:
        raise DataError(f"{heldout.shape[0]} held-out samples are too few to evaluate (need 16); "
                        "train with a larger --heldout fraction or pass more data")
    g = torch.Generator().manual_seed(seed)
    flat = lambda z: z.detach().reshape(z.shape[0], -1).to(torch.float64).cpu()  # noqa: E731
    order = torch.randperm(heldout.shape[0], generator=g)  # halves drawn at random, not by file order
    A, B = flat(heldout[order[:m]]), flat(heldout[order[m:2 * m]])
    idx = torch.randperm(train.shape[0], generator=g)[:m]
    if len(idx) < m:
        raise DataError(f"the memorisation check needs as many training samples as half the "
                        f"held-out set ({m}); got {train.shape[0]}: hold out less")
    G = flat(generate(m))
    fns = _metric_fns(A, flat(train)[idx], g)
    rows = {}
    for name, fn in fns.items():
        model = metrics.bootstrap_ci(fn, A, G, n_boot=n_boot, generator=g)
        floor = metrics.bootstrap_ci(fn, A, B, n_boot=n_boot, generator=g)
        better = METRICS[name][1]
        overlap = model.low <= floor.high and floor.low <= model.high
        worse = model.value > floor.value if better == "lower" else model.value < floor.value
        verdict = "at the noise floor" if overlap else ("worse than the floor" if worse
                                                        else "better than the floor (check for copies)")
        share = name in ("precision", "recall")
        rows[name] = {"meaning": METRICS[name][0], "better": better, "model": _as_dict(model, share),
                      "floor": _as_dict(floor, share), "verdict": verdict}
    near_copies = float((metrics.memorisation_ratios(G, flat(train)[idx], A) < 1 / 3).double().mean())
    return {"m": m, "n_train": int(train.shape[0]), "n_heldout": int(heldout.shape[0]),
            "n_boot": n_boot, "seed": seed, "metrics": rows,
            "near_copies": {"share_rho_below_1/3": near_copies}}


def _fmt(e: dict) -> str:
    return f"{e['value']:.4g} [{e['low']:.3g}, {e['high']:.3g}]"


def to_markdown(report: dict, title: str = "Evaluation") -> str:
    """The report as a Markdown table: metric, model, noise floor, verdict."""
    lines = [f"# {title}", "",
             f"{report['m']} generated samples against {report['m']} held-out samples (A); the noise "
             f"floor compares A with {report['m']} other held-out samples (B). Intervals: ±1.96 "
             f"bootstrap SE over {report['n_boot']} resamples. Trained on {report['n_train']} samples.",
             "", "| metric | better | model | noise floor | verdict |", "|---|---|---:|---:|---|"]
    for name, r in report["metrics"].items():
        lines.append(f"| {name}: {r['meaning']} | {r['better']} | {_fmt(r['model'])} | "
                     f"{_fmt(r['floor'])} | {r['verdict']} |")
    share = report["near_copies"]["share_rho_below_1/3"]
    lines += ["", f"Near copies (nearest training point less than a third as far as the nearest "
              f"held-out point, ρ < 1/3): {share:.1%} of the samples.", ""]
    return "\n".join(lines)
