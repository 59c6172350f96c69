"""make bench: the table, the budget flags and the README update, on made-up results (no timing)."""

import importlib.util
import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "benchmarks" / "run_notebooks.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["run_notebooks"] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)

MACHINE = {"CPU": "Test CPU 3000", "cores": "2 usable of 2 logical", "Python": "3.11.7",
           "torch": "2.13.0", "torch threads": "2", "date (UTC)": "2026-11-25 12:00"}


def _r(name, wall, cpu=10.0, peak=300.0, error=""):
    return bench.Result(notebook=name, wall_s=wall, cpu_s=cpu, peak_mib=peak,
                        date="2026-11-25 12:00", error=error)


def test_table_rows_totals_and_machine():
    table = bench.render_table([_r("02_b.ipynb", 30.0, 40.0, 512.4), _r("01_a.ipynb", 20.0)],
                               MACHINE)
    lines = table.splitlines()
    assert lines[0].startswith("| Notebook | Wall (s) | CPU (s) | Peak memory (MiB) |")
    assert lines[2] == "| `01_a.ipynb` | 20.0 | 10.0 | 300 | ok | 2026-11-25 12:00 |"  # sorted
    assert lines[3] == "| `02_b.ipynb` | 30.0 | 40.0 | 512 | ok | 2026-11-25 12:00 |"
    assert lines[4].startswith("| **total** | **50.0** | **50.0** | 512 (max) | within the 12 min")
    for key, value in MACHINE.items():
        assert f"- {key}: {value}" in lines
    assert "⚠" not in table


def test_budget_flags():
    slow = bench.render_table([_r("01_a.ipynb", 90.5), _r("02_b.ipynb", 89.9)], MACHINE)
    row_a = next(l for l in slow.splitlines() if "01_a" in l)
    row_b = next(l for l in slow.splitlines() if "02_b" in l)
    assert "over the 90 s budget" in row_a and "over" not in row_b
    many = bench.render_table([_r(f"{i:02d}_x.ipynb", 80.0) for i in range(10)], MACHINE)
    total = next(l for l in many.splitlines() if "**total**" in l)
    assert "**800.0**" in total and "over the 12 min budget" in total


def test_failed_notebook_is_reported_without_breaking_the_table():
    table = bench.render_table([_r("01_a.ipynb", 5.0, error="CellExecutionError: x | y")], MACHINE)
    row = next(l for l in table.splitlines() if "01_a" in l)
    assert "❌ failed (CellExecutionError: x / y)" in row
    assert row.count("|") == 7, "a '|' in the message must not add a column"


def test_readme_update_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nbefore\n<!-- bench:start -->\nold table\n<!-- bench:end -->\nafter\n")
    assert bench.update_readme(readme, "| new |\n") is True
    assert readme.read_text() == ("# Title\n\nbefore\n<!-- bench:start -->\n| new |\n"
                                  "<!-- bench:end -->\nafter\n")
    assert bench.update_readme(readme, "| new |\n") is False, "a second run changes nothing"


@pytest.mark.parametrize("text", ["no markers\n", "<!-- bench:end -->\n<!-- bench:start -->\n",
                                  "<!-- bench:start -->\n<!-- bench:start -->\n<!-- bench:end -->\n"])
def test_readme_without_proper_markers_is_an_error(tmp_path, text):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(ValueError, match="bench:start"):
        bench.update_readme(readme, "| t |\n")
    assert readme.read_text() == text


def test_merge_keeps_other_rows_and_drops_deleted_notebooks():
    old = [_r("01_a.ipynb", 1.0), _r("02_b.ipynb", 2.0), _r("99_gone.ipynb", 3.0)]
    merged = bench.merge(old, [_r("02_b.ipynb", 20.0)], {"01_a.ipynb", "02_b.ipynb"})
    assert [(r.notebook, r.wall_s) for r in merged] == [("01_a.ipynb", 1.0), ("02_b.ipynb", 20.0)]


def test_the_real_readme_has_the_markers():
    text = (REPO / "README.md").read_text()
    assert text.count(bench.START) == 1 and text.count(bench.END) == 1


def test_machine_description_names_what_matters():
    info = bench.describe_machine()
    for key in ("CPU", "cores", "Python", "torch", "torch threads", "date (UTC)"):
        assert info.get(key), f"machine description lacks {key}"


def test_only_with_an_unknown_chapter_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "01_a.ipynb").write_text(json.dumps({"cells": [], "metadata": {},
                                                     "nbformat": 4, "nbformat_minor": 5}))
    with pytest.raises(SystemExit):
        bench.main(["--notebooks", str(tmp_path), "--only", "07", "--no-readme",
                    "--out", str(tmp_path / "t.md")])
    assert "no notebook in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--notebooks", str(tmp_path), "--timeout", "0"])
    assert "--timeout must be" in capsys.readouterr().err
