"""Measuring the families side by side with chapter 8's metrics (one row per model and seed).

2D: modes covered and the weight error against the oracle (:func:`mode_coverage.mode_coverage`),
precision/recall (k-NN balls), sliced Wasserstein distance to fresh data *divided by its noise
floor* (the same distance between two real sets of the same size), and bits/dim of held-out data.
Digits: the same ideas on the digit classifier's features against the held-out test split —
Fréchet distance over its noise floor, KID, precision/recall — plus *class coverage*, the digit
classes the classifier finds in the samples (10 "modes", weight error against the data's class
frequencies). Every row also has the cost: network evaluations and milliseconds per 1,000 samples.

| code name | symbol | meaning |
|---|---|---|
| ``bpd`` | bits/dim | −log₂ p(x) / d, mean over held-out data (lower is better) |
| ``sw_ratio`` | SW / SW_floor | sliced Wasserstein over its real-vs-real value (1 is perfect) |
| ``fd_ratio`` | FD / FD_floor | Fréchet distance on classifier features over its floor |
| ``ms_per_1000`` | — | CPU milliseconds to draw 1,000 samples (one batch of ``n``) |
"""

from __future__ import annotations

import math
import time

import torch

from .. import data, kid, metrics, mode_coverage
from .common import many_modes, seed_interval
from .zoo import Model

__all__ = ["timed_samples", "evaluate_2d", "floor_2d", "digit_reference", "evaluate_digits",
           "summarise"]


def timed_samples(model: Model, n: int, *, generator: torch.Generator,
                  min_seconds: float = 0.1) -> tuple[torch.Tensor, float]:
    """(n samples, CPU milliseconds per 1,000 samples), drawn in batches of n without gradients.

    CPU time of this process (``time.process_time``), not wall time: on a shared machine the wall
    clock also counts other people's jobs. A one-pass family draws a batch in about a millisecond,
    below the clock's resolution, so the batch is repeated until ``min_seconds`` have passed; the
    samples returned are the first batch's.
    """
    reps, t0 = 0, time.process_time()
    with torch.no_grad():
        while True:
            batch = model.sample(n, generator=generator)
            x = batch if reps == 0 else x
            reps += 1
            if time.process_time() - t0 >= min_seconds:
                break
    return x, 1000 * (time.process_time() - t0) / reps * 1000 / n


def _sw(real, gen, seed: int) -> float:
    proj = metrics.random_projections(real.shape[1], 128, generator=torch.Generator().manual_seed(seed))
    return metrics.sliced_wasserstein(real, gen, projections=proj)


def floor_2d(n: int, seed: int) -> float:
    """Sliced Wasserstein between two independent real sets of size n (the noise floor)."""
    m, g = many_modes(), torch.Generator().manual_seed(10_000 + seed)
    return _sw(m.sample(n, generator=g), m.sample(n, generator=g), seed)


def evaluate_2d(model: Model, *, n: int = 2000, n_likelihood: int = 500, seed: int = 0) -> dict:
    """One row of the 2D table for ``model``: coverage, precision/recall, SW/floor, bits/dim, cost."""
    m, g = many_modes(), torch.Generator().manual_seed(1000 + seed)
    real = m.sample(n, generator=g).to(torch.float32)
    x, ms = timed_samples(model, n, generator=g)
    cov = mode_coverage.mode_coverage(m, x)
    pr = metrics.precision_recall(real, x, k=3)
    row = {"family": model.family, "seed": model.seed, "modes": cov.covered,
           "weight_error": cov.weight_error, "off_mode": cov.off_mode_rate,
           "precision": pr.precision, "recall": pr.recall,
           "sw_ratio": _sw(real, x, seed) / floor_2d(n, seed), "nfe": model.nfe,
           "ms_per_1000": ms, "train_cpu_s": model.train_cpu_s, "samples": x}
    # The same held-out points for every family of a seed, so bits/dim compare pairwise.
    held = m.sample(n_likelihood, generator=torch.Generator().manual_seed(2000 + seed))
    row["bpd"] = _bpd(model, held.to(torch.float32), g)
    return row


def _bpd(model: Model, x: torch.Tensor, g: torch.Generator) -> float:
    if model.log_likelihood is None:
        return float("nan")  # a GAN defines no density
    ll = model.log_likelihood(x, generator=g)
    return float(-ll.mean() / (x[0].numel() * math.log(2)))


def digit_reference(classifier, *, seed: int = 0) -> dict:
    """Held-out digits (test split), their features, class frequencies, and the noise floors:
    Fréchet distance and KID between the test split and as many training digits."""
    x_test, y_test = data.load_digits(split="test")
    x_train, _ = data.load_digits(split="train")
    g = torch.Generator().manual_seed(20_000 + seed)
    sub = x_train[torch.randperm(len(x_train), generator=g)[:len(x_test)]]
    f_test = metrics.extract_features(classifier.features, x_test)
    f_sub = metrics.extract_features(classifier.features, sub)
    freq = torch.bincount(y_test, minlength=10).double() / len(y_test)
    return {"x": x_test, "features": f_test, "class_freq": freq,
            "fd_floor": metrics.frechet_distance(f_test, f_sub),
            "kid_floor": kid.kid(f_test, f_sub, subset_size=200, n_subsets=50, generator=g).value}


def evaluate_digits(model: Model, classifier, reference: dict, *, n: int = 355,
                    n_likelihood: int = 64, seed: int = 0) -> dict:
    """One row of the digits table: class coverage, FD/floor, KID, precision/recall on features,
    bits/dim (discrete-equivalent; exact for the autoregressive model), and cost."""
    g = torch.Generator().manual_seed(3000 + seed)
    x, ms = timed_samples(model, n, generator=g)
    x = x.clamp(-1, 1)
    feats = metrics.extract_features(classifier.features, x)
    with torch.no_grad():
        labels = classifier.logits(x).argmax(dim=1)
    counts = torch.bincount(labels, minlength=10).double()
    freq = reference["class_freq"]
    pr = metrics.precision_recall(reference["features"], feats, k=3)
    row = {"family": model.family, "seed": model.seed,
           "classes": int((counts >= 0.25 * n * freq).sum()),
           "class_error": 0.5 * float((counts / n - freq).abs().sum()),
           "precision": pr.precision, "recall": pr.recall,
           "fd_ratio": metrics.frechet_distance(reference["features"], feats) / reference["fd_floor"],
           "kid": kid.kid(reference["features"], feats, subset_size=200, n_subsets=50,
                          generator=g).value,
           "nfe": model.nfe, "ms_per_1000": ms, "train_cpu_s": model.train_cpu_s, "samples": x}
    pick = torch.randperm(len(reference["x"]), generator=torch.Generator().manual_seed(4000 + seed))
    row["bpd"] = _bpd(model, reference["x"][pick[:n_likelihood]], g)  # same digits for every family
    return row


def summarise(rows: list[dict], keys: tuple[str, ...]) -> dict[str, dict[str, metrics.Estimate]]:
    """Per family, the mean over seeds of each key with a Student-t 95% interval."""
    out: dict[str, dict[str, metrics.Estimate]] = {}
    for family in dict.fromkeys(r["family"] for r in rows):
        mine = [r for r in rows if r["family"] == family]
        out[family] = {k: seed_interval([r[k] for r in mine]) for k in keys}
    return out
