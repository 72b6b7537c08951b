"""Reading submissions: find them, read their notebooks into memory, pick the cells to run.

A submission is ``<student id>.ipynb`` or a folder ``<student id>/`` of notebooks. Every file
is read before any student code runs; a submission that cannot be graded keeps the reason in
``problem`` (it still gets its row).
"""

import ast
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from lrpkit.grading.course import GradingError
from lrpkit.layout import CHECK_TAG, tags

MAX_NOTEBOOK_BYTES = 50 * 2**20
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")


@dataclass(frozen=True)
class NotebookFile:
    """One handed-in notebook file, read before any student code runs."""

    name: str
    data: bytes
    exercise: str = ""  # ex3/ex4/ex5 where the intake matched it by content; "" when unknown
    problem: str = ""  # why this one file cannot be used (the others still are)


@dataclass(frozen=True)
class CodeCell:
    """One of a student's code cells: where it is (for feedback), its code and tags."""

    label: str  # "<notebook> code cell <n>"
    source: str
    tags: tuple = ()

    def first_lines(self, count=3, width=120):
        """The cell's first ``count`` non-blank lines (each cut at ``width`` characters): how
        a student finds the cell again (Jupyter shows no cell numbers)."""
        lines = [line.rstrip() for line in self.source.splitlines() if line.strip()][:count]
        cut = (line if len(line) <= width else line[: width - 3] + "..." for line in lines)
        return "\n".join(cut)


@dataclass
class Submission:
    """One student's notebooks and, once parsed, the code cells to run; who handed them in
    and when, as far as the LMS's download or the roster says."""

    student: str  # the key: the LMS's user id where known, else the file or folder id
    files: list  # [NotebookFile]
    cells: list = field(default_factory=list)  # [CodeCell] to run
    problem: str = ""  # why it cannot be graded; empty when it can
    name: str = ""  # full name (from the LMS's file names or the roster)
    login: str = ""  # LMS login / SIS login id
    sis_id: str = ""  # SIS user id (roster)
    section: str = ""  # section (roster)
    submitted: datetime | None = None  # when it was handed in, where known (tz-aware UTC)
    late: bool = False  # the LMS itself marked it late (Canvas's LATE marker)
    origin: str = ""  # the layout it came from: canvas, moodle, zip, nbgrader, folder, pattern


def _read(entry):
    """A submission from a folder entry, or None when the entry is not one."""
    if entry.is_file() and entry.suffix == ".ipynb":
        student, paths = entry.stem, [entry]
    elif entry.is_dir():
        student = entry.name
        paths = sorted(p for p in entry.glob("*.ipynb") if not p.name.startswith("."))
    else:
        return None
    sub = Submission(student, [])
    for path in paths:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            sub.problem = (
                f"{path.name} is {size / 2**20:.0f} MiB; clear its outputs and hand it in again"
            )
        else:
            sub.files.append(NotebookFile(path.name, path.read_bytes()))
    if not paths:
        sub.problem = "the folder holds no .ipynb notebook"
    return sub


def discover(folder):
    """The submissions in folder: ``<id>.ipynb`` files and ``<id>/`` folders of notebooks."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GradingError(f"{folder} is not a folder of submissions")
    entries = (e for e in sorted(folder.iterdir()) if not e.name.startswith((".", "_")))
    found = [sub for sub in map(_read, entries) if sub is not None]
    seen = set()
    for sub in found:
        if sub.student in seen:
            sub.problem = f"a second submission for {sub.student} (a notebook and a folder)"
        seen.add(sub.student)
        if not ID.fullmatch(sub.student) and not sub.problem:
            sub.problem = "the file name is not a student id (letters, digits, . _ @ + -)"
    return found


def _notebook(name, data):
    """The JSON of a notebook file as a dict; ValueError says why it is unusable."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text (not a notebook file?)") from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{name} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(nb, dict):
        raise ValueError(f"{name} is JSON but not a notebook")
    version = nb.get("nbformat")
    if version != 4:
        raise ValueError(
            f"{name} has nbformat {version!r}; the grader reads nbformat 4 notebooks "
            "(save it with Jupyter 4 or later)"
        )
    return nb


def code_cells(name, data):
    """[CodeCell] of a notebook file's code cells; ValueError says why it is unusable."""
    if not data.strip():
        raise ValueError(f"{name} is empty")
    cells = _notebook(name, data).get("cells")
    if not isinstance(cells, list):
        raise ValueError(f"{name} has no list of cells")
    found = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise ValueError(f"{name}, cell {index}: the source is not text")
        found.append(CodeCell(f"{name} code cell {len(found) + 1}", source, tuple(tags(cell))))
    return found


def _checks_only(node):
    """Whether one statement is an lrpkit import or a call of a check (checks.x or check_x)."""
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "lrpkit"
    if isinstance(node, ast.Import):
        return all(a.name.split(".")[0] == "lrpkit" for a in node.names)
    if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        node = ast.Expr(node.value)  # `_ = checks.check_x(...)` counts as a call
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        function = node.value.func
        if isinstance(function, ast.Attribute):
            return getattr(function.value, "id", "") == "checks" or function.attr.startswith(
                "check_"
            )
        return getattr(function, "id", "").startswith("check_")
    return False


def is_check(source):
    """True for a check cell that lost its tag: only lrpkit imports and checks.* calls."""
    if "check" not in source:  # every call _checks_only accepts names one
        return False
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return (
        bool(tree.body)
        and all(_checks_only(node) for node in tree.body)
        and any(isinstance(node, ast.Expr | ast.Assign) for node in tree.body)
    )


def parse(sub):
    """Fill sub.cells with the code to run, or sub.problem with why there is none. A notebook
    that cannot be used (empty, not JSON, not nbformat 4) keeps the reason in its own
    ``problem`` and the others still run (lrpkit.grading.parts: that costs its exercise
    only); only a submission with no usable code at all is refused as a whole."""
    if sub.problem:
        return sub
    cells, problems = [], []
    for index, notebook in enumerate(sub.files):
        if notebook.problem:
            problems.append(notebook.problem)
            continue
        try:
            cells += code_cells(notebook.name, notebook.data)
        except ValueError as error:
            sub.files[index] = replace(notebook, problem=str(error))
            problems.append(str(error))
    # The student's own check cells are not trusted (nor needed): the grader brings its own.
    sub.cells = [
        cell
        for cell in cells
        if cell.source.strip() and CHECK_TAG not in cell.tags and not is_check(cell.source)
    ]
    if not sub.cells:
        sub.problem = "; ".join(problems) or "empty notebook: no code cells to grade"
    return sub
