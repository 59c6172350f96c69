"""Reading and writing checkpoints safely: safetensors only, one atomic file, a checksum inside.

A checkpoint ``run`` is one file, ``run.safetensors``: the named tensors, and in its header the
metadata (step, config, ...) as JSON plus a SHA-256 of every tensor. The file is written to a
temporary name, flushed to disk and renamed over the old one (``os.replace`` is atomic), so a
process killed at *any* instant leaves either the previous checkpoint or the new one, never a mix.
A readable copy of the metadata is written next to it as ``run.json`` for people; loading trusts
the header (a ``.json`` that is stale because a kill fell between the two renames is harmless, a
malformed one is reported). Nothing is ever unpickled: a pickle or ``torch.save`` file is refused
with an error naming safetensors. Checkpoints written before the header held the metadata (a
``.json`` and a header with only ``step``) still load.

The same two primitives, :func:`write_file` and :func:`read_file`, serve the model cache of
:mod:`~diffusion_lite.pretrained`.

Notation: ``path`` the checkpoint's stem (``run`` or ``run.safetensors``) · ``tensors`` a dict
name → tensor · ``meta`` the JSON dict · ``prefix`` the part of a name before the parameter name.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import nn

__all__ = ["paths", "write", "read", "read_json", "read_tensors", "load_module", "write_file",
           "read_file", "tensor_digest", "check_writable", "mismatches"]

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")
FORMAT = "diffusion-lite-checkpoint/2"  # header key "format": metadata and checksum in the header


def paths(path: str | os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
    """(``stem.safetensors``, ``stem.json``) for a checkpoint path given with or without suffix."""
    p = pathlib.Path(path)
    if p.suffix in PICKLE_SUFFIXES:
        raise ValueError(f"{p} looks like a pickle/torch.save file; diffusion_lite never unpickles "
                         "(it can run arbitrary code). Save and load checkpoints as safetensors "
                         "(training.save_checkpoint / safetensors.torch.save_file).")
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes (in name order)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(target: pathlib.Path, blob: bytes, mode: int | None, sync: bool = True) -> None:
    """Write ``blob`` to a unique temporary file, fsync it (``sync``), then rename it over ``target``.

    The rename alone survives a killed process; the fsync also survives a power cut.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)
        os.replace(tmp, target)  # atomic: readers see the old file or the whole new one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_file(file: str | os.PathLike, tensors: dict[str, torch.Tensor],
               metadata: dict[str, str], *, mode: int | None = None) -> None:
    """Atomically write one safetensors file with string ``metadata`` in its header.

    ``mode`` sets the permission bits (default: what the umask gives, e.g. 0o644).
    """
    file = pathlib.Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    _atomic_write(file, save(tensors, metadata=metadata), mode)


def read_file(file: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of one safetensors file; refuses pickles, reports corruption."""
    file = pathlib.Path(file)
    try:
        blob = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {file} ({exc})") from exc
    _refuse_pickle(file, blob[:9])
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])
        tensors = load(blob)
    except (SafetensorError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise ValueError(f"checkpoint {file} is corrupted or truncated ({exc}); resume from an "
                         "earlier checkpoint or re-train") from exc
    metadata = header.get("__metadata__") or {} if isinstance(header, dict) else {}
    return tensors, metadata


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, not after hours of training, if checkpoint ``path`` cannot be written."""
    st, _ = paths(path)
    try:
        st.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=st.parent, prefix=".write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ValueError(f"cannot write checkpoints to {st.parent} ({exc.strerror}); choose a "
                         "writable folder, e.g. checkpoint='runs/my_run'") from exc


