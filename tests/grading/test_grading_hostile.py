"""Hostile submissions aimed at the checks, graded in one run of the real course with the
bonus Exercise 5 (stand-in VGG-16, bubblewrap): a replaced bonus check, a thread that calls
the kit's own code, a thread that swaps the checks' tripwire after every guard. Each earns
nothing on the checks it attacks, with a reason that names what it did; a correct
submission beside them keeps full marks.
"""

import nbformat
import pytest
from crafting import read_csv, real_course
from hostile import THREAD_CALLS_KIT, THREAD_PATCHES_TRIPWIRE, replaced_bonus_check

from lrpkit.authoring import student
from lrpkit.grading.course import ALL_EXERCISES, load_course
from lrpkit.grading.pipeline import grade
from lrpkit.layout import SOLUTIONS

NOTEBOOKS = ("ex3_gradient_x_input.ipynb", "ex4_lrp.ipynb", "ex5_faithfulness.ipynb")


def with_cell(notebook, source):
    """A notebook's text with one more code cell at its end."""
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    return nbformat.writes(notebook)


def solution(name):
    return nbformat.read(SOLUTIONS / name, as_version=4)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, castle_file):
    base = tmp_path_factory.mktemp("hostile")
    course = load_course(real_course(base / "course", castle_file), exercises=ALL_EXERCISES)
    [bonus] = [check for check in course.checks if check.exercise == "ex5"]
    pass_line = bonus.outputs[0]["text"].strip()
    ex5_stub = student.exercise_notebook(student.read(SOLUTIONS / NOTEBOOKS[2]))
    changed = {
        "correct": {},
        "replaced-bonus": {NOTEBOOKS[2]: with_cell(ex5_stub, replaced_bonus_check(pass_line))},
        "thread-calls-kit": {NOTEBOOKS[1]: with_cell(solution(NOTEBOOKS[1]), THREAD_CALLS_KIT)},
        "thread-patches-tripwire": {
            NOTEBOOKS[1]: with_cell(solution(NOTEBOOKS[1]), THREAD_PATCHES_TRIPWIRE)
        },
    }
    subs = base / "submissions"
    for name, notebooks in changed.items():
        (subs / name).mkdir(parents=True)
        for notebook in NOTEBOOKS:
            text = notebooks.get(notebook) or (SOLUTIONS / notebook).read_text(encoding="utf-8")
            (subs / name / notebook).write_text(text, encoding="utf-8")
    grade(
        subs, base / "out", workers=2, course=course, root=base / "course", progress=False,
        secret=b"the course secret of the hostile tests",
    )  # fmt: skip
    return read_csv(base / "out" / "grades.csv"), base / "out" / "feedback"


def points(row):
    return {k: row[k] for k in ("ex3", "ex4", "ex5", "total")}


@pytest.mark.slow
def test_the_correct_submission_keeps_full_marks(graded):
    rows, _ = graded
    assert points(rows["correct"]) == {"ex3": "25", "ex4": "25", "ex5": "25", "total": "75"}
    assert rows["correct"]["reason"] == "all checks passed"


@pytest.mark.slow
def test_a_replaced_bonus_check_earns_nothing(graded):
    rows, feedback = graded
    row = rows["replaced-bonus"]
    assert points(row) == {"ex3": "25", "ex4": "25", "ex5": "0", "total": "50"}, row
    assert "FAIL check_perturbation_curve" in row["reason"], row["reason"]
    assert "NotImplementedError" in (feedback / "replaced-bonus.md").read_text()


@pytest.mark.slow
def test_a_thread_that_calls_the_kit_earns_nothing_on_that_check(graded):
    rows, _ = graded
    row = rows["thread-calls-kit"]
    assert (row["ex3"], row["ex5"]) == ("25", "25") and float(row["ex4"]) < 25, row
    assert "check_relevance" in row["reason"], row["reason"]
    assert "kit's own selfcheck/observe.py: relevance" in row["reason"], row["reason"]


@pytest.mark.slow
def test_a_thread_that_patches_the_tripwire_earns_nothing(graded):
    """It runs from its cell on: every check after it is refused, none is graded."""
    rows, _ = graded
    row = rows["thread-patches-tripwire"]
    assert points(row) == {"ex3": "0", "ex4": "0", "ex5": "0", "total": "0"}, row
    assert "your code left 1 thread(s) running" in row["reason"], row["reason"]
