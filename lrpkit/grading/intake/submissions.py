"""Reading submissions: find them, read their notebooks into memory, pick the cells to run.

A submission is ``<student id>.ipynb`` or a folder ``<student id>/`` of notebooks. Every file
is read before any student code runs, through lrpkit.grading.intake.files: no link is followed (a
linked notebook or folder, dangling or not, is refused and named), only regular files are
read (a FIFO, device or socket is named, never opened), at most ``MAX_NOTEBOOK_BYTES`` each,
and JSON nesting is bounded. A submission that cannot be graded keeps the reason in
``problem`` (it still gets its row); the grader's own failure on one (``failed``) is its row
too, and discovery goes on with the others.

Each unusable file keeps its reason on its own ``NotebookFile.problem`` (``Submission.problems``
lists them): it costs its exercise only (lrpkit.grading.intake.parts), the usable notebooks are
still
graded, and only a submission without any usable code is refused as a whole.
"""

import ast
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from lrpkit.grading.course import GradingError
from lrpkit.grading.intake import files
from lrpkit.grading.intake.jsondepth import load_json
from lrpkit.layout import CHECK_TAG, tags

MAX_NOTEBOOK_BYTES = 50 * 2**20
NOTEBOOK = ".ipynb"
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")
SHOWN_PROBLEMS = 3  # file problems a row's reason names; the rest are counted


@dataclass(frozen=True)
class NotebookFile:
    """One handed-in notebook file, read before any student code runs."""

    name: str
    data: bytes
    exercise: str = ""  # ex3/ex4/ex5 as the intake matched it ("ex3+ex4": several); "": unknown
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
    problem: str = ""  # why it cannot be graded as a whole; empty when it can
    failed: bool = False  # the problem is the grader's own failure (status error)
    name: str = ""  # full name (from the LMS's file names or the roster)
    login: str = ""  # LMS login / SIS login id
    sis_id: str = ""  # SIS user id (roster)
    section: str = ""  # section (roster)
    submitted: datetime | None = None  # when it was handed in, where known (tz-aware UTC)
    late: bool = False  # the LMS itself marked it late (Canvas's LATE marker)
    origin: str = ""  # the layout it came from: canvas, moodle, zip, nbgrader, folder, pattern

    @property
    def problems(self):
        """The notebook files that cannot be used, each with its ``problem``."""
        return [nb for nb in self.files if nb.problem]


def _summary(problems):
    """A row's reason for these unusable files: the first few, then how many more."""
    reasons = [nb.problem for nb in sorted(problems, key=lambda nb: nb.name)]
    more = len(reasons) - SHOWN_PROBLEMS
    return "; ".join(reasons[:SHOWN_PROBLEMS]) + (f"; and {more} more files" if more > 0 else "")


def _printable(name):
    """A name as text that can be written anywhere (undecodable bytes replaced)."""
    return os.fsencode(name).decode("utf-8", "replace")


def _student(entry):
    """The student id of an entry of the submissions folder, or None when the entry is not a
    submission: notebooks by name (whatever they are), folders, and links (never followed:
    a link may stand for a folder)."""
    if entry.name.endswith(NOTEBOOK) and entry.kind != "dir":
        return entry.name[: -len(NOTEBOOK)]
    if entry.kind in ("dir", "symlink"):
        return entry.name
    return None


def _read_notebook(sub, name, dir_fd):
    """Read the notebook ``name`` of the folder dir_fd into sub, or record why not."""
    try:
        sub.files.append(NotebookFile(name, files.read_file(name, MAX_NOTEBOOK_BYTES, dir_fd)))
    except files.Refused as error:
        sub.files.append(NotebookFile(name, b"", problem=str(error)))


def _read_folder(sub, name, dir_fd):
    """Read the notebooks of the student folder ``name`` of dir_fd into sub."""
    try:
        folder = files.open_folder(name, dir_fd)
    except files.Refused as error:
        sub.problem = str(error)
        return
    try:
        names = [
            e.name
            for e in files.scan(folder)
            if e.name.endswith(NOTEBOOK) and not e.name.startswith(".")
        ]
        for notebook in names:
            _read_notebook(sub, notebook, folder)
    finally:
        os.close(folder)
    if not names:
        sub.problem = "the folder holds no .ipynb notebook"


def _read(entry, dir_fd):
    """A submission from an entry of the submissions folder (open as dir_fd), or None when
    the entry is not one; the grader's trouble reading it is its row, not the run's end."""
    student = _student(entry)
    if student is None:
        return None
    sub = Submission(_printable(student), [])
    try:
        if entry.kind == "dir" or not entry.name.endswith(NOTEBOOK):
            _read_folder(sub, entry.name, dir_fd)
        else:
            _read_notebook(sub, entry.name, dir_fd)
    except Exception as error:
        sub.problem = f"the grader could not read this submission ({type(error).__name__}: {error})"
        sub.failed = True
    return sub


def discover(folder):
    """The submissions in folder: ``<id>.ipynb`` files and ``<id>/`` folders of notebooks.

    The folder is the instructor's (a link to it is followed); nothing in it is."""
    try:
        top = files.open_folder(os.path.realpath(folder))
    except (files.Refused, OSError):
        raise GradingError(f"{folder} is not a folder of submissions") from None
    try:
        entries = [e for e in files.scan(top) if not e.name.startswith((".", "_"))]
        found = [sub for sub in (_read(entry, top) for entry in entries) if sub is not None]
    finally:
        os.close(top)
    seen = set()
    for sub in found:
        if sub.student in seen:
            sub.problem = f"a second submission for {sub.student} (a notebook and a folder)"
        seen.add(sub.student)
        if not ID.fullmatch(sub.student) and not sub.problem:
            sub.problem = "the file name is not a student id (letters, digits, . _ @ + -)"
    return found


def _notebook(name, data):
    """The JSON of a notebook file as a dict; ValueError (files.Refused for unusable JSON)
    says why it is unusable."""
    nb = load_json(data, name, kind="notebook")
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
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # too deep: Python's limit
        return False
    return (
        bool(tree.body)
        and all(_checks_only(node) for node in tree.body)
        and any(isinstance(node, ast.Expr | ast.Assign) for node in tree.body)
    )


def parse(sub):
    """Fill sub.cells with the code to run, or sub.problem with why there is none. A notebook
    that cannot be used (refused when read, empty, not JSON, not nbformat 4) keeps the reason in
    its own ``problem`` and the others still run (lrpkit.grading.intake.parts: that costs its
    exercise
    only); only a submission with no usable code at all is refused as a whole."""
    if sub.problem:
        return sub
    cells = []
    for index, notebook in enumerate(sub.files):
        if notebook.problem:  # refused when read: a link, a FIFO, a zip member, a duplicate
            continue
        try:
            cells += code_cells(notebook.name, notebook.data)
        except ValueError as error:
            sub.files[index] = replace(notebook, problem=str(error))
        except Exception as error:  # the grader's own trouble: this submission's row
            reason = f"{type(error).__name__}: {error}"
            sub.problem = f"the grader could not read {notebook.name} ({reason})"
            sub.failed = True
            return sub
    # The student's own check cells are not trusted (nor needed): the grader brings its own.
    sub.cells = [
        cell
        for cell in cells
        if cell.source.strip() and CHECK_TAG not in cell.tags and not is_check(cell.source)
    ]
    if not sub.cells:
        sub.problem = _summary(sub.problems) or "empty notebook: no code cells to grade"
    return sub
