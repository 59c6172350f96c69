"""The whole book's text builds with warnings as errors.

CI runs `make test`, not `make book`; this test keeps the pages honest there. It builds a copy of
the real book with notebook execution switched off (nbval executes the notebooks separately), so
bad citations, cross-references, glossary entries, directives and toc entries fail the test in
about a minute instead of in the full `make book`.
"""

import pathlib
import shutil
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_book_text_builds_with_warnings_as_errors(tmp_path):
    for folder in ("book", "notebooks"):
        shutil.copytree(REPO / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("_static", "_build", "__pycache__",
                                                      ".ipynb_checkpoints"))
    config_path = tmp_path / "book" / "_config.yml"
    config = yaml.safe_load(config_path.read_text())
    config["execute"]["execute_notebooks"] = "off"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run([str(jb), "build", ".", "--config", "book/_config.yml",
                           "--toc", "book/_toc.yml", "-W", "-n", "--keep-going"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines()
                if "WARNING" in line and "IPKernelApp" not in line]
    assert proc.returncode == 0, "\n".join(warnings) or proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "_build" / "html" / "notebooks" / "01_random_walks.html").exists()
