"""Fixtures of the grading tests (lrpkit.grading): the tiny course, built once per session, the
class of the real course (classcourse.py) and the submissions graded with the bonus
Exercise 5 (its mutants beside the attacks on the checks), each graded once per session."""

from dataclasses import dataclass
from pathlib import Path

import pytest
from classcourse import SECRET, write_bonus, write_class
from crafting import real_course, tiny_course
from hostile import write_check_attacks


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny course, built once (its solution notebooks are executed to store verdicts)."""
    return tiny_course.build(tmp_path_factory.mktemp("tiny"))


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


@pytest.fixture(scope="session")
def bonus_run(tmp_path_factory, castle_file):
    """The course with the bonus Exercise 5 (make grade's --bonus) graded in ONE sandboxed run
    with 2 workers: classcourse.write_bonus's submissions (the solutions, one without
    Exercise 5, Exercise 5's mutants) and hostile.write_check_attacks's. The output folder."""
    from lrpkit.grading.course import ALL_EXERCISES, load_course
    from lrpkit.grading.pipeline import grade

    base = tmp_path_factory.mktemp("bonus")
    root = real_course(base / "course", castle_file)
    course = load_course(root, exercises=ALL_EXERCISES)
    write_bonus(base / "submissions")
    write_check_attacks(base / "submissions", course)
    out = base / "out"
    options = dict(workers=2, course=course, root=root, progress=False, secret=SECRET)
    grade(base / "submissions", out, **options)
    return out
