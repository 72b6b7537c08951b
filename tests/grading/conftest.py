"""Fixtures of the grading tests (lrpkit.grading): the tiny course, built once per session, and
the class of the real course (classcourse.py), graded once per session."""

from dataclasses import dataclass
from pathlib import Path

import pytest
from classcourse import SECRET, write_class
from crafting import real_course, tiny_course


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny course, built once (its solution notebooks are executed to store verdicts)."""
    return tiny_course.build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True, scope="session")
def _course_secret_in_a_temporary_home(tmp_path_factory):
    """The CLI makes a course secret on first use: never in the real ~/.config."""
    import os

    before = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if before is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = before


@dataclass(frozen=True)
class ClassRun:
    """The class's grading run: its folders (base holds them all)."""

    base: Path
    course: Path  # a copy of the kit's course
    submissions: Path
    out: Path  # the output folder: grades.csv, report.html, feedback/ ...
    students: list


@pytest.fixture(scope="session")
def class_run(tmp_path_factory, castle_file):
    """The 45 submissions of classcourse.py graded in ONE sandboxed run with 2 workers."""
    from lrpkit.grading.pipeline import grade

    base = tmp_path_factory.mktemp("class")
    course = real_course(base / "course", castle_file)
    students = write_class(base / "submissions")
    out = base / "out"
    grade(base / "submissions", out, workers=2, root=course, progress=False, secret=SECRET)
    return ClassRun(base, course, base / "submissions", out, students)