def write(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Atomically write checkpoint ``path``: tensors, ``meta`` and a checksum in one file.

    ``meta`` must be JSON-serialisable and hold an integer ``"step"``. A readable copy of ``meta``
    goes to ``path.json`` afterwards (informational; loading reads the header).
    """
    st, js = paths(path)
    _check_meta(meta, st)
    text = json.dumps(meta, indent=1)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    write_file(st, tensors, {"format": FORMAT, "step": str(meta["step"]), "meta": text,
                             "sha256": tensor_digest(tensors)})
    _atomic_write(js, text.encode(), None, sync=False)  # a readable copy: no need to wait for it


def _check_meta(meta: object, where: pathlib.Path) -> dict:
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint metadata of {where} is malformed: expected a JSON object, got "
                         f"{type(meta).__name__}; resume from another checkpoint or re-train")
    step = meta.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"checkpoint metadata of {where} is malformed: 'step' must be an integer "
                         f">= 0, got {step!r}; resume from another checkpoint or re-train")
    return meta


def _refuse_pickle(file: pathlib.Path, head: bytes) -> None:
    if head[8:9] == b"{":  # safetensors: an 8-byte header length, then the JSON header
        return
    if head[:1] == b"\x80" or head[:4] == b"PK\x03\x04":  # pickle protocol 2+ / torch.save zip
        raise ValueError(f"{file} is a pickle/torch.save file, not safetensors; diffusion_lite "
                         "never unpickles (it can run arbitrary code). Convert it once in a trusted "
                         "session with safetensors.torch.save_file, or re-train.")


def _parse_json(text: str, where: pathlib.Path) -> dict:
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"checkpoint {where} is corrupted (not valid JSON: {exc}); resume from an "
                         "earlier checkpoint or re-train") from exc
    return _check_meta(meta, where)


def read(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of checkpoint ``path``, verified against its checksum."""
    st, js = paths(path)
    if not st.exists():
        raise ValueError(f"no checkpoint at {st}" + (f" (only {js.name})" if js.exists() else ""))
    tensors, header = read_file(st)
    if header.get("format") == FORMAT:
        meta = _parse_json(header.get("meta", ""), st)
        if header.get("sha256") != tensor_digest(tensors):
            raise ValueError(f"checkpoint {st} is corrupted: its tensors fail their SHA-256 "
                             "checksum (a damaged copy?); resume from another checkpoint or re-train")
        if js.exists():  # the readable copy: stale after a kill is fine, malformed is reported
            try:
                _parse_json(_read_text(js), js)
            except ValueError as exc:
                raise ValueError(f"{exc} (it is only a readable copy: deleting {js.name} loads "
                                 f"the metadata from {st.name}'s header)") from None
        return tensors, meta
    # A checkpoint from before format 2: metadata in the .json, the step also in the header.
    if not js.exists():
        raise ValueError(f"no checkpoint metadata for {st}: expected {js.name} next to it "
                         "(an older checkpoint) or metadata in the header; re-train")
    meta = _parse_json(_read_text(js), js)
    if header.get("step") not in (None, "", str(meta["step"])):
        raise ValueError(f"checkpoint {st} holds step {header.get('step')} but its .json says "
                         f"{meta['step']}: the pair is inconsistent (an interrupted copy?); use a "
                         "matching pair")
    return tensors, meta


def _read_text(file: pathlib.Path) -> str:
    try:
        return file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"checkpoint {file} is corrupted or unreadable ({exc})") from exc


def read_json(path: str | os.PathLike) -> dict:
    """The metadata of checkpoint ``path`` (from the header; an older checkpoint's ``.json``)."""
    return read(path)[1]


def read_tensors(path: str | os.PathLike, step: int | None = None) -> dict[str, torch.Tensor]:
    """The tensors of ``path`` (checksum verified when the file has one); refuses pickles.

    Works for any safetensors file; ``step``, if given, must match the step the file records.
    """
    st, _ = paths(path)
    if not st.exists():
        raise ValueError(f"no checkpoint tensors at {st}")
    if step is not None:
        tensors, meta = read(path)
        if meta["step"] != step:
            raise ValueError(f"checkpoint {st} holds step {meta['step']}, not {step}: the pair is "
                             "inconsistent (an interrupted copy?); use a matching pair")
        return tensors
    tensors, header = read_file(st)
    if "sha256" in header and header["sha256"] != tensor_digest(tensors):
        raise ValueError(f"{st} is corrupted: its tensors fail their SHA-256 checksum; resume "
                         "from another checkpoint or re-train")
    return tensors


def load_module(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str,
                path: str | os.PathLike = "checkpoint") -> None:
    """Load ``prefix``-named tensors into ``module``, naming every missing, extra or misshaped one."""
    own = module.state_dict()
    got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    problems = mismatches(own, got, prefix)
    if problems:
        raise ValueError(f"checkpoint {path} does not fit this network:\n" + "\n".join(problems)
                         + "\nBuild the network with the sizes it was saved with (see the .json).")
    module.load_state_dict(got)


def mismatches(own: dict[str, torch.Tensor], got: dict[str, torch.Tensor],
               prefix: str = "") -> list[str]:
    """One line per parameter that is missing, extra or of another shape (empty: they fit)."""
    problems = [f"  {prefix}{k}: checkpoint {tuple(got[k].shape)} vs model {tuple(v.shape)}"
                for k, v in own.items() if k in got and got[k].shape != v.shape]
    problems += [f"  {prefix}{k}: missing from the checkpoint" for k in own if k not in got]
    problems += [f"  {prefix}{k}: in the checkpoint but not in the model" for k in got if k not in own]
    return problems
