"""Write student copies of the course notebooks: solutions out, stubs in, everything else intact.

Usage: python scripts/make_student.py [NOTEBOOK_DIR] [OUT_DIR]      (make student: notebooks student)

For every notebook in NOTEBOOK_DIR, OUT_DIR/notebooks/<same name> is written where
- each code cell tagged ``solution`` becomes a stub: imports are kept; each ``def``/``class`` keeps
  its decorators, header line(s) and docstring, followed by ``# your code here`` and
  ``raise NotImplementedError(...)`` (so the exercise's checker reports "not written yet");
  a top-level assignment becomes ``name = ...  # your code here``; any other statement goes;
- the markdown between ```{solution-start}``` and ```{solution-end}``` (the fences included, and
  any non-solution cell in between) is removed, and so is a whole ```{solution}``` directive;
- every other cell is kept byte for byte, with its outputs and execution count cleared, except
  that relative links leaving the notebook folder (``../book/notation.md``) are rewritten to
  point at the same page from OUT_DIR/notebooks/, so they keep working in JupyterLab.
Nothing is executed. A notebook whose solution fences do not pair up is an error, not a guess.

A learner's work is safe: OUT_DIR/.generated.json records a SHA-256 of every copy written; a copy
that differs from what was written (edited by the learner) is kept, with a message, unless
``--force`` (``make student FORCE=1``) is given, and then it is first saved as ``<name>.bak``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import sys
import tokenize
from pathlib import Path

TAG = "solution"
YOUR_CODE = "# your code here"
OPEN_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z-]+)\}")


# ----------------------------------------------------------------------------- code stubs

def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _header_end(lines: list[str], node: ast.AST) -> int:
    """1-based line holding the ':' that ends a def/class header (tokenizer, not guesswork)."""
    start = node.lineno
    text = "".join(lines[start - 1:])
    depth = 0
    seen_keyword = False
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME and tok.string in ("def", "class") and depth == 0:
            seen_keyword = True
        elif tok.type == tokenize.OP:
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
            elif tok.string == ":" and depth == 0 and seen_keyword:
                return start + tok.start[0] - 1
    raise ValueError(f"could not find the end of the header of {node.name!r}")


def _has_docstring(node: ast.AST) -> bool:
    first = node.body[0]
    return (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str))


def _stub_def(lines: list[str], node: ast.AST, owner: str = "") -> list[str]:
    """Decorators + header + docstring of a def/class, then a stub body (methods stubbed too)."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    end = _header_end(lines, node)
    if node.body[0].lineno == end:  # one-liner: `def f(x): return x`
        raise ValueError(f"{node.name!r} is written on one line; put its body on its own lines")
    out = lines[first - 1:end]
    indent = " " * node.body[0].col_offset
    if _has_docstring(node):
        out += lines[node.body[0].lineno - 1:node.body[0].end_lineno]
    if isinstance(node, ast.ClassDef):
        methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not methods:
            return out + [f"{indent}{YOUR_CODE}\n", f"{indent}pass\n"]
        for method in methods:
            out += ["\n"] + _stub_def(lines, method, owner=f"{node.name}.")
        return out
    out += [f"{indent}{YOUR_CODE}\n",
            f'{indent}raise NotImplementedError("exercise: write {owner}{node.name}() here, '
            f'then run its checker")\n']
    return out


def _assigned_names(node: ast.stmt) -> list[str] | None:
    """Target names of a plain assignment (``a = ...``, ``a, b = ...``), else None."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names: list[str] = []
    for t in targets:
        elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
        if not all(isinstance(e, ast.Name) for e in elts):
            return None
        names.append(", ".join(e.id for e in elts))
    return names


def stub_code(source: str) -> str:
    """The student version of one solution cell's code (see the module docstring)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics and the like: nothing can be kept safely
        return YOUR_CODE
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    blocks: list[list[str]] = []
    assigned: list[str] = []
    dropped = False  # a statement that is neither an import, a definition nor an assignment
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            blocks.append(lines[node.lineno - 1:node.end_lineno])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            blocks.append(_stub_def(lines, node))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and _assigned_names(node):
            for names in _assigned_names(node):
                if names not in assigned:
                    assigned.append(names)
                    blocks.append([f"{names} = ...  {YOUR_CODE}\n"])
        else:
            dropped = True
    if (dropped and not assigned) or not blocks:
        # Say once where the learner's top-level code goes: after the imports.
        at = next((i for i, b in enumerate(blocks) if not _is_import(b)), len(blocks))
        blocks.insert(at, [YOUR_CODE + "\n"])
    return _join(blocks).rstrip("\n")


def _is_import(block: list[str]) -> bool:
    return bool(block) and block[0].startswith(("import ", "from "))


def _kind(block: list[str]) -> str:
    if _is_import(block):
        return "import"
    return "line" if len(block) == 1 else "def"


def _join(blocks: list[list[str]]) -> str:
    """Imports and one-line stubs stay together; definitions get two blank lines around them."""
    text = ""
    for prev, block in zip([None] + blocks[:-1], blocks):
        if prev is not None:
            kinds = {_kind(prev), _kind(block)}
            text += "\n\n" if "def" in kinds else ("" if len(kinds) == 1 else "\n")
        text += "".join(block)
    return text


