"""The graded notebook: the student's code cells, then a guard and the instructor's check each.

nbval runs it: the grader's prelude first (kernel/prelude.py), then the student's code cells
(their check cells dropped, their outputs ignored; an unchanged copy of a given display-only
cell skipped), then for every graded check a guard cell (kernel/guard.py: restores builtins,
streams, sys and threading, stops at threads left running, re-imports the kit's modules
from the sandbox copy) and the instructor's check cell carrying its stored expected output.
``roles`` says what each cell is.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import nbformat

from lrpkit.grading.course import Check, normal
from lrpkit.grading.run.hidden import handles
from lrpkit.layout import CHECK_TAG
from lrpkit.selfcheck.tripwire import LIBRARY_THREADS

KERNEL = Path(__file__).with_name("kernel")
# Read once, before any student code runs: a run that changes the files cannot change later
# runs' cells (the kernel can reach the kit by absolute path).
PRELUDE = (KERNEL / "prelude.py").read_text(encoding="utf-8")
GUARD = (KERNEL / "guard.py").read_text(encoding="utf-8")
PRELUDE_HEADER = "# The grader's setup (not student code): pristine references for the guards.\n"
GUARD_HEADER = (
    "# The grader's guard (not student code): undo patches made above, then import the kit\n"
    "# afresh from this sandbox's copies, so the check below is the instructor's.\n"
)
IGNORE_OUTPUT = "nbval-ignore-output"


@dataclass(frozen=True)
class Role:
    """What one code cell of the graded notebook is."""

    kind: str  # "prelude", "student", "guard" (before a check) or "check"
    label: str = ""  # a student cell's label, for feedback
    excerpt: str = ""  # a student cell's first lines (CodeCell.first_lines), for feedback
    check: Check | None = None  # the check of a guard or check cell


@dataclass
class GradedNotebook:
    """The notebook nbval runs, and the role of each of its code cells, in order."""

    notebook: nbformat.NotebookNode
    roles: list  # [Role]


def kernel_call(source, function, **parameters):
    """A cell that defines ``function`` from a kernel module's source, calls it with the shell
    and the parameters (as literals), and deletes it again."""
    arguments = "".join(f", {key}={value!r}" for key, value in parameters.items())
    return f"{source}\n\n{function}(get_ipython(){arguments})\ndel {function}\n"


def prelude_cell(cache=None, cache64=None):
    paths = {"cache": str(cache or ""), "cache64": str(cache64 or "")}
    return PRELUDE_HEADER + kernel_call(PRELUDE, "_lrpkit_prelude", **paths)


def guard_cell(sandbox, check, config=None, modules=()):
    names = check_names(check.source)
    config = config.to_json() if config is not None else None
    return GUARD_HEADER + kernel_call(
        GUARD, "_lrpkit_guard", sandbox=str(sandbox), names=names, config=config,
        modules=list(modules), library=[list(pair) for pair in sorted(LIBRARY_THREADS)],
    )  # fmt: skip


def kit_modules(files):
    """The module names of a course's Python files (sandbox-relative paths): utils,
    lrpkit, lrpkit.selfcheck.checks..., for the guard to import afresh."""
    names = (n[:-3].replace("/", ".").removesuffix(".__init__") for n in files if n.endswith(".py"))
    return sorted(names)


def check_names(source):
    """Names a check cell's code reads (checks, utils, check functions), for the guard."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})


def _check_cell(check, number, hidden=False):
    """The instructor's check cell; with a hidden configuration it prints an observation that
    the grader judges (lrpkit.grading.run.hidden), so nbval does not compare its output."""
    tags = [CHECK_TAG, check.exercise, *([IGNORE_OUTPUT] if hidden else [])]
    cell = nbformat.v4.new_code_cell(check.source, metadata={"tags": tags})
    cell.outputs = [nbformat.from_dict(dict(o)) for o in check.outputs]
    cell.execution_count = number  # nbval compares outputs only of cells that were run
    return cell


def graded_notebook(
    sub, checks, sandbox, cache=None, skip=frozenset(), config=None, cache64=None, modules=()
):
    """The notebook nbval runs for a parsed submission, and the role of each code cell.
    ``cache``, ``cache64``: the stand-in weights and their float64 copy (runner);
    ``modules``: the kit's modules in the sandbox (``kit_modules``)."""
    new = nbformat.v4.new_code_cell
    ignore = {"tags": [IGNORE_OUTPUT]}
    cells = [new(prelude_cell(cache, cache64), metadata=ignore)]
    roles = [Role("prelude")]
    for cell in sub.cells:
        if normal(cell.source) in skip:
            continue
        keep = ["nbval-skip"] if "nbval-skip" in cell.tags else []
        cells.append(new(cell.source, metadata={"tags": [IGNORE_OUTPUT, *keep]}))
        roles.append(Role("student", label=cell.label, excerpt=cell.first_lines()))
    for number, check in enumerate(checks, 1):
        cells.append(new(guard_cell(sandbox, check, config, modules), metadata=ignore))
        roles.append(Role("guard", check=check))
        cells.append(_check_cell(check, number, config is not None and handles(check.source)))
        roles.append(Role("check", check=check))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return GradedNotebook(nb, roles)
