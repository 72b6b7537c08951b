"""The course as grading sees it: graded check cells, their points, and the sandbox files.

``load_course`` reads everything once, before any student code runs: the check cells of the
solution notebooks with their stored verdicts (``load_checks``), the given display-only cells
that need not run (``load_skips``), and the files every sandbox gets (the kit's student code
and data/reference, never lrpkit/reference/lrp.py). The course file (lrpkit.grading.coursefile) sets
the points of exercises and checks; without one, each exercise's 25 points are shared
equally by its checks.
"""

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat

from lrpkit.grading.coursefile import Settings
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
POINTS = 25  # per exercise unless the course file says otherwise, shared by its check cells
#: what every sandbox gets from the kit (never lrpkit/reference/lrp.py, the reference solution)
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
    key: str = ""  # stable name: exercise and check function, "ex4.check_conv" (grades.csv)

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
    settings: Settings = field(default_factory=Settings)  # the course file's (or defaults)

    @property
    def exercises(self):
        """The graded exercises, in the sheet's order."""
        return tuple(dict.fromkeys(check.exercise for check in self.checks))

    @property
    def bonus(self):
        """The graded exercises that are extra credit: their points are not in the maximum."""
        return tuple(e for e in self.exercises if e in BONUS)

    def notebooks(self):
        """{solution notebook's file name: its exercise}: how a handed-in file is recognised."""
        return {check.notebook: check.exercise for check in self.checks}

    def title(self, exercise):
        """How the feedback names an exercise: "Exercise 4" or "Exercise 4: <its title>"."""
        found = self.settings.exercises.get(exercise)
        title = f"Exercise {exercise.removeprefix('ex')}"
        return f"{title}: {found.title}" if found is not None and found.title else title

    @property
    def hidden(self):
        """Whether its checks observe and the grader judges (lrpkit.grading.run.hidden): the
        kit's checks do; a course whose checks only print verdicts is graded on them."""
        return "lrpkit/selfcheck/config.py" in self.files


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


#: a check cell calls one check function: ``_ = checks.check_conv(Conv, ConvPx)``
CHECK_CALL = re.compile(r"\b(check_[A-Za-z0-9_]+)\s*\(")


def check_keys(exercise, sources):
    """Stable names of an exercise's checks, in order: ``ex4.check_conv`` after the function
    a cell calls (``ex4.check_conv-2`` for its second cell), ``ex4.check3`` without one."""
    keys, seen = [], {}
    for number, source in enumerate(sources, 1):
        match = CHECK_CALL.search(source)
        base = f"{exercise}.{match[1] if match else f'check{number}'}"
        seen[base] = seen.get(base, 0) + 1
        keys.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return keys


def _points(exercise, keys, settings):
    """{key: points} of one exercise's checks: the course file's, the rest sharing what is
    left of the exercise's points."""
    found = settings.exercises.get(exercise)
    given = dict(found.checks) if found is not None else {}
    names = {key.split(".", 1)[1]: key for key in keys}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise GradingError(
            f"{settings.path}: [exercises.{exercise}.checks] names {unknown[0]}, which no check "
            f"cell of {exercise} calls (its checks: {', '.join(names)})"
        )
    given = {names[name]: points for name, points in given.items()}
    rest = [key for key in keys if key not in given]
    total = found.points if found is not None and found.points is not None else None
    if total is None:
        total = sum(given.values()) if not rest else POINTS
    left = total - sum(given.values())
    if left < -1e-9 or (not rest and abs(left) > 1e-9):
        raise GradingError(
            f"{settings.path}: the checks of {exercise} are given {sum(given.values()):g} "
            f"points, its points are {total:g}"
        )
    return {key: given[key] if key in given else left / len(rest) for key in keys}


def load_checks(solutions=SOLUTIONS, exercises=EXERCISES, settings=None):
    """The graded check cells of the solution notebooks: tagged ``check`` and one of
    ``exercises`` (``ex3``/``ex4``, and ``ex5`` when included), and below a solution region.
    A check above every task (such as one of the given input X) checks given code, which
    earns no points. ``settings`` (the course file's) give exercises and checks their points."""
    settings = settings or Settings()
    found = {exercise: [] for exercise in exercises}
    for path in sorted(Path(solutions).glob("*.ipynb")):
        for check in _check_cells(path, exercises):
            found[check.exercise].append(check)
    checks = []
    for exercise, unnumbered in found.items():
        if not unnumbered:
            raise GradingError(f"no check cells tagged 'check' and {exercise!r} in {solutions}")
        keys = check_keys(exercise, [check.source for check in unnumbered])
        points = _points(exercise, keys, settings)
        checks += [
            replace(check, number=number, points=points[key], key=key)
            for number, (check, key) in enumerate(zip(unnumbered, keys), 1)
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


def load_course(
    root=ROOT, solutions=None, kit=KIT, data=DATA, standin=True, exercises=None, settings=None
):
    """Read everything grading needs into memory once: check cells and sandbox files.
    ``exercises``: default ex3 and ex4, and the bonus where ``settings`` (the course file's,
    lrpkit.grading.coursefile) include it."""
    root = Path(root)
    settings = settings or Settings()
    if exercises is None:
        exercises = ALL_EXERCISES if settings.bonus else EXERCISES
    solutions = solutions or root / "notebooks" / "solutions"
    checks = load_checks(solutions, exercises, settings)
    files = _kit_files(root, kit, data)
    if "lrpkit/selfcheck/checks.py" not in files:
        raise GradingError(f"{root / 'lrpkit/selfcheck/checks.py'} is missing")
    if "utils.py" in files and "data/castle.jpg" not in files:
        raise GradingError("data/castle.jpg is missing (the checks need it): run `make castle`")
    return Course(checks, files, standin and "utils.py" in files, load_skips(solutions), settings)
