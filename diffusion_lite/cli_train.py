"""The ``train`` subcommand: options (flags, TOML, defaults per kind of data), then ``training.train``.

Order of work, so that bad input fails before anything is written: read and check the data, build
the configuration (every field validated by ``TrainConfig``), check the output folder is writable,
then write ``run.json`` and train. Only rank 0 writes (checkpoints, ``run.json``, ``log.jsonl``).
Options are resolved as defaults for the kind of data < TOML file < flags.

Notation (code → symbol): ``opts`` the resolved options · ``x`` x₀ the prepared data ·
``sigma_data`` σ_d · ``parallel`` this process's rank r of W (None: one process).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import time

import torch

from . import checkpoints, distributed, runs, training
from .datasets_io import DataError, Dataset, load_data, split_heldout

__all__ = ["add_arguments", "run", "resolve", "load_run_data", "DEFAULTS", "KIND_DEFAULTS"]

# name → (type, help); every option defaults to None so that "not given" is visible.
_TRAIN_FIELDS = {
    "steps": (int, "optimiser steps of the whole run (a resume continues to here)"),
    "batch_size": (int, "global batch (split over processes under torchrun)"),
    "lr": (float, "peak Adam learning rate"), "lr_warmup": (int, "warm-up steps"),
    "lr_decay": (str, "cosine or constant"), "ema_decay": (float, "EMA decay β"),
    "grad_clip": (float, "gradient-norm clip (0: none)"),
    "prediction": (str, "what the network predicts: edm, x0, eps or v"),
    "weighting": (str, "loss weighting λ(σ) (default: the prediction's own)"),
    "sigma_data": (float, "σ_d (default: the training data's standard deviation)"),
    "sigma_dist": (str, "noise-level distribution: lognormal or loguniform"),
    "p_mean": (float, "mean of ln σ (lognormal)"), "p_std": (float, "std of ln σ (lognormal)"),
    "sigma_min": (float, "lower σ (loguniform)"), "sigma_max": (float, "upper σ (loguniform)"),
    "label_dropout": (float, "share of labels dropped (guidance; conditional data only)"),
    "seed": (int, "seeds the network, the held-out split and every draw"),
    "checkpoint_every": (int, "save a checkpoint every N steps (0: only at the end)"),
}
_MODEL_FIELDS = {"hidden": (int, "MLP width (points)"), "depth": (int, "MLP blocks (points)"),
                 "emb_dim": (int, "noise-embedding width"),
                 "base_channels": (int, "U-Net channels at full resolution (images)"),
                 "channel_mults": (str, "U-Net channel multipliers per level, e.g. 1,2,2"),
                 "attention": (str, "U-Net self-attention at the lowest resolution: true/false")}
_DATA_FIELDS = {"image_size": (int, "resize every image to N×N (needed for mixed sizes)"),
                "channels": (int, "1 (grey) or 3 (RGB); default from the images"),
                "label_column": (str, "CSV column / NPZ key holding class labels"),
                "npz_key": (str, "which array of an .npz holds the points"),
                "heldout": (float, "share of the data held out for `evaluate` (default 0.2)")}
DEFAULTS = {"heldout": 0.2, "seed": 0, "checkpoint_every": 0, "lr_warmup": 100,
            "lr_decay": "cosine", "grad_clip": 1.0, "prediction": "edm", "sigma_dist": "lognormal",
            "device": "cpu"}
KIND_DEFAULTS = {  # the course's 2D default run for points, chapter 7's U-Net run for images
    "points": {"steps": 2000, "batch_size": 256, "lr": 3e-3, "ema_decay": 0.995, "p_mean": -0.5,
               "p_std": 1.5},
    "images": {"steps": 3000, "batch_size": 128, "lr": 2e-3, "ema_decay": 0.999, "p_mean": -1.2,
               "p_std": 1.2},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", help="a .csv/.npy/.npz file of points or a folder of "
                   "PNG/JPEG images (class sub-folders give labels); optional with --resume")
    p.add_argument("--out", required=True, help="the run folder to write (or to resume)")
    p.add_argument("--config", help="a TOML file of options (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.add_argument("--init-from", help="fine-tune: start from this run's EMA weights")
    p.add_argument("--stop-after", type=int, help="stop after this many steps in total, as if "
                   "interrupted (continue later with --resume)")
    p.add_argument("--device", help="cpu (default), cuda or auto; under torchrun each process "
                   "takes GPU LOCAL_RANK with NCCL, or CPUs with gloo")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when interactive)")
    for title, group in (("data", _DATA_FIELDS), ("model", _MODEL_FIELDS), ("training", _TRAIN_FIELDS)):
        g = p.add_argument_group(title)
        for name, (typ, text) in group.items():
            g.add_argument("--" + name.replace("_", "-"), type=typ, help=text)


def resolve(args: argparse.Namespace, kind: str) -> dict:
    """Defaults for ``kind`` < TOML (``--config``) < flags given on the command line."""
    from .cli import read_toml

    known = set(_TRAIN_FIELDS) | set(_MODEL_FIELDS) | set(_DATA_FIELDS) | {"device", "progress"}
    toml = read_toml(args.config) if args.config else {}
    unknown = sorted(set(toml) - known)
    if unknown:
        raise DataError(f"{args.config}: unknown option(s) {unknown}; valid ones are {sorted(known)}")
    flags = {k: v for k, v in vars(args).items() if k in known and v is not None}
    return {**DEFAULTS, **KIND_DEFAULTS[kind], **toml, **flags}


def _spec_overrides(opts: dict) -> dict:
    out = {k: opts.get(k) for k in ("hidden", "depth", "emb_dim", "base_channels")}
    if opts.get("channel_mults") is not None:
        cm = opts["channel_mults"]
        out["channel_mults"] = [int(c) for c in (cm.split(",") if isinstance(cm, str) else cm)]
    if opts.get("attention") is not None:
        out["attention"] = str(opts["attention"]).lower() in ("1", "true", "yes")
    return out


def _config(opts: dict, x: torch.Tensor, n_classes: int, base: dict | None) -> training.TrainConfig:
    fields = {k: opts[k] for k in _TRAIN_FIELDS if opts.get(k) is not None}
    if base is not None:  # fine-tuning keeps the preconditioning the network learned with
        for k in ("prediction", "sigma_data"):
            fields.setdefault(k, base[k])
    fields.setdefault("sigma_data", round(float(x.std()), 4))
    if fields.get("grad_clip") == 0:
        fields["grad_clip"] = None
    if n_classes:  # the null class ∅ is index K, after the K real classes
        fields.setdefault("label_dropout", 0.1)
        fields["null_label"] = n_classes
    elif fields.get("label_dropout"):
        raise DataError("--label-dropout needs labels (class sub-folders or --label-column)")
    fields["progress"] = opts.get("progress")
    return training.TrainConfig(**fields)


def load_run_data(meta: dict, path: str | None = None) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """Reload a run's data (same options, same normalisation), check its fingerprint, re-split it."""
    o = meta["data_options"]
    data = load_data(path or meta["data"]["source"], image_size=o["image_size"],
                     channels=o["channels"], label_column=o["label_column"], npz_key=o["npz_key"],
                     normalisation=meta["normalisation"] if meta["data"]["kind"] == "points" else None)
    if data.summary()["fingerprint"] != meta["data"]["fingerprint"]:
        raise DataError(f"{data.source} is not the data this run was trained on (fingerprints "
                        "differ); give the original data, or fine-tune with --init-from")
    train_idx, held_idx = split_heldout(len(data.x), meta["split"]["heldout"], meta["split"]["seed"])
    return data, train_idx, held_idx


