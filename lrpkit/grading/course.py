"""The course as grading sees it: graded check cells, their points, and the sandbox files.

``load_course`` reads everything once, before any student code runs: the check cells of the
solution notebooks with their stored verdicts (``load_checks``), the given display-only cells
that need not run (``load_skips``), and the files every sandbox gets (the kit's student code
and data/reference, never lrpkit/lrp.py).
"""

from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

from lrpkit.layout import (
    CHECK_TAG,
    GRADE_SKIP_TAG,
    ROOT,
    SOLUTION_TAG,
    SOLUTIONS,
    STUDENT_CODE,
    has_solution,
    tags,
)

EXERCISES = ("ex3", "ex4")  # graded by default
BONUS = ("ex5",)  # graded when the instructor includes it (--bonus)
ALL_EXERCISES = (*EXERCISES, *BONUS)
POINTS = 25  # per exercise, shared equally by its check cells
#: what every sandbox gets from the kit (never lrpkit/lrp.py, the reference solution)
KIT = STUDENT_CODE
DATA = ("data/reference", "data/castle.jpg")


class GradingError(RuntimeError):
    """The course itself cannot be graded (solutions without check outputs, missing kit)."""


@dataclass(frozen=True)
class Check:
    """One graded check cell of a solution notebook, with its stored expected outputs."""

    exercise: str
    number: int  # 1-based within the exercise
    notebook: str
    source: str
    outputs: tuple
    points: float

    @property
    def name(self):
        return f"{self.exercise} check {self.number}"


@dataclass
class Course:
    """Everything grading needs from the kit, read into memory once."""

    checks: list
    files: dict  # path relative to a sandbox -> bytes
    standin: bool = True  # pre-generate the stand-in weights once and share them read-only
    skip: frozenset = frozenset()  # given display-only cells (tag grade-skip) not to run

    @property
    def hidden(self):
        """Whether its checks observe and the grader judges (lrpkit.grading.hidden): the
        kit's checks do; a course whose checks only print verdicts is graded on them."""
        return "lrpkit/config.py" in self.files


def normal(source):
    """A cell's source without trailing spaces and surrounding blank lines (to compare cells)."""
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _check_cells(path, exercises=EXERCISES):
    """The graded check cells of one solution notebook: [(exercise, cell)] below a task."""
    nb = nbformat.read(str(path), as_version=4)
    found, task_seen = [], False
    for index, cell in enumerate(nb.cells):
        cell_tags = tags(cell)
        if cell.cell_type == "code" and SOLUTION_TAG not in cell_tags:
            task_seen |= has_solution(cell.source)
        exercise = next((t for t in cell_tags if t in exercises), None)
        if cell.cell_type != "code" or CHECK_TAG not in cell_tags or exercise is None:
            continue
        if not task_seen:
            continue
        if not any(o.get("output_type") == "stream" for o in cell.outputs):
            raise GradingError(
                f"{path.name}, cell {index}: the check cell has no stored output; execute "
                "the solution notebook and save it with its check verdicts"
            )
        outputs = tuple(nbformat.from_dict(dict(o)) for o in cell.outputs)
        found.append(Check(exercise, 0, path.name, cell.source, outputs, 0.0))
    return found


def load_checks(solutions=SOLUTIONS, exercises=EXERCISES):
    """The graded check cells of the solution notebooks: tagged ``check`` and one of
    ``exercises`` (``ex3``/``ex4``, and ``ex5`` when included), and below a solution region.
    A check above every task (such as one of the given input X) checks given code, which
    earns no points."""
    found = {exercise: [] for exercise in exercises}
    for path in sorted(Path(solutions).glob("*.ipynb")):
        for check in _check_cells(path, exercises):
            found[check.exercise].append(check)
    checks = []
    for exercise, unnumbered in found.items():
        if not unnumbered:
            raise GradingError(f"no check cells tagged 'check' and {exercise!r} in {solutions}")
        share = POINTS / len(unnumbered)
        checks += [
            replace(check, number=number, points=share)
            for number, check in enumerate(unnumbered, 1)
        ]
    return checks


def load_skips(solutions=SOLUTIONS):
    """Sources of the given cells tagged ``grade-skip``: display only (figures, top-5, the
    explorer), so a student's unchanged copy of one need not run when grading."""
    found = set()
    for path in sorted(Path(solutions).glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type == "code" and GRADE_SKIP_TAG in tags(cell):
                if has_solution(cell.source):
                    raise GradingError(f"{path.name}: a grade-skip cell holds a solution region")
                found.add(normal(cell.source))
    return frozenset(found)


def _kit_files(root, kit, data):
    """{path relative to root: bytes} of the kit files and data every sandbox gets."""
    files = {}
    for name in kit:
        if (root / name).is_file():
            files[name] = (root / name).read_bytes()
    for name in data:
        path = root / name
        if path.is_file():
            files[name] = path.read_bytes()
        elif path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file() and not item.name.startswith("."):
                    files[item.relative_to(root).as_posix()] = item.read_bytes()
    return files


def load_course(root=ROOT, solutions=None, kit=KIT, data=DATA, standin=True, exercises=EXERCISES):
    """Read everything grading needs into memory once: check cells and sandbox files."""
    root = Path(root)
    solutions = solutions or root / "notebooks" / "solutions"
    checks = load_checks(solutions, exercises)
    files = _kit_files(root, kit, data)
    if "lrpkit/checks.py" not in files:
        raise GradingError(f"{root / 'lrpkit/checks.py'} is missing")
    if "utils.py" in files and "data/castle.jpg" not in files:
        raise GradingError("data/castle.jpg is missing (the checks need it): run `make castle`")
    return Course(checks, files, standin and "utils.py" in files, load_skips(solutions))
