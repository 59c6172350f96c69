"""What the command line shows: PNG pictures of samples, and descriptions of runs and models.

``save_png`` draws images as a grid with gaps between tiles (aspect kept), and points as a scatter
of their first two columns. ``describe`` tells what a run folder, an exported model folder or a
bare checkpoint holds: architecture, parameters, step, training configuration, data, evaluation.

Notation: ``arr`` samples as written by ``sample`` ((N, d) points or (N, H, W, C) uint8 images).
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np

from . import checkpoints, runs

__all__ = ["image_grid", "save_png", "describe", "describe_text"]


def image_grid(images: np.ndarray, ncols: int | None = None, gap: int = 1) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images into one (rows·(H+gap)−gap, cols·(W+gap)−gap, C) picture."""
    n, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap, c), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, ncols)
        grid[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = images[i]
    return grid


def save_png(arr: np.ndarray, meta: dict, path: str | os.PathLike) -> None:
    """A PNG of samples: an image grid (nearest-neighbour enlarged), or a 2-column scatter."""
    from matplotlib.figure import Figure

    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    if meta["data"]["kind"] == "images":
        grid = image_grid(arr)
        scale = max(1, 256 // max(grid.shape[:2]))
        grid = grid.repeat(scale, 0).repeat(scale, 1)
        import matplotlib.image

        matplotlib.image.imsave(tmp, grid[..., 0] if grid.shape[-1] == 1 else grid,
                                cmap="gray", vmin=0, vmax=255)
    else:
        fig = Figure(figsize=(4, 4))
        ax = fig.add_subplot()
        j = 1 if arr.shape[1] > 1 else 0
        ax.scatter(arr[:, 0], arr[:, j], s=4, alpha=0.6)
        ax.set_xlabel("column 0")
        ax.set_ylabel(f"column {j}")
        ax.set_title(f"{len(arr)} samples")
        fig.tight_layout()
        fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)


def describe(path: str | os.PathLike) -> dict:
    """What ``path`` holds: a run folder, an exported model folder, or a checkpoint."""
    path = pathlib.Path(path)
    if (path / runs.RUN_FILE).is_file():
        den, meta = runs.load_denoiser(path)
        ev = path / "evaluation.json"
        log = path / "log.jsonl"
        return {"what": "run folder", "path": str(path), "step": meta["step"],
                "steps": meta["train"]["steps"], "model": meta["model"],
                "parameters": runs.count_parameters(den), "data": meta["data"],
                "split": meta["split"], "train": meta["train"], "init_from": meta.get("init_from"),
                "log": [json.loads(l) for l in log.read_text().splitlines()] if log.is_file() else [],
                "evaluation": json.loads(ev.read_text()) if ev.is_file() else None}
    if (path / "model.json").is_file():
        card = checkpoints.read_json(path / "model")
        return {"what": "exported model", "path": str(path), **card}
    meta = checkpoints.read_json(path)  # a bare checkpoint (stem, .json or .safetensors)
    tensors = checkpoints.read_tensors(path, step=meta.get("step"))
    return {"what": "checkpoint", "path": str(path), "step": meta.get("step"),
            "config": meta.get("config"), "tensors": len(tensors),
            "values": int(sum(t.numel() for t in tensors.values()))}


def describe_text(desc: dict) -> str:
    """A few readable lines from :func:`describe`."""
    lines = [f"{desc['what']}: {desc['path']}"]
    if desc["what"] == "run folder":
        d = desc["data"]
        lines += [f"  step {desc['step']} of {desc['steps']}; {desc['parameters']:,} parameters "
                  f"({desc['model']['net']})",
                  f"  data: {d['n']} {d['kind']} of shape {d['shape']} from {d['source']}"
                  + (f"; classes {d['classes']}" if d["classes"] else ""),
                  f"  held out {desc['split']['heldout']:.0%} (seed {desc['split']['seed']}); "
                  f"prediction {desc['train']['prediction']}, σ_d {desc['train']['sigma_data']}"]
        if desc["init_from"]:
            lines.append(f"  fine-tuned from {desc['init_from']}")
        ev = desc["evaluation"]
        if ev:
            lines += [f"  {k}: {v['model']['value']:.4g} (floor {v['floor']['value']:.4g}), {v['verdict']}"
                      for k, v in ev["metrics"].items()]
    elif desc["what"] == "exported model":
        lines += [f"  {desc['parameters']:,} parameters ({desc['model']['net']}), step "
                  f"{desc['training']['step']}; TorchScript checked to "
                  f"{desc['torchscript']['max_abs_diff']:.2g}",
                  f"  evaluation: {'included' if desc['evaluation'] else 'none (run evaluate first)'}"]
    else:
        lines.append(f"  step {desc['step']}; {desc['tensors']} tensors, {desc['values']:,} values")
    return "\n".join(lines)
