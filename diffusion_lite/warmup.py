"""Warm the model cache: train every model the course loads, once, before a class needs it.

A Binder image (``postBuild``), an instructor preparing a shared read-only cache for a JupyterHub
class, or CI run ``make cache`` (``python -m diffusion_lite.warmup``). Each chapter module that
registers cached models (:data:`diffusion_lite.pretrained.PROVIDERS`) lists the exact
``(name, config)`` pairs its notebook loads in a module attribute ``COURSE_MODELS``; the
chapter-7 models are listed here. After a warm-up, running the notebooks trains nothing: with
``DIFFUSION_LITE_NO_TRAIN=1`` set, :func:`diffusion_lite.pretrained.pretrained` refuses to train
and names the command that fills the cache, so a missing entry is an error, not a silent wait.

Usage::

    python -m diffusion_lite.warmup            # train what is missing (2 processes)
    python -m diffusion_lite.warmup --list     # what the course loads, and whether it is cached
    python -m diffusion_lite.warmup --check    # exit 1 if anything is missing (trains nothing)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from . import pretrained as _pretrained

__all__ = ["NO_TRAIN_ENV", "course_models", "missing", "warm_cache", "main"]

NO_TRAIN_ENV = "DIFFUSION_LITE_NO_TRAIN"


def course_models() -> list[tuple[str, object]]:
    """Every ``(name, config)`` the course's notebooks load, chapter 7's first."""
    models: list[tuple[str, object]] = [("digits_unet", None), ("digits_classifier", None)]
    for module in _pretrained.PROVIDERS:
        for name, config in getattr(importlib.import_module(module), "COURSE_MODELS", ()):
            models.append((name, config))
    return [(n, _pretrained.REGISTRY[n].default_config if c is None else c) for n, c in models]


def missing() -> list[tuple[str, object]]:
    """The course models that have no cache file yet (their file is not checked here)."""
    return [(n, c) for n, c in course_models() if not _pretrained.cache_path(n, c).exists()]


def _warm_one(item: tuple[str, object]) -> tuple[str, float, str | None]:
    import torch

    torch.set_num_threads(1)  # one core per worker: small models gain nothing from more
    name, config = item
    t0 = time.perf_counter()
    try:
        _pretrained.pretrained(name, config, verbose=False)
    except Exception as exc:  # reported with the others at the end; the rest still warm up
        return name, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    return name, time.perf_counter() - t0, None


def warm_cache(jobs: int = 2, *, verbose: bool = True) -> list[tuple[str, float]]:
    """Load or train every course model, ``jobs`` at a time; return (name, wall seconds) per model.

    The cache's per-file lock makes concurrent runs (two instructors, two workers) train each model
    once; an already cached model is only verified and loaded. A model that fails to train does
    not stop the others: the failures are raised together at the end.
    """
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if os.environ.get(NO_TRAIN_ENV):
        raise RuntimeError(f"{NO_TRAIN_ENV} is set, so nothing can be trained; unset it to warm "
                           "the cache")
    items = course_models()
    if verbose:
        print(f"warming {len(items)} models in {_pretrained.cache_dir()} with {jobs} process(es)")
    if jobs == 1:
        done = [_warm_one(item) for item in items]
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            done = list(pool.map(_warm_one, items))
    if verbose:
        for name, seconds, error in done:
            print(f"  {name:<32} {seconds:7.1f} s" + (f"  FAILED: {error}" if error else ""))
    failed = [f"{name}: {error}" for name, _, error in done if error]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(done)} models could not be trained:\n  "
                           + "\n  ".join(failed))
    return [(name, seconds) for name, seconds, _ in done]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffusion_lite.warmup",
                                     description="Train every model the course loads, once.")
    parser.add_argument("--jobs", type=int, default=2, help="processes training at once (default 2)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list the course's models and exit")
    group.add_argument("--check", action="store_true",
                       help="exit with status 1 if a model is not cached (trains nothing)")
    args = parser.parse_args(argv)
    if args.list or args.check:
        absent = {(n, _pretrained.cache_key(n, c)) for n, c in missing()}
        for name, config in course_models():
            state = "missing" if (name, _pretrained.cache_key(name, config)) in absent else "cached"
            print(f"{state:8} {name:<32} {_pretrained.cache_path(name, config)}")
        return 1 if args.check and absent else 0
    warm_cache(args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
