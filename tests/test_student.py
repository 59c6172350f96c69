"""`make student`: solutions out (nothing leaks), valid stubs in, everything else byte-identical."""

import ast
import importlib.util
import json
import pathlib
import re
import subprocess
import sys

import pytest

from diffusion_lite.checks.core import ExerciseError, check_function

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "00_fixture.ipynb"
CHAPTERS = sorted((REPO / "notebooks").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("make_student", REPO / "scripts" / "make_student.py")
make_student = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_student)


def _src(cell):
    return make_student._source(cell)


def _is_solution(cell):
    return cell["cell_type"] == "code" and "solution" in cell.get("metadata", {}).get("tags", [])


def _solution_spans(nb):
    """Indices of the cells from each ```{solution-start}``` cell to its ```{solution-end}``` cell."""
    spans, start = [], None
    for i, cell in enumerate(nb["cells"]):
        text = _src(cell) if cell["cell_type"] == "markdown" else ""
        if "{solution-start}" in text:
            start = i
        if "{solution-end}" in text and start is not None:
            spans.append(range(start, i + 1))
            start = None
    return spans


def _solution_prose(nb):
    """Markdown lines from each ```{solution-start}``` fence to its ```{solution-end}``` fence."""
    lines, inside = [], False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in _src(cell).splitlines():
            inside = inside or "{solution-start}" in line
            if inside:
                lines.append(line.strip())
            inside = inside and "{solution-end}" not in line
    return lines


def _keeps_something(text):
    """Does a markdown cell holding a solution fence also hold text outside the solution?"""
    before = text.split("{solution-start}")[0] if "{solution-start}" in text else ""
    after = text.split("{solution-end}")[-1] if "{solution-end}" in text else ""
    return bool(before.strip(" \n`:") or after.strip(" \n`:"))


def _body_lines(code):
    """The lines of a solution that are answer, not interface: no def/class header, no docstring."""
    tree = ast.parse(code)
    keep = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            end = make_student._header_end(code.splitlines(keepends=True), node)
            keep.update(range(min([node.lineno] + [d.lineno for d in node.decorator_list]), end + 1))
            if make_student._has_docstring(node):
                keep.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            keep.update(range(node.lineno, node.end_lineno + 1))
    return [line.strip() for n, line in enumerate(code.splitlines(), 1)
            if n not in keep and len(line.strip()) >= 8 and not line.strip().startswith("#")]


