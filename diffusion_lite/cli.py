"""The ``diffusion-lite`` command line: the practitioner's workflow on your own data.

    diffusion-lite train DATA --out RUN      # points (.csv/.npy/.npz) or a folder of images
    diffusion-lite sample RUN --n 64 --out samples.npy [--png grid.png]
    diffusion-lite evaluate RUN              # chapter 8's metrics beside their noise floors
    diffusion-lite export RUN --out MODEL    # safetensors + model card + checked TorchScript
    diffusion-lite info RUN|MODEL            # what a run or an exported model holds
    diffusion-lite cache [--check]           # warm the course's model cache (make cache)
    torchrun --nproc_per_node=2 -m diffusion_lite train DATA --out RUN   # data-parallel

Each subcommand is one entry of :data:`COMMANDS`, added with :func:`register` (a name, a help
line, a function that adds its arguments, a function that runs it): a new subcommand is a few
lines. ``train`` reads options from flags and from a TOML file (``--config``); flags win. Errors in
the input end the command with exit status 2 and a message that names the fix; nothing half
written is left behind. Training itself is :func:`diffusion_lite.training.train`.

Notation: ``RUN`` a run folder (see :mod:`diffusion_lite.runs`) · ``opts`` the resolved options.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pathlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["main", "register", "COMMANDS", "Command", "read_toml", "build_parser"]


@dataclass(frozen=True)
class Command:
    name: str                                               # the subcommand, e.g. "train"
    help: str                                               # one line for `diffusion-lite --help`
    configure: Callable[[argparse.ArgumentParser], None]    # adds the subcommand's arguments
    run: Callable[[argparse.Namespace], int]                # does the work, returns an exit status


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int]) -> None:
    """Add (or replace) the subcommand ``name``."""
    COMMANDS[name] = Command(name, help, configure, run)


# ---------------------------------------------------------------------------------------- TOML
# A quoted string, or one of the tokens the fallback rewrites (true/false, a comment).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|\btrue\b|\bfalse\b|#.*$')


def _toml_value(text: str, where: str):
    def swap(m: re.Match) -> str:
        tok = m.group(0)
        return {"true": "True", "false": "False"}.get(tok, "" if tok.startswith("#") else tok)

    text = _TOKENS.sub(swap, text).strip()  # Python literals, comments (outside strings) dropped
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"{where}: cannot read value {text!r}; use a number, \"string\", "
                         "true/false or [a, list]") from exc


def _toml_fallback(text: str, name: str) -> dict:
    """The subset of TOML the options need ([tables] of key = value), for Python 3.10."""
    out: dict = {}
    table = out
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            table = out.setdefault(line.split("#")[0].strip()[1:-1].strip(), {})
        elif "=" in line:
            key, value = line.split("=", 1)
            table[key.strip().strip('"')] = _toml_value(value, f"{name}:{i}")
        else:
            raise ValueError(f"{name}:{i}: expected `key = value` or `[table]`, got {line!r}")
    return out


def read_toml(path: str | os.PathLike) -> dict:
    """A TOML file as a flat dict of options (tables are merged; a key may appear once)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"no config file {path}; give the path of a .toml file")
    text = path.read_text()
    try:
        import tomllib  # Python >= 3.11
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path} is not valid TOML: {exc}") from exc
    except ModuleNotFoundError:
        raw = _toml_fallback(text, str(path))
    flat: dict = {}
    for key, value in raw.items():
        for k, v in (value.items() if isinstance(value, dict) else [(key, value)]):
            k = k.replace("-", "_")
            if k in flat:
                raise ValueError(f"{path}: option {k!r} is given twice")
            flat[k] = v
    return flat


# ----------------------------------------------------------------------------------- commands
def _train_args(p: argparse.ArgumentParser) -> None:
    from . import cli_train

    cli_train.add_arguments(p)


def _train(args: argparse.Namespace) -> int:
    from . import cli_train

    return cli_train.run(args)


def _sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder written by `diffusion-lite train`")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", required=True, help="the .npy file to write (points: (N, d) in the "
                   "data's units; images: (N, H, W, C) uint8)")
    p.add_argument("--png", help="also write a PNG: an image grid, or a scatter of two columns")
    _sampling_args(p)
    p.add_argument("--class", dest="class_name", help="class to draw (conditional models; "
                   "default: every class in turn)")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale w "
                   "(1: plain conditional; > 1 sharper, less diverse)")


def _sampling_args(p: argparse.ArgumentParser) -> None:
    from .samplers import SAMPLERS

    p.add_argument("--sampler", default="heun", choices=sorted(SAMPLERS), help="default heun")
    p.add_argument("--steps", type=int, default=32, help="steps on the σ ladder (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise (default 0)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")


def _device(name: str):
    from .utils import get_device

    return get_device(None if name == "auto" else name)


