"""Your own data in, checked: points from CSV/NPY/NPZ files and folders of PNG/JPEG images.

Step 1 of the workflow ("gather and prepare data"). Every loader returns a :class:`Dataset` whose
``x`` is ready to train on, plus the numbers needed to undo the preparation after sampling:

- points ``(N, d)`` are standardised per column, x = (raw − μ)/s, so every coordinate has unit
  scale (σ_d = 1) whatever its units; sampling maps back with raw = μ + s·x;
- images ``(N, C, H, W)`` are scaled from pixel values in [0, 255] to [−1, 1], x = 2·p/255 − 1,
  grey-scale (C = 1) or RGB (C = 3), optionally resized to ``size × size``.

A sub-folder per class (``cats/``, ``dogs/``) gives class labels; a CSV column or an NPZ key can
hold labels for points. Bad input raises :class:`DataError` with the fix in the message: an empty
or missing folder, mixed image sizes without ``size``, a file that is not an image, NaN/inf
values, a ragged CSV. Images are read with Pillow (already installed with matplotlib).

Notation (code → symbol): ``x`` x₀ the prepared data · ``mean``/``scale`` μ, s per column ·
``labels`` y class indices 0..K−1 · ``classes`` the K class names · ``fingerprint`` a SHA-256 of
the prepared tensor (a resumed run checks it sees the same data).
"""

from __future__ import annotations

