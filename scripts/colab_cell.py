"""Write (or check) the Colab set-up cell at the top of every chapter notebook.

Usage: python scripts/colab_cell.py [--check] [NOTEBOOK ...]     (default: notebooks/*.ipynb)

The cell is the first code cell of each notebook. On Google Colab it installs the course package at
the version this repository declares (``pyproject.toml``), from the git tag ``v<version>`` of the
repository named in ``book/_config.yml``, **without its dependencies**, so Colab's own PyTorch (a GPU
build) is kept; then it installs the other packages the notebooks import, by name only, so what
Colab already has stays as it is. Anywhere else the cell does nothing. It carries the tag
``remove-cell``: the site does not show it. ``--check`` exits 1 when a notebook's cell is missing
or stale (``tests/test_publishing.py`` runs the same check).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
TAG = "remove-cell"
MARKER = "# Google Colab only:"
# The distributions the notebooks import besides torch, by import name; POT is a test extra that
# chapter 4's notebook uses.
IMPORTS = {"numpy": "numpy", "scipy": "scipy", "matplotlib": "matplotlib",
           "ipywidgets": "ipywidgets", "tqdm": "tqdm", "safetensors": "safetensors",
           "sklearn": "scikit-learn", "skimage": "scikit-image", "ot": "POT",
           "PIL": "pillow"}


def version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def repository_url() -> str:
    text = (REPO / "book" / "_config.yml").read_text()
    return re.search(r"^\s*url:\s*(\S+)", text, re.M).group(1)


def cell_source() -> str:
    """The cell's code, rendered from the declared version and repository."""
    spec = f"diffusion-lite @ git+{repository_url()}@v{version()}"
    packages = ", ".join(f'"{p}"' for p in sorted(set(IMPORTS.values()), key=str.lower))
    return f'''{MARKER} install the course package (v{version()}) on top of Colab's own PyTorch.
# Elsewhere this cell does nothing. Written by scripts/colab_cell.py: edit that script, not this cell.
import sys

if "google.colab" in sys.modules:
    import subprocess

    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--no-deps", "{spec}"], check=True)
    subprocess.run(pip + [{packages}], check=True)'''


def _cell() -> dict:
    return {"cell_type": "code", "execution_count": None, "id": "colab-setup",
            "metadata": {"tags": [TAG]}, "outputs": [], "source": cell_source().splitlines(True)}


def _first_code(cells: list[dict]) -> int | None:
    return next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), None)


def is_current(nb: dict) -> bool:
    i = _first_code(nb["cells"])
    return i is not None and "".join(nb["cells"][i]["source"]) == cell_source() \
        and TAG in nb["cells"][i].get("metadata", {}).get("tags", [])


def write(path: pathlib.Path) -> bool:
    """Insert or refresh the cell; return True if the file changed."""
    nb = json.loads(path.read_text())
    if is_current(nb):
        return False
    cells = nb["cells"]
    i = _first_code(cells)
    if i is not None and "".join(cells[i]["source"]).startswith(MARKER):
        cells[i] = _cell()
    else:
        cells.insert(len(cells) if i is None else i, _cell())
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
    stale = [p for p in paths if not is_current(json.loads(p.read_text()))]
    if args.check:
        for p in stale:
            print(f"{p}: the Colab set-up cell is missing or stale; run python scripts/colab_cell.py")
        return 1 if stale else 0
    for p in stale:
        write(p)
        print(f"updated {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