def _prepare_new(args: argparse.Namespace) -> tuple[dict, Dataset, dict | None]:
    if args.data is None:
        raise DataError("give the data to train on (a file of points or a folder of images)")
    base = runs.read_run(args.init_from) if args.init_from else None
    norm = base["normalisation"] if base and base["data"]["kind"] == "points" else None
    probe = {k: getattr(args, k) for k in ("image_size", "channels", "label_column", "npz_key")}
    toml = {}
    if args.config:
        from .cli import read_toml
        toml = read_toml(args.config)
    data_opts = {k: probe[k] if probe[k] is not None else toml.get(k) for k in probe}
    data = load_data(args.data, normalisation=norm, **data_opts)
    opts = resolve(args, data.kind)
    if base is not None and list(data.x.shape[1:]) != base["data"]["shape"]:
        raise DataError(f"{args.data} has samples of shape {list(data.x.shape[1:])} but "
                        f"{args.init_from} was trained on {base['data']['shape']}; fine-tune on "
                        "data with the same columns / image size and channels")
    if base is not None and len(data.classes) != len(base["data"]["classes"]):
        raise DataError(f"{args.data} has {len(data.classes)} classes but {args.init_from} has "
                        f"{len(base['data']['classes'])}; fine-tune on data with the same classes")
    return {**opts, "data_options": data_opts}, data, base