import csv
import hashlib
import pathlib
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["DataError", "Dataset", "load_data", "load_points", "load_images", "split_heldout",
           "fingerprint", "IMAGE_SUFFIXES", "POINT_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
POINT_SUFFIXES = (".csv", ".npy", ".npz")


class DataError(ValueError):
    """The data cannot be used as given; the message says what to change."""


@dataclass
class Dataset:
    x: torch.Tensor                     # prepared data: (N, d) standardised or (N, C, H, W) in [-1, 1]
    kind: str                           # "points" or "images"
    source: str                         # the file or folder it came from
    labels: torch.Tensor | None = None  # (N,) int64 class indices, or None (unconditional)
    classes: list[str] = field(default_factory=list)  # class names, index = label
    normalisation: dict = field(default_factory=dict)  # how to map samples back to raw units

    def summary(self) -> dict:
        """A JSON-able description for run folders and model cards."""
        out = {"kind": self.kind, "source": self.source, "n": int(self.x.shape[0]),
               "shape": list(self.x.shape[1:]), "fingerprint": fingerprint(self.x, self.labels),
               "std": float(self.x.std()), "classes": list(self.classes)}
        if self.kind == "images":
            out["channels"], out["image_size"] = int(self.x.shape[1]), list(self.x.shape[2:])
        return out


def fingerprint(x: torch.Tensor, labels: torch.Tensor | None = None) -> str:
    """SHA-256 of the prepared data (and labels): equal data, equal fingerprint."""
    h = hashlib.sha256(str(tuple(x.shape)).encode())
    h.update(x.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    if labels is not None:
        h.update(labels.cpu().numpy().astype(np.int64).tobytes())
    return h.hexdigest()


def _check_finite(a: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0] if a.ndim == 2 else (int(np.argwhere(bad)[0][0]), 0)
        raise DataError(f"{where} holds {int(bad.sum())} NaN/inf value(s), the first in row {r}, "
                        f"column {c}; remove or impute those rows before training")


def _read_csv(path: pathlib.Path) -> tuple[list[str], np.ndarray | list]:
    """Header (or generated names) and the rows as strings."""
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path} is empty; give a CSV with one sample per row")
    try:
        [float(c) for c in rows[0]]
        header = [f"x{i}" for i in range(len(rows[0]))]
    except ValueError:
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    for i, r in enumerate(rows):
        if len(r) != len(header):
            raise DataError(f"{path}: row {i + 1} has {len(r)} values but the header has "
                            f"{len(header)}; every row needs the same number of columns")
    return header, rows


def _labels_from(values, where: str) -> tuple[torch.Tensor, list[str]]:
    names = sorted({str(v) for v in values}, key=lambda s: (len(s), s))
    index = {n: i for i, n in enumerate(names)}
    if len(names) < 2:
        raise DataError(f"{where} holds a single class; drop the label option to train unconditionally")
    return torch.tensor([index[str(v)] for v in values], dtype=torch.int64), names


def load_points(path: str | pathlib.Path, *, label_column: str | None = None,
                key: str | None = None, normalisation: dict | None = None) -> Dataset:
    """Points ``(N, d)`` from a CSV (header optional), an ``.npy`` array or an ``.npz`` archive.

    ``label_column`` names a CSV column (or NPZ key) of class labels; ``key`` picks the array in
    an NPZ with several. ``normalisation`` reuses another run's μ and s (fine-tuning); by default
    x = (raw − μ)/s with the column means and standard deviations of this file.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"no file {path}; give the path of a .csv, .npy or .npz file")
    labels, classes, suffix = None, [], path.suffix.lower()
    if suffix == ".csv":
        header, rows = _read_csv(path)
        if label_column is not None:
            if label_column not in header:
                raise DataError(f"{path} has no column {label_column!r}; columns are {header}")
            j = header.index(label_column)
            labels, classes = _labels_from([r[j] for r in rows], f"column {label_column!r}")
            rows = [r[:j] + r[j + 1:] for r in rows]
            header = header[:j] + header[j + 1:]
        try:
            raw = np.array([[float(c) for c in r] for r in rows], dtype=np.float64).reshape(len(rows), -1)
        except ValueError as exc:
            raise DataError(f"{path} holds a value that is not a number ({exc}); keep only numeric "
                            "columns, or name the class column with --label-column") from exc
    elif suffix in (".npy", ".npz"):
        try:
            arrays = np.load(path, allow_pickle=False)  # never unpickle user files
        except ValueError as exc:
            raise DataError(f"{path} needs pickle to load (an object array); save plain numeric "
                            "arrays (np.save(path, x.astype(float)))") from exc
        if suffix == ".npz":
            names = list(arrays.files)
            data_keys = [k for k in names if k != label_column]
            if key is None and len(data_keys) != 1:
                raise DataError(f"{path} holds arrays {names}; choose one with --npz-key")
            k = key or data_keys[0]
            if k not in names:
                raise DataError(f"{path} has no array {k!r}; it holds {names}")
            if label_column is not None:
                if label_column not in names:
                    raise DataError(f"{path} has no label array {label_column!r}; it holds {names}")
                labels, classes = _labels_from(arrays[label_column].tolist(), f"{path}[{label_column!r}]")
            arrays = arrays[k]
        raw = np.asarray(arrays)
        if not np.issubdtype(raw.dtype, np.number):
            raise DataError(f"{path} holds {raw.dtype} values; save a numeric array")
        raw = raw.astype(np.float64)
        if raw.ndim == 1:
            raw = raw[:, None]
        if raw.ndim != 2:
            raise DataError(f"{path} holds an array of shape {raw.shape}; points must be (N, d) "
                            "(one sample per row). For images, use a folder of PNG/JPEG files")
    else:
        raise DataError(f"{path} is not a .csv, .npy or .npz file; give points in one of those "
                        "or a folder of PNG/JPEG images")
    _check_finite(raw, str(path))
    if labels is not None and len(labels) != len(raw):
        raise DataError(f"{path}: {len(labels)} labels for {len(raw)} samples; give one label per row")
    if len(raw) < 4:
        raise DataError(f"{path} holds {len(raw)} samples; training needs at least 4 (better: hundreds)")
    if normalisation is None:
        mean, scale = raw.mean(0), raw.std(0)
        if np.any(scale == 0):
            raise DataError(f"{path}: column(s) {np.flatnonzero(scale == 0).tolist()} are constant; "
                            "drop them (they carry no information to learn)")
        normalisation = {"kind": "standardise", "mean": mean.tolist(), "scale": scale.tolist()}
    mean, scale = np.asarray(normalisation["mean"]), np.asarray(normalisation["scale"])
    if mean.shape != (raw.shape[1],):
        raise DataError(f"{path} has {raw.shape[1]} columns but the normalisation (from the "
                        f"checkpoint) has {mean.shape[0]}; use data with the same columns")
    x = torch.as_tensor((raw - mean) / scale, dtype=torch.float32)
    return Dataset(x, "points", str(path.resolve()), labels, classes, normalisation)


def _image_files(folder: pathlib.Path) -> tuple[list[pathlib.Path], list[int], list[str]]:
    """Image files and their class index: one sub-folder per class, or images directly inside."""
    if not folder.is_dir():
        raise DataError(f"no folder {folder}; give a folder of PNG/JPEG images (or a CSV/NPY/NPZ file)")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    subdirs = [p for p in entries if p.is_dir()]
    if subdirs and len(subdirs) != len(entries):
        loose = [p.name for p in entries if not p.is_dir()][:3]
        raise DataError(f"{folder} mixes class sub-folders with loose files {loose}; put every "
                        "image in a class folder, or remove the sub-folders")
    groups = [(d, d.name) for d in subdirs] if subdirs else [(folder, None)]
    files, labels, classes = [], [], []
    for d, name in groups:
        inside = sorted(p for p in d.iterdir() if not p.name.startswith("."))
        if name is not None:
            classes.append(name)
        for p in inside:
            if p.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"{p} is not a PNG/JPEG image; move it out of {d} "
                                f"(accepted: {', '.join(IMAGE_SUFFIXES)})")
            files.append(p)
            labels.append(len(classes) - 1)
    if not files:
        raise DataError(f"{folder} holds no images; put PNG/JPEG files in it")
    if subdirs and len(subdirs) < 2:
        raise DataError(f"{folder} has a single class folder {subdirs[0].name!r}; put the images "
                        "directly in the folder for an unconditional model")
    return files, labels, classes


def load_images(folder: str | pathlib.Path, *, size: int | None = None,
                channels: int | None = None) -> Dataset:
    """Images ``(N, C, H, W)`` in [−1, 1] from a folder of PNG/JPEG files (x = 2p/255 − 1).

    ``size`` resizes every image to ``size × size`` (bilinear); without it all images must share
    one size. ``channels``: 1 (grey) or 3 (RGB); by default 3 if any image is in colour.
    """
    from PIL import Image, UnidentifiedImageError

    folder = pathlib.Path(folder)
    files, labels, classes = _image_files(folder)
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if size is not None and size < 4:
        raise DataError(f"image size must be at least 4 pixels, got {size}")
    images = []
    for p in files:
        try:
            with Image.open(p) as im:
                im.load()
                images.append(im.copy())
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{p} is not a readable image ({exc}); remove or replace it") from exc
    if channels is None:
        channels = 3 if any(im.mode not in ("L", "LA", "1", "I", "I;16", "F") for im in images) else 1
    sizes = sorted({im.size for im in images})
    if size is None and len(sizes) > 1:
        raise DataError(f"images in {folder} have {len(sizes)} different sizes (e.g. "
                        f"{sizes[0][0]}×{sizes[0][1]} and {sizes[-1][0]}×{sizes[-1][1]}); "
                        "pass --image-size N to resize them all to N×N")
    arrays = []
    for im in images:
        im = im.convert("RGB" if channels == 3 else "L")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        a = np.asarray(im, dtype=np.float32)
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))  # (C, H, W)
    x = torch.as_tensor(np.stack(arrays)) / 127.5 - 1.0  # (N, C, H, W) in [-1, 1]
    y = torch.tensor(labels, dtype=torch.int64) if classes else None
    return Dataset(x, "images", str(folder.resolve()), y, classes,
                   {"kind": "pixels", "low": 0.0, "high": 255.0})


def load_data(path: str | pathlib.Path, *, image_size: int | None = None,
              channels: int | None = None, label_column: str | None = None,
              npz_key: str | None = None, normalisation: dict | None = None) -> Dataset:
    """A folder → :func:`load_images`; a .csv/.npy/.npz file → :func:`load_points`."""
    path = pathlib.Path(path)
    if path.is_dir():
        return load_images(path, size=image_size, channels=channels)
    if not path.exists():
        raise DataError(f"no file or folder {path}; give a folder of PNG/JPEG images or a "
                        ".csv/.npy/.npz file of points")
    return load_points(path, label_column=label_column, key=npz_key, normalisation=normalisation)


def split_heldout(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, held-out) of a random split; the held-out part is never trained on."""
    if not 0 <= fraction < 1:
        raise DataError(f"held-out fraction must be in [0, 1), got {fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(round(n * fraction))
    if fraction > 0 and (k < 4 or n - k < 4):
        raise DataError(f"{n} samples are too few to hold out {fraction:.0%} (need 4 on each side); "
                        "gather more data or pass --heldout 0")
    return perm[k:].sort().values, perm[:k].sort().values