def _sample(args: argparse.Namespace) -> int:
    import numpy as np

    from . import runs

    out = pathlib.Path(args.out)
    if out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {out.name}")
    runs.check_writable(out.parent)
    den, meta = runs.load_denoiser(args.run, device=_device(args.device))
    x = runs.sample(den, meta, args.n, sampler=args.sampler, steps=args.steps, seed=args.seed,
                    class_name=args.class_name, guidance=args.guidance)
    raw = runs.postprocess(x, meta["normalisation"]).cpu()
    arr = raw.numpy().astype(np.float64) if meta["data"]["kind"] == "points" else \
        raw.permute(0, 2, 3, 1).numpy().astype(np.uint8)  # (N, H, W, C)
    tmp = out.with_name(out.name + ".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, out)
    if args.png:
        from . import cli_output

        cli_output.save_png(arr, meta, args.png)
    print(f"wrote {len(arr)} samples {arr.shape[1:]} to {out}" + (f" and {args.png}" if args.png else ""))
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder written by `diffusion-lite train`")
    p.add_argument("--data", help="the data the run was trained on (default: the path in run.json)")
    p.add_argument("--n-boot", type=int, default=20, help="bootstrap resamples (default 20)")
    p.add_argument("--out", help="folder for evaluation.json and evaluation.md (default: the run)")
    _sampling_args(p)


def _evaluate(args: argparse.Namespace) -> int:
    from . import evaluation, runs
    from .cli_train import load_run_data

    out = runs.check_writable(args.out or args.run)
    den, meta = runs.load_denoiser(args.run, device=_device(args.device))
    data, train_idx, held_idx = load_run_data(meta, args.data)
    def generate(m):
        return runs.sample(den, meta, m, sampler=args.sampler, steps=args.steps, seed=args.seed).cpu()

    report = evaluation.evaluate(data.x[train_idx], data.x[held_idx], generate, n_boot=args.n_boot,
                                 seed=args.seed)
    report["sampler"] = {"name": args.sampler, "steps": args.steps, "seed": args.seed}
    report["run"] = {"folder": str(pathlib.Path(args.run).resolve()), "step": meta["step"]}
    md = evaluation.to_markdown(report, f"Evaluation of {pathlib.Path(args.run).name} at step {meta['step']}")
    runs.write_json(out / "evaluation.json", report)
    (out / "evaluation.md.tmp").write_text(md)
    os.replace(out / "evaluation.md.tmp", out / "evaluation.md")
    print(md)
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder written by `diffusion-lite train`")
    p.add_argument("--out", required=True, help="folder for model.safetensors, model.json (the "
                   "model card) and denoiser.torchscript")
    p.add_argument("--evaluation", help="the evaluation.json for the model card (default: the "
                   "run's own, written by `evaluate`)")
    p.add_argument("--atol", type=float, default=1e-5, help="largest accepted difference between "
                   "the exported and the original denoiser (default 1e-5)")


def _export(args: argparse.Namespace) -> int:
    from . import export

    card = export.export(args.run, args.out, atol=args.atol, evaluation=args.evaluation)
    print(f"exported to {args.out}: model.safetensors, model.json (model card), "
          f"{export.TORCHSCRIPT} (reloaded: max |difference| {card['torchscript']['max_abs_diff']:.2g})")
    return 0


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="a run folder, an exported model folder, or a checkpoint")
    p.add_argument("--json", action="store_true", help="print the whole description as JSON")


def _info(args: argparse.Namespace) -> int:
    from . import cli_output

    desc = cli_output.describe(args.path)
    print(json.dumps(desc, indent=1) if args.json else cli_output.describe_text(desc))
    return 0


register("train", "train a denoiser on points or images (DDP under torchrun)", _train_args, _train)
register("sample", "draw samples from a trained run", _sample_args, _sample)
register("evaluate", "compare samples with held-out data; each metric with its noise floor",
         _evaluate_args, _evaluate)
register("export", "write weights, a model card and a checked TorchScript denoiser", _export_args,
         _export)
register("info", "describe a run, an exported model or a checkpoint", _info_args, _info)


def _cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=2, help="processes training at once (default 2)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the course's models and exit")
    what.add_argument("--check", action="store_true",
                      help="exit with status 1 if a model is missing (trains nothing)")


def _cache(args: argparse.Namespace) -> int:
    from . import warmup

    argv = ["--jobs", str(args.jobs)] + (["--list"] if args.list else []) + \
        (["--check"] if args.check else [])
    return warmup.main(argv)


register("cache", "train every model the course's notebooks load, once (a class's shared cache)",
         _cache_args, _cache)


# --------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffusion-lite", description="Train, sample, evaluate and export diffusion models "
        "on your own data (the diffusion-lite course, chapter 16).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for c in COMMANDS.values():
        p = sub.add_parser(c.name, help=c.help, description=c.help)
        c.configure(p)
        p.set_defaults(_run=c.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except KeyboardInterrupt:
        print(f"diffusion-lite {args.command}: interrupted. A training run keeps its last checkpoint "
              "(see --checkpoint-every); continue it with `diffusion-lite train --out RUN --resume`",
              file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # DataError is a ValueError
        print(f"diffusion-lite {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
