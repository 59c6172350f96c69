"""Benchmark records ship inside the package, so chapter 7 runs where only the package is installed."""

import pathlib
import re

import pytest

from diffusion_lite import records


def test_digits_record_loads_with_what_chapter_7_reads():
    record = records.load("digits")
    assert {"rows", "floor", "fine_w", "steps_grid", "chosen_w"} <= set(record)
    assert len(record["rows"]) > 0


def test_unknown_record_names_the_known_ones():
    with pytest.raises(FileNotFoundError, match=r"known: \['digits'"):
        records.load("digitz")


def test_pyproject_ships_every_record():
    """A non-editable install (Colab's pip install of the tag) gets records/*.json only if
    pyproject.toml declares them as package data."""
    root = pathlib.Path(records.__file__).resolve().parents[2]
    text = (root / "pyproject.toml").read_text()
    block = re.search(r'^\[tool\.setuptools\.package-data\]\n"diffusion_lite\.records" = \[(.*)\]$', text,
                      re.M)
    assert block, "pyproject.toml must list diffusion_lite.records' JSON files as package data"
    patterns = re.findall(r'"([^"]+)"', block[1])
    folder = pathlib.Path(records.__file__).parent
    shipped = {p.name for pattern in patterns for p in folder.glob(pattern)}
    assert shipped and shipped == {p.name for p in folder.glob("*.json")}
