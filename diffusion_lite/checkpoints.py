"""Reading and writing checkpoints safely: safetensors for tensors, JSON for everything else.

A checkpoint ``run`` is two files, ``run.safetensors`` (named tensors) and ``run.json`` (a small
dict: step, config, ...). Nothing is ever unpickled: a pickle or ``torch.save`` file is refused
with an error naming safetensors. Writes are atomic (write a temporary file, then rename), so an
interrupted save leaves the previous checkpoint intact.

Notation: ``path`` the checkpoint's stem (``run`` or ``run.safetensors``) · ``tensors`` a dict
name → tensor · ``meta`` the JSON dict · ``prefix`` the part of a name before the parameter name.
"""

from __future__ import annotations

import json
import os
import pathlib

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["paths", "write", "read_json", "read_tensors", "load_module"]

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def paths(path: str | os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
    """(``stem.safetensors``, ``stem.json``) for a checkpoint path given with or without suffix."""
    p = pathlib.Path(path)
    if p.suffix in PICKLE_SUFFIXES:
        raise ValueError(f"{p} looks like a pickle/torch.save file; diffusion_lite never unpickles "
                         "(it can run arbitrary code). Save and load checkpoints as safetensors "
                         "(training.save_checkpoint / safetensors.torch.save_file).")
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def write(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Atomically write ``tensors`` (safetensors) and ``meta`` (JSON) for checkpoint ``path``."""
    st, js = paths(path)
    st.parent.mkdir(parents=True, exist_ok=True)
    step = str(meta.get("step", ""))
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(tensors, str(st) + ".tmp", metadata={"step": step})
    js.with_name(js.name + ".tmp").write_text(json.dumps(meta, indent=1))
    os.replace(str(st) + ".tmp", st)
    os.replace(js.with_name(js.name + ".tmp"), js)


def _refuse_pickle(file: pathlib.Path) -> None:
    head = file.read_bytes()[:9]
    if head[8:9] == b"{":  # safetensors: an 8-byte header length, then the JSON header
        return
    if head[:1] == b"\x80" or head[:4] == b"PK\x03\x04":  # pickle protocol 2+ / torch.save zip
        raise ValueError(f"{file} is a pickle/torch.save file, not safetensors; diffusion_lite "
                         "never unpickles (it can run arbitrary code). Convert it once in a trusted "
                         "session with safetensors.torch.save_file, or re-train.")


def read_json(path: str | os.PathLike) -> dict:
    """The JSON half of a checkpoint, with a clear error if it is missing or corrupted."""
    st, js = paths(path)
    if not js.exists():
        raise ValueError(f"no checkpoint at {js} (expected {st.name} and {js.name} side by side)")
    try:
        meta = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"checkpoint {js} is corrupted (not valid JSON: {exc}); resume from an "
                         "earlier checkpoint or re-train") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint {js} is corrupted: expected a JSON object")
    return meta


def read_tensors(path: str | os.PathLike, step: int | None = None) -> dict[str, torch.Tensor]:
    """The safetensors half; refuses pickles, reports corruption and a step mismatch with the JSON."""
    st, _ = paths(path)
    if not st.exists():
        raise ValueError(f"no checkpoint tensors at {st}")
    _refuse_pickle(st)
    try:
        tensors = load_file(str(st))
        with safe_open(str(st), framework="pt") as f:
            saved_step = (f.metadata() or {}).get("step")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"checkpoint {st} is corrupted or truncated ({exc}); resume from an "
                         "earlier checkpoint or re-train") from exc
    if step is not None and saved_step not in (None, "", str(step)):
        raise ValueError(f"checkpoint {st} holds step {saved_step} but its .json says {step}: the "
                         "pair is inconsistent (an interrupted copy?); use a matching pair")
    return tensors


def load_module(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str,
                path: str | os.PathLike = "checkpoint") -> None:
    """Load ``prefix``-named tensors into ``module``, naming every missing, extra or misshaped one."""
    own = module.state_dict()
    got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    problems = [f"  {prefix}{k}: checkpoint {tuple(got[k].shape)} vs model {tuple(v.shape)}"
                for k, v in own.items() if k in got and got[k].shape != v.shape]
    problems += [f"  {prefix}{k}: missing from the checkpoint" for k in own if k not in got]
    problems += [f"  {prefix}{k}: in the checkpoint but not in the model" for k in got if k not in own]
    if problems:
        raise ValueError(f"checkpoint {path} does not fit this network:\n" + "\n".join(problems)
                         + "\nBuild the network with the sizes it was saved with (see the .json).")
    module.load_state_dict(got)