def run(args: argparse.Namespace) -> int:
    """The ``train`` subcommand (under torchrun, in every process)."""
    out = pathlib.Path(args.out)
    if args.resume and args.init_from:
        raise DataError("--resume continues a run and --init-from starts a new one; use one")
    if args.resume:
        meta = runs.read_run(out)
        data, train_idx, _ = load_run_data(meta, args.data)
        opts = {**resolve(args, data.kind), "data_options": meta["data_options"]}
        saved = checkpoints.read_json(runs.checkpoint_path(out))["config"]
        config = training.TrainConfig(**{**saved, **{k: opts[k] for k in training.TrainConfig.RESUMABLE
                                                     if k in opts and k in vars(args) and
                                                     getattr(args, k) is not None}})
        spec, base = meta["model"], None
    else:
        opts, data, base = _prepare_new(args)
        if (out / (runs.CHECKPOINT + ".json")).exists():
            raise DataError(f"{out} already holds a run; pass --resume to continue it, or choose "
                            "another --out")
        train_idx, held_idx = split_heldout(len(data.x), opts["heldout"], opts["seed"])
        spec = base["model"] if base else runs.default_spec(
            data.kind, list(data.x.shape[1:]), len(data.classes), **_spec_overrides(opts))
        base_cfg = checkpoints.read_json(runs.checkpoint_path(args.init_from))["config"] if base else None
        config = _config(opts, data.x[train_idx], len(data.classes), base_cfg)
    net = runs.build_net(spec, seed=config.seed)
    parallel = distributed.from_environment(opts.get("device"))
    try:
        status = _train(args, opts, data, train_idx, spec, config, net, base, parallel)
    except BaseException:
        distributed.abort(parallel)
        raise
    distributed.shutdown(parallel)
    return status


def _cpu_s() -> float:
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _train(args, opts, data, train_idx, spec, config, net, base, parallel) -> int:
    out = pathlib.Path(args.out)
    main = parallel is None or parallel.is_main
    device = parallel.device if parallel else _device(opts.get("device"))
    runs.check_writable(out)  # before any training: fail now, not after an hour
    if args.init_from:
        tensors = checkpoints.read_tensors(runs.checkpoint_path(args.init_from))
        checkpoints.load_module(net, tensors, "ema.net.", runs.checkpoint_path(args.init_from))
    if main and not args.resume:
        runs.write_json(out / runs.RUN_FILE, {
            "format": runs.FORMAT, "model": spec, "data": data.summary(),
            "normalisation": data.normalisation, "data_options": opts["data_options"],
            "split": {"heldout": opts["heldout"], "seed": opts["seed"], "n_train": len(train_idx)},
            "init_from": str(pathlib.Path(args.init_from).resolve()) if args.init_from else None})
    if not main:
        config = training.TrainConfig(**{**config.to_dict(), "progress": False})
    x, y = data.x[train_idx], None if data.labels is None else data.labels[train_idx]
    t0, c0 = time.perf_counter(), _cpu_s()
    ckpt = runs.checkpoint_path(out)
    try:
        state = training.train(net.to(device), x, config, labels=y, resume=str(ckpt) if args.resume
                               else None, checkpoint=str(ckpt) if main else None,
                               until=args.stop_after, parallel=parallel)
    except BaseException:
        if main and not args.resume and not (out / (runs.CHECKPOINT + ".json")).exists():
            (out / runs.RUN_FILE).unlink(missing_ok=True)  # no checkpoint: leave no half run
        raise
    if main:
        loss = state.history["loss"][-50:]
        entry = {"event": "stopped" if state.step < config.steps else "finished", "step": state.step,
                 "steps": config.steps, "loss_last_50": sum(loss) / max(len(loss), 1),
                 "wall_s": round(time.perf_counter() - t0, 3), "cpu_s_this_process": round(_cpu_s() - c0, 3),
                 "world_size": parallel.world_size if parallel else 1,
                 "backend": parallel.backend if parallel else None, "device": str(device),
                 "resumed": bool(args.resume)}
        with open(out / "log.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
        print(f"{entry['event']} at step {state.step}/{config.steps}: loss {entry['loss_last_50']:.4f} "
              f"(mean of the last {len(loss)} steps), {entry['wall_s']:.1f} s on {entry['world_size']} "
              f"process(es); run folder {out}")
    return 0


def _device(name: str | None) -> torch.device:
    from .utils import get_device

    return get_device(None if name in (None, "auto") else name)
