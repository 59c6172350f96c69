"""The claims page: every linked cell exists, is labelled once, and is followed by an assert.

`book/claims.md` links each verdict to a labelled place in a chapter, ``{ref}`text <claim-x>` ``,
where the notebook has ``(claim-x)=`` in a markdown cell. The evidence is the first code cell after
that label that asserts something, before the next label. A claim whose chapter is not built says
``chapter N (not built yet)``; once that chapter's notebook exists, this test asks for a link.
"""

import json
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGE = (REPO / "book" / "claims.md").read_text()
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))
LABEL = re.compile(r"^\((claim-[\w-]+)\)=\s*$", re.M)


def _labels():
    """label -> (notebook, index of the first asserting code cell after it, or None)."""
    found = {}
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            src = "".join(cell["source"])
            for label in LABEL.findall(src) if cell["cell_type"] == "markdown" else ():
                assert label not in found, f"{label} is defined twice ({found[label][0]}, {path.name})"
                evidence = None
                for j in range(i + 1, len(cells)):
                    later = "".join(cells[j]["source"])
                    if cells[j]["cell_type"] == "markdown" and LABEL.search(later):
                        break
                    if cells[j]["cell_type"] == "code" and re.search(r"^\s*assert ", later, re.M):
                        evidence = j
                        break
                found[label] = (path.name, evidence)
    return found


LABELS = _labels()
LINKED = sorted(set(re.findall(r"<(claim-[\w-]+)>", PAGE)))


def test_the_page_links_claims():
    assert len(LINKED) >= 10


@pytest.mark.parametrize("label", LINKED)
def test_each_link_reaches_an_asserted_cell(label):
    assert label in LABELS, f"{label} is linked from claims.md but no notebook defines ({label})="
    notebook, evidence = LABELS[label]
    assert evidence is not None, f"{notebook}: no assert follows ({label})= before the next label"


def test_every_label_in_the_notebooks_is_used():
    assert set(LABELS) <= set(LINKED), f"unused claim labels: {sorted(set(LABELS) - set(LINKED))}"


def test_claims_waiting_for_a_chapter_name_one_that_is_not_built():
    built = {int(p.name[:2]) for p in NOTEBOOKS}
    for n in map(int, re.findall(r"chapter (\d+) \(not built yet\)", PAGE)):
        assert n not in built, f"chapter {n} is built now: link its evidence in book/claims.md"


def test_the_page_is_in_the_book():
    assert "book/claims" in (REPO / "book" / "_toc.yml").read_text()
