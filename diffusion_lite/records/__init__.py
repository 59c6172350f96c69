"""Benchmark records the notebooks load (written by ``benchmarks/*.py``), shipped with the package
so a chapter runs where only the package is installed (e.g. Google Colab).

``load("digits")`` is ``benchmarks/digits.py``'s record of chapter 7's guidance grid.
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["load"]


def load(name: str) -> dict:
    """The record ``name`` (a JSON file of this package), as a dict."""
    path = resources.files(__name__) / f"{name}.json"
    if not path.is_file():
        known = sorted(p.name[:-5] for p in resources.files(__name__).iterdir()
                       if p.name.endswith(".json"))
        raise FileNotFoundError(f"no benchmark record {name!r}; known: {known}. Records are written "
                                f"by benchmarks/{name}.py")
    return json.loads(path.read_text())
