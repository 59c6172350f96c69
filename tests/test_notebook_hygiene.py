"""Every chapter notebook is committed stripped and follows the course template."""

import json
import pathlib
import re

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").glob("*.ipynb") if not p.name.startswith("_"))


def _load(path):
    return json.loads(path.read_text())


def _source(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_there_are_chapters():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name} cell {i} has outputs: run nbstripout"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_follows_the_template(path):
    nb = _load(path)
    md = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert re.search(r"^# Chapter \d+", md, re.M), "first heading must be '# Chapter N — Title'"
    for section in ("## Learning goals", "## Summary", "## Discussion questions", "## References"):
        assert section in md, f"{path.name} lacks the section {section!r}"
    for marker in ("**Prerequisites:**", "**Estimated time:**"):
        assert marker in md, f"{path.name} lacks {marker}"
    assert md.count("{exercise-start}") >= 2, f"{path.name} needs at least two exercises"
    assert md.count("{solution-start}") == md.count("{exercise-start}"), "one solution per exercise"
    assert "{cite" in md, f"{path.name} cites nothing from the bibliography"
    assert "seed_everything(" in code, f"{path.name} must seed with seed_everything"
    assert re.search(r"^\s*assert ", code, re.M), f"{path.name} asserts none of its claims"
    assert ".cuda()" not in code, "device-agnostic code only: use .to(device)"
    assert not re.search(r"^\s*[!%]pip", code, re.M), "no installs inside notebooks"
    assert "NBVAL_RAISES_EXCEPTION" not in code, "use the raises-exception tag instead"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solution_cells_are_tagged(path):
    """make student replaces cells tagged 'solution'; each exercise needs at least one."""
    cells = _load(path)["cells"]
    tagged = [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    n_ex = sum(_source(c).count("{exercise-start}") for c in cells if c["cell_type"] == "markdown")
    assert len(tagged) >= n_ex, f"{path.name}: {n_ex} exercises but {len(tagged)} solution cells"


def test_toc_lists_every_notebook_and_only_existing_files():
    toc = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc.get("parts", toc.get("chapters", [])))
    for f in files:
        assert any((REPO / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f"toc: {f} missing"
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in files, f"{nb.name} is not in book/_toc.yml"
