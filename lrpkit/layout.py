"""Where the kit keeps things: folders, what students get, notebook cell tags and markers.

Instructor tools (exercise generation, the bundle, references, grading) import these names
rather than spelling paths, file lists or tags themselves.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "notebooks" / "solutions"
EXERCISES = ROOT / "notebooks" / "exercises"
REFERENCE = ROOT / "data" / "reference"
TEMPLATES = Path(__file__).resolve().parent / "authoring" / "templates"

#: What students get besides the exercise notebooks, relative to the kit's root: files, and
#: folders whose Python files all ship. Never lrpkit/reference/ (the reference solution),
#: lrpkit/grading/ nor any solution notebook (tests/test_student.py checks the bundle imports
#: nothing else).
SHIPPED = (
    "utils.py",
    "lrpkit/__init__.py",
    "lrpkit/sheet.py",
    "lrpkit/selfcheck",
    "lrpkit/explorer",
)


def _python_files(root, names):
    for name in names:
        if name.endswith(".py"):
            yield name
        else:
            yield from sorted(p.relative_to(root).as_posix() for p in (root / name).glob("*.py"))


#: The shipped Python files one by one: also what every grading sandbox gets.
STUDENT_CODE = tuple(_python_files(ROOT, SHIPPED))
STUDENT_FILES = (*STUDENT_CODE, "environment.yml", "requirements.txt")
STUDENT_DIRS = ("data/reference",)

#: cell tags: a self-check cell (with its exercise, ``ex3`` ...), a cell dropped from the
#: student version, a given display-only cell the grader need not run.
CHECK_TAG = "check"
SOLUTION_TAG = "solution"
GRADE_SKIP_TAG = "grade-skip"
#: a solution region inside a code cell: ``# BEGIN SOLUTION: <stub text>`` ... ``# END SOLUTION``
BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION:(?P<stub>.*)$")
END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")


def tags(cell):
    """A cell's tags (a notebook node or a plain dict); [] when missing or malformed."""
    metadata = cell.get("metadata")
    found = metadata.get("tags", []) if isinstance(metadata, dict) else []
    return [t for t in found if isinstance(t, str)] if isinstance(found, list) else []


def has_solution(source):
    """Whether a cell's source holds a BEGIN SOLUTION marker."""
    return any(BEGIN.match(line) for line in source.splitlines())