# ----------------------------------------------------------------------------- markdown

class _Fences:
    """Drop solution markdown, across cells: ```{solution-start} ... ```{solution-end}```."""

    def __init__(self) -> None:
        self.inside = False  # between solution-start and solution-end

    def strip(self, text: str, where: str) -> str:
        out: list[str] = []
        lines = text.splitlines(keepends=True)
        i = 0
        while i < len(lines):
            m = OPEN_FENCE.match(lines[i])
            name = m["name"] if m else None
            if name in ("solution-start", "solution-end", "solution"):
                if name == "solution-start" and self.inside:
                    raise ValueError(f"{where}: solution-start inside an open solution; "
                                     "close the first one with ```{solution-end}```")
                if name == "solution-end" and not self.inside:
                    raise ValueError(f"{where}: solution-end without a solution-start")
                i = self._skip_directive(lines, i, m["fence"], nested=name == "solution")
                if name == "solution-start":
                    self.inside = True
                elif name == "solution-end":
                    self.inside = False
                continue
            if not self.inside:
                out.append(lines[i])
            i += 1
        return "".join(out)

    @staticmethod
    def _skip_directive(lines: list[str], i: int, fence: str, nested: bool) -> int:
        """Index after the line closing the directive opened at line i."""
        close = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        for j in range(i + 1, len(lines)):
            if close.match(lines[j]):
                return j + 1
        if nested:
            raise ValueError("a ```{solution}``` directive is never closed")
        return len(lines)


# ----------------------------------------------------------------------------- notebooks

def student_notebook(nb: dict, name: str = "notebook") -> dict:
    """Return the student copy of a notebook given as parsed JSON (the input is not modified)."""
    nb = json.loads(json.dumps(nb))
    fences = _Fences()
    cells = []
    for index, cell in enumerate(nb["cells"]):
        where = f"{name} cell {index}"
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        if cell["cell_type"] == "code" and TAG in tags:
            cell["source"] = stub_code(_source(cell))
            cell["metadata"]["tags"] = [t for t in tags if t != TAG]
            if not cell["metadata"]["tags"]:
                del cell["metadata"]["tags"]
            cells.append(cell)
        elif cell["cell_type"] == "markdown":
            text = _source(cell)
            kept = fences.strip(text, where)
            if kept == text:
                cells.append(cell)
            elif kept.strip():
                cell["source"] = kept.rstrip("\n")
                cells.append(cell)
        elif not fences.inside:
            cells.append(cell)
        # else: a non-solution cell between the fences is part of the solution: dropped
    if fences.inside:
        raise ValueError(f"{name}: a solution-start is never closed with ```{{solution-end}}```")
    nb["cells"] = cells
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def write_notebook(nb: dict, path: Path) -> None:
    """Write JSON the way Jupyter does (indent 1, UTF-8, trailing newline)."""
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


STUDENT_README = """\
# Student copies

Generated by `make student` from `notebooks/`: every exercise's solution is replaced by a stub
(`# your code here`). Write the missing code, then run the checker cell below it; until then the
checker answers "not written yet". Everything else in the notebooks is unchanged.
These notebooks import the course package: install it first (`make lab` in the repository, or
`pip install -e .` in an environment with the pinned versions).
"""


LINK = re.compile(r"\]\((\.\./[^)\s]+)\)")  # a Markdown link to a path outside the folder


def relink(nb: dict, rel: str) -> dict:
    """Rewrite relative ``](../x)`` links of markdown cells as seen from a folder ``rel`` away."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = _source(cell)
            new = LINK.sub(lambda m: "](" + os.path.normpath(os.path.join(rel, m[1])).replace(
                os.sep, "/") + ")", text)
            if new != text:
                cell["source"] = new.splitlines(keepends=True)
    return nb


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="?", default="notebooks", type=Path)
    parser.add_argument("out", nargs="?", default="student", type=Path)
    parser.add_argument("--force", action="store_true",
                        help="overwrite copies a learner has edited (each is saved as .bak first)")
    args = parser.parse_args(argv)
    sources = sorted(args.notebooks.glob("*.ipynb"))
    if not sources:
        parser.error(f"no notebooks in {args.notebooks}/; pass the folder that holds them")
    target = args.out / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / ".generated.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    rel = os.path.relpath(args.notebooks.resolve(), target.resolve())
    kept = []
    for src in sources:
        out = target / src.name
        if out.exists() and manifest.get(src.name) != _digest(out):
            if not args.force:
                kept.append(out)
                continue
            out.replace(out.with_name(out.name + ".bak"))
            print(f"saved your edited copy as {out.name}.bak")
        nb = relink(student_notebook(json.loads(src.read_text(encoding="utf-8")), name=src.name),
                    rel)
        write_notebook(nb, out)
        manifest[src.name] = _digest(out)
        n_stubs = sum(YOUR_CODE in _source(c) for c in nb["cells"] if c["cell_type"] == "code")
        print(f"student copy: {out} ({n_stubs} exercise stub(s))")
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    (args.out / "README.md").write_text(STUDENT_README, encoding="utf-8")
    for out in kept:
        print(f"kept {out}: it was edited since `make student` wrote it. To replace it with a "
              "fresh copy run `make student FORCE=1` (your version is saved as .bak).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
