"""The files of the train-once cache: where they live, how they are saved, verified, locked, loaded.

:func:`diffusion_lite.pretrained.pretrained` decides *what* to train; this module keeps its files
safe for a classroom. A file is written through :mod:`~diffusion_lite.checkpoints` (temporary
name, fsync, atomic rename), readable by every user, with the cache key and a SHA-256 of its
tensors in the header. A valid file loads without any lock, so a read-only folder an instructor
prepared works; only training takes the exclusive lock ``<file>.lock``, and a process that has to
wait for another's training says so. A file with the right key whose tensors do not fit the model
(its code changed without a ``FORMAT_VERSION`` bump) is retrained, or, in a read-only cache, the
error says how to get a fresh copy.

Notation: ``path`` the cached ``.safetensors`` file · ``key`` the hex SHA-256 naming it ·
``info`` the metadata stored with the weights.
"""

from __future__ import annotations

import contextlib
import fcntl  # POSIX, like resource below; the course targets Linux/macOS (Windows via WSL)
import json
import os
import pathlib
import resource
import sys
import warnings

from torch import nn

from . import checkpoints

__all__ = ["FORMAT_VERSION", "cache_dir", "save", "load", "try_load", "check_writable",
           "exclusive", "WrongArchitecture", "cpu_seconds"]

# Bump to retrain every cached model (the key covers config and data, not source code).
FORMAT_VERSION = "1"


def cache_dir() -> pathlib.Path:
    """The cache folder: ``$DIFFUSION_LITE_CACHE``, else ``$XDG_CACHE_HOME/diffusion-lite``, else ``~/.cache``."""
    env = os.environ.get("DIFFUSION_LITE_CACHE")
    if env:
        folder = pathlib.Path(env).expanduser()
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"DIFFUSION_LITE_CACHE={env!r} is a file, not a folder; point it at "
                             "a folder (created if missing), e.g. ~/.cache/diffusion-lite, or unset it")
        return folder
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "diffusion-lite"


def save(path: pathlib.Path, module: nn.Module, key: str, info: dict) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    meta = {"format": FORMAT_VERSION, "key": key, "sha256": checkpoints.tensor_digest(tensors),
            "info": json.dumps(info)}
    # Readable by every user (a class shares the cache), whatever the umask.
    umask = os.umask(0)
    os.umask(umask)
    checkpoints.write_file(path, tensors, meta, mode=(0o666 & ~umask) | 0o444)


class WrongArchitecture(Exception):
    """The cached file verifies but its tensors do not fit the model built from the config."""


def load(path: pathlib.Path, module: nn.Module, key: str) -> dict | None:
    """Load verified weights into ``module`` and return the stored info, or None if the file is bad.

    Raises :class:`WrongArchitecture` when the file is intact but does not fit ``module``.
    """
    try:
        tensors, meta = checkpoints.read_file(path)
    except ValueError as exc:
        warnings.warn(f"cached weights {path} are unreadable ({exc}); retraining", stacklevel=3)
        return None
    if meta.get("key") != key or meta.get("sha256") != checkpoints.tensor_digest(tensors):
        warnings.warn(f"cached weights {path} fail their checksum (truncated or modified); "
                      "retraining", stacklevel=3)
        return None
    problems = checkpoints.mismatches(module.state_dict(), tensors)
    if problems:
        raise WrongArchitecture("\n".join(problems[:5]))
    module.load_state_dict(tensors, strict=True)
    return json.loads(meta.get("info", "{}"))


def try_load(name: str, path: pathlib.Path, module: nn.Module, key: str, verbose: bool,
              quiet: bool = False) -> dict | None:
    """The stored info if ``path`` holds valid weights for ``module`` (loaded into it), else None."""
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():
            if quiet:  # the second look, under the lock: the first one already warned
                warnings.simplefilter("ignore")
            info = load(path, module, key)
    except WrongArchitecture as exc:
        if not os.access(path.parent, os.W_OK):
            raise ValueError(
                f"cached weights {path} have the right key but do not fit the {name!r} model built "
                f"from this config (its code changed?):\n{exc}\nThe cache is read-only: set "
                "DIFFUSION_LITE_CACHE to a writable folder and call pretrained(name, retrain=True), "
                "or ask whoever prepared the cache to delete the file and re-run it") from None
        warnings.warn(f"cached weights {path} have the right key but do not fit the {name!r} model "
                      f"(its code changed without a FORMAT_VERSION bump?); retraining", stacklevel=3)
        return None
    if info is not None and verbose:
        print(f"loaded {name} from {path}")
    return info


def check_writable(name: str, path: pathlib.Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the model cache {folder} ({exc.strerror}); set "
                         "DIFFUSION_LITE_CACHE to a writable folder") from exc
    if not os.access(folder, os.W_OK):
        raise ValueError(f"the model cache {folder} is read-only and holds no valid {name!r} "
                         f"({path.name}); set DIFFUSION_LITE_CACHE to a writable folder (it trains "
                         f"there once), or ask whoever prepared the cache to run "
                         f"pretrained({name!r}) there")


@contextlib.contextmanager
def exclusive(path: pathlib.Path, name: str = "", verbose: bool = True):
    """Hold an advisory POSIX lock on ``<path>.lock`` while the cache entry is checked or written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if verbose:
                print(f"waiting for another process that is training {name or path.name} "
                      f"(it holds {lock_path}); this one loads its result", file=sys.stderr,
                      flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
