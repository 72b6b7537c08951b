"""Hostile submissions aimed at the checks, graded with the bonus Exercise 5 (stand-in VGG-16,
bubblewrap) in conftest.bonus_run, the run that grades Exercise 5's mutants too
(test_grading_mistakes.py): a replaced bonus check, a thread that calls the kit's own code, a
thread that swaps the checks' tripwire after every guard. Each earns nothing on the checks it
attacks, with a reason that names what it did; the correct submission beside them
(``all-three``) keeps full marks.
"""

import pytest
from crafting import read_csv


@pytest.fixture(scope="module")
def graded(bonus_run):
    return read_csv(bonus_run / "grades.csv"), bonus_run / "feedback"


def points(row):
    return {k: row[k] for k in ("ex3", "ex4", "ex5", "total")}


@pytest.mark.slow
def test_the_correct_submission_keeps_full_marks(graded):
    rows, _ = graded
    assert points(rows["all-three"]) == {"ex3": "25", "ex4": "25", "ex5": "25", "total": "75"}
    assert rows["all-three"]["reason"] == "all checks passed"


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
