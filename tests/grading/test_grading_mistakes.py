"""Typical mistakes graded with hidden configurations (the real course, the stand-in VGG-16).

One submission per mistake, made from the solution notebooks by one edit (classcourse.py; they
are graded with the rest of the class in conftest.class_run): each loses points
on exactly the exercise it breaks, and its feedback names the mistake; a cheat that returns
a shipped array or calls the kit's own code gets 0 on that check; the correct submission gets
full marks; re-grading with the configurations recorded in grades.csv gives the same rows.
With the bonus Exercise 5 (conftest.bonus_run, the run test_grading_hostile.py reads too),
each mutant of its solution loses its points, named.
"""

import shutil

import pytest
from classcourse import MISTAKES
from crafting import read_csv
from curve_cases import CURVE_MUTANTS

from lrpkit.grading.pipeline import grade
from lrpkit.grading.results.outputs import read_configs
from lrpkit.grading.run.runner import isolation


@pytest.fixture(scope="module")
def graded(class_run):
    """The class's run (conftest.class_run: the mistakes are graded with the rest of the
    class), then a re-grade of two of its submissions on their recorded configurations."""
    base, course, subs = class_run.base, class_run.course, class_run.submissions
    # re-grade two submissions on their recorded configurations, with another secret
    again = base / "again"
    for student in ("correct", "reversed-gammas"):
        shutil.copytree(subs / student, again / student)
    recorded = read_configs(base / "out" / "configs.jsonl")
    grade(
        again, base / "out-again", workers=2, root=course, progress=False,
        secret=b"another secret", recorded=recorded,
    )  # fmt: skip
    return base


@pytest.mark.slow
def test_the_correct_submission_gets_full_marks_on_its_hidden_configuration(graded):
    row = read_csv(graded / "out" / "grades.csv")["correct"]
    assert (row["total"], row["status"], row["reason"]) == ("50", "graded", "all checks passed")
    assert '"size":' in read_configs(graded / "out" / "configs.jsonl")["correct"]
    assert row["sandbox"] == isolation()


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(MISTAKES))
def test_each_mistake_loses_exactly_its_exercise_and_is_named(graded, student):
    *_, exercise, words = MISTAKES[student]
    row = read_csv(graded / "out" / "grades.csv")[student]
    other = "ex4" if exercise == "ex3" else "ex3"
    assert float(row[exercise]) < 25 and row[other] == "25", row
    feedback = (graded / "out" / "feedback" / f"{student}.md").read_text()
    assert words in feedback, feedback


@pytest.mark.slow
def test_the_channel_slip_is_named_with_its_fix_in_the_row(graded):
    row = read_csv(graded / "out" / "grades.csv")["channel-slip"]
    assert "[..., :-1] drops the red channel" in row["reason"], row["reason"]


@pytest.mark.slow
def test_regrading_on_the_recorded_configuration_gives_the_same_rows(graded):
    first = read_csv(graded / "out" / "grades.csv")
    again = read_csv(graded / "out-again" / "grades.csv")
    assert set(again) == {"correct", "reversed-gammas"}
    for student, row in again.items():
        assert row == first[student]
        feedback = (graded / "out-again" / "feedback" / f"{student}.md").read_text()
        assert feedback == (graded / "out" / "feedback" / f"{student}.md").read_text()


@pytest.mark.slow
def test_the_bonus_exercise_is_graded_like_the_others_when_included(graded, bonus_run):
    rows = read_csv(bonus_run / "grades.csv")
    assert [k for k in rows["all-three"] if k in ("ex3", "ex4", "ex5")] == ["ex3", "ex4", "ex5"]
    assert list(rows["all-three"])[-2:] == ["ex5", "ex5.check_perturbation_curve"]
    assert (rows["all-three"]["ex5"], rows["all-three"]["total"]) == ("25", "75")
    assert rows["all-three"]["maximum"] == "50", "the bonus is extra credit"
    assert (rows["no-ex5"]["ex5"], rows["no-ex5"]["total"]) == ("0", "50")
    assert rows["no-ex5"]["reason"] == "all checks passed; bonus: not handed in"
    feedback = (bonus_run / "feedback" / "no-ex5.md").read_text()
    assert "| Total: 50/50 | bonus: not handed in" in feedback and "defined" not in feedback
    assert "Total: 75/50" in (bonus_run / "feedback" / "all-three.md").read_text()
    assert "ex5" not in read_csv(graded / "out" / "grades.csv")["correct"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CURVE_MUTANTS))
def test_each_mutant_of_exercise_5_loses_its_points_with_its_own_verdict(bonus_run, name):
    """Graded on hidden configurations with --bonus (make grade's code path)."""
    student = name.replace(" ", "-")
    row = read_csv(bonus_run / "grades.csv")[student]
    assert (row["ex5"], row["status"]) == ("0", "graded"), row
    feedback = (bonus_run / "feedback" / f"{student}.md").read_text()
    (line,) = [x for x in feedback.splitlines() if x.startswith("- ex5 check 1")]
    assert ": FAIL -- " in line and CURVE_MUTANTS[name][2] in line, line