def _assert_student_copy_is_right(original, student):
    orig_cells = original["cells"]
    in_span = {i for span in _solution_spans(original) for i in span}
    student_text = "\n".join(_src(c) for c in student["cells"])
    outside = "\n".join(_src(c) for i, c in enumerate(orig_cells)
                        if i not in in_span and not _is_solution(c))

    # 1. nothing of a solution survives: neither its code lines nor the prose between the fences
    for i, cell in enumerate(orig_cells):
        if _is_solution(cell):
            for line in _body_lines(_src(cell)):
                if line not in outside:
                    assert line not in student_text, f"solution code leaked (cell {i}): {line!r}"
    for line in _solution_prose(original):
        if len(line) >= 12 and line not in outside:
            assert line not in student_text, f"solution prose leaked: {line!r}"
    assert "{solution-start}" not in student_text and "{solution-end}" not in student_text

    # 2. stubs compile and tell the learner where to write; 3. other cells are byte-identical
    stubs = [c for c in student["cells"] if "# your code here" in _src(c)]
    assert len(stubs) == sum(map(_is_solution, orig_cells)), "one stub per solution cell"
    for stub in stubs:
        compile(_src(stub), "<stub>", "exec")
        assert "solution" not in stub.get("metadata", {}).get("tags", [])
    expected = []  # the original cells the student copy keeps, in order; None = kept trimmed
    for i, cell in enumerate(orig_cells):
        if _is_solution(cell):
            continue
        if i not in in_span:
            expected.append(cell)
        elif cell["cell_type"] == "markdown" and _keeps_something(_src(cell)):
            expected.append(None)  # e.g. an exercise's end and its solution's start in one cell
    student_rest = [c for c in student["cells"] if c not in stubs]
    assert len(student_rest) == len(expected)
    for ours, theirs in zip(student_rest, expected):
        if theirs is None:
            assert "{exercise-end}" in _src(ours) and "{solution" not in _src(ours)
            continue
        if theirs["cell_type"] == "code":
            theirs = dict(theirs, outputs=[], execution_count=None)
        assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)

    # 4. every checker call survives, and code cells carry no outputs
    checker_calls = re.findall(r"^.*\bcheck_\w+\(.*$", outside, flags=re.M)
    for call in checker_calls:
        assert call in student_text, f"checker call lost: {call!r}"
    for cell in student["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    return stubs


def _fixture():
    return json.loads(FIXTURE.read_text())


def test_fixture_student_copy():
    original = _fixture()
    stubs = _assert_student_copy_is_right(original, make_student.student_notebook(original))
    text = "\n".join(_src(s) for s in stubs)
    assert "SECRET" not in json.dumps(make_student.student_notebook(original))
    assert "def msd(paths: torch.Tensor) -> torch.Tensor:" in text
    assert "⟨x_t²⟩" in text, "the docstring stays: it is the task description"
    assert "D_hat = ...  # your code here" in text
    assert "@torch.no_grad()" in text, "decorators stay with their function"
    assert "def step(self, dx: float) -> float:" in text
    assert original == _fixture(), "the input notebook must not be modified"


def test_fixture_checker_says_not_written_yet():
    """The stubbed function, run through a checker, gets the 'not written yet' diagnosis."""
    student = make_student.student_notebook(_fixture())
    stub = next(_src(c) for c in student["cells"] if "def msd" in _src(c))
    namespace = {}
    exec(compile("import torch\n" + stub, "<stub>", "exec"), namespace)
    with pytest.raises(ExerciseError, match="not written yet"):
        check_function(namespace["msd"], lambda paths: (paths ** 2).mean(0),
                       [dict(paths=__import__("torch").zeros(3, 4))], name="msd")


@pytest.mark.parametrize(
    "code, expected",
    [
        ("x = compute()\nprint(x)\n", "x = ...  # your code here"),
        ("a, b = 1, 2\n", "a, b = ...  # your code here"),
        ("for i in range(3):\n    print(i)\n", "# your code here"),
        ("%timeit f()\n", "# your code here"),
        ("import numpy as np\ny: float = np.pi\n", "import numpy as np\n\ny = ...  # your code here"),
    ],
)
def test_stubs_of_non_function_cells(code, expected):
    assert make_student.stub_code(code) == expected


def test_multiline_header_keeps_signature_and_drops_comments():
    code = 'def f(\n    a,\n    b=lambda q: q,\n) -> int:\n    # use the secret trick\n    return a\n'
    stub = make_student.stub_code(code)
    assert stub.startswith("def f(\n    a,\n    b=lambda q: q,\n) -> int:\n")
    assert "secret" not in stub and "return a" not in stub
    compile(stub, "<stub>", "exec")


def test_unbalanced_fences_are_an_error():
    nb = _fixture()
    nb["cells"] = [c for c in nb["cells"] if "{solution-end}" not in _src(c)]
    with pytest.raises(ValueError, match="solution-end"):
        make_student.student_notebook(nb)


def test_cli_writes_every_notebook(tmp_path):
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "00_fixture.ipynb").write_text(FIXTURE.read_text())
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_student.py"),
                    str(tmp_path / "nb"), str(tmp_path / "student")], check=True)
    out = json.loads((tmp_path / "student" / "notebooks" / "00_fixture.ipynb").read_text())
    _assert_student_copy_is_right(_fixture(), out)
    assert (tmp_path / "student" / "README.md").exists()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_student_copy(path):
    original = json.loads(path.read_text())
    stubs = _assert_student_copy_is_right(original, make_student.student_notebook(original))
    assert len(stubs) >= 2, f"{path.name}: the template asks for at least two exercises"


def test_an_edited_copy_is_kept_unless_forced_and_links_still_resolve(tmp_path):
    (tmp_path / "nb").mkdir()
    src = json.loads(FIXTURE.read_text())
    src["cells"].insert(0, {"cell_type": "markdown", "metadata": {}, "id": "link",
                            "source": ["See the [notation page](../book/notation.md)."]})
    (tmp_path / "nb" / "00_fixture.ipynb").write_text(json.dumps(src))
    run = [sys.executable, str(REPO / "scripts" / "make_student.py"), str(tmp_path / "nb"),
           str(tmp_path / "student")]
    subprocess.run(run, check=True, capture_output=True)
    copy = tmp_path / "student" / "notebooks" / "00_fixture.ipynb"
    assert "](../../book/notation.md)" in copy.read_text()  # from student/notebooks/, as before
    subprocess.run(run, check=True, capture_output=True)  # an untouched copy is simply refreshed
    copy.write_text(copy.read_text().replace("your code here", "my answer"))
    edited = copy.read_text()
    out = subprocess.run(run, check=True, capture_output=True, text=True).stdout
    assert copy.read_text() == edited and "FORCE=1" in out  # the learner's work survives
    subprocess.run(run + ["--force"], check=True, capture_output=True)
    assert "my answer" not in copy.read_text()
    assert (copy.parent / "00_fixture.ipynb.bak").read_text() == edited
