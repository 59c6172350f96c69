"""Publishing and classrooms: the Pages workflow, the Colab set-up cell, Binder's warm cache, the version."""

import importlib.util
import json
import os
import pathlib
import re
import stat
import subprocess
import sys
import types

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
_spec = importlib.util.spec_from_file_location("colab_cell", REPO / "scripts" / "colab_cell.py")
colab_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_cell)
VERSION = colab_cell.version()


def _workflow():
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "book.yml").read_text())
    return wf, wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as True


def _runs(job):
    return [s.get("run", "") for s in job["steps"]]


def test_workflow_builds_the_book_on_main_and_publishes_the_built_site():
    wf, on = _workflow()
    assert on["push"]["branches"] == ["main"] and "pull_request" in on
    book = wf["jobs"]["book"]
    assert any(re.match(r"make book\b", r) for r in _runs(book)), "the book job must call make book"
    upload = [s for s in book["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "book" and deploy["permissions"]["pages"] == "write"
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])


def test_workflow_tests_pull_requests_with_make_test_and_copies_no_steps():
    wf, _ = _workflow()
    assert any(re.match(r"make test\b", r) for r in _runs(wf["jobs"]["test"]))
    assert "pull_request" in wf["jobs"]["test"]["if"] and "pull_request" in wf["jobs"]["book"]["if"]
    for job in wf["jobs"].values():  # the Makefile does the set-up; no pip or pytest of its own
        for run in _runs(job):
            assert "pip install" not in run and "pytest" not in run and "jupyter-book" not in run


def _run_cell(monkeypatch, on_colab: bool):
    calls = []
    fake = types.SimpleNamespace(run=lambda cmd, check: calls.append(cmd))
    monkeypatch.setitem(sys.modules, "subprocess", fake)
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(colab_cell.cell_source(), "colab-cell", "exec"), {})
    return calls


def test_colab_cell_installs_this_version_and_keeps_colabs_torch(monkeypatch):
    calls = _run_cell(monkeypatch, on_colab=True)
    assert len(calls) == 2
    url = re.search(r"url:\s*(\S+)", (REPO / "book" / "_config.yml").read_text()).group(1)
    assert calls[0][:4] == [sys.executable, "-m", "pip", "install"] and "--no-deps" in calls[0]
    assert calls[0][-1] == f"diffusion-lite @ git+{url}@v{VERSION}"
    names = calls[1][5:]
    assert "numpy" in names and "POT" in names
    assert not any(n.split("=")[0].split("<")[0].split(">")[0] in ("torch", "torchvision")
                   for n in names), "Colab's own (GPU) torch must not be replaced"
    assert not any("==" in n for n in names), "Colab keeps the versions it has"


def test_colab_cell_does_nothing_elsewhere(monkeypatch):
    assert _run_cell(monkeypatch, on_colab=False) == []


def test_colab_cell_lists_every_package_the_notebooks_import():
    imported = set()
    for nb in NOTEBOOKS:
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "code":
                src = "".join(cell["source"])
                imported |= {m.split(".")[0] for m in
                             re.findall(r"^\s*(?:from|import)\s+([\w.]+)", src, re.M)}
    third_party = imported - set(sys.stdlib_module_names) - {"diffusion_lite", "torch", "IPython"}
    assert third_party <= set(colab_cell.IMPORTS), (
        f"add {sorted(third_party - set(colab_cell.IMPORTS))} to scripts/colab_cell.py IMPORTS")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_starts_with_the_current_colab_cell(path):
    assert colab_cell.is_current(json.loads(path.read_text())), \
        f"{path.name}: run python scripts/colab_cell.py"


def test_binder_warms_the_cache_in_the_image():
    post = REPO / "postBuild"
    assert post.stat().st_mode & stat.S_IXUSR, "repo2docker runs postBuild only if executable"
    text = post.read_text()
    assert "python -m diffusion_lite.warmup" in text and "--check" in text
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-e ." in pip or "." in pip, "the image must install the course package"


def test_make_cache_runs_the_warmup():
    make = (REPO / "Makefile").read_text()
    assert re.search(r"^cache:.*\n\t.*-m diffusion_lite\.warmup", make, re.M)


def test_version_is_shown_on_the_site_and_in_the_changelog():
    config = yaml.safe_load((REPO / "book" / "_config.yml").read_text())
    assert f"v{VERSION}" in config["html"]["extra_footer"]
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(VERSION)}\]?", changelog, re.M), \
        f"CHANGELOG.md has no entry for {VERSION}"
