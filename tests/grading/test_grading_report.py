"""Writing results (lrpkit.grading.report): atomic files, safe names, grades.csv, feedback."""

from lrpkit.grading.course import Check
from lrpkit.grading.report import feedback, grades_csv, safe_name, write_atomic
from lrpkit.grading.scoring import Result, Verdict


def test_write_atomic_replaces_whole_files(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_safe_names():
    assert [safe_name(s) for s in ("ann", "../x y", "...", "a@b+c")] == [
        "ann",
        "_x_y",
        "unnamed",
        "a@b+c",
    ]


def test_grades_csv_and_feedback():
    check = Check("ex4", 2, "ex4_lrp.ipynb", "checks.check_conv(Conv)", (), 25 / 3)
    result = Result(
        "bob",
        {"ex3": 25.0, "ex4": 25 / 3},
        "graded",
        "ex4 check 2: FAIL",
        [Verdict(check, False, "FAIL check_conv: wrong")],
        ["ex4_lrp.ipynb code cell 2: ZeroDivisionError: division by zero"],
    )
    assert grades_csv([result, Result("al", {}, "invalid", "bad, JSON")]) == (
        "student,ex3,ex4,total,status,reason,sandbox,config\n"
        'al,0,0,0,invalid,"bad, JSON",,\n'
        "bob,25,8.33,33.33,graded,ex4 check 2: FAIL,,\n"
    )
    assert feedback(result) == (
        "# Feedback for bob\n\n"
        "Exercise 3: 25/25 | Exercise 4: 8.33/25 | Total: 33.33/50\n\n"
        "Status: graded\n\n"
        "## Exercise 4\n\n"
        "- ex4 check 2 (8.33 P): FAIL -- FAIL check_conv: wrong\n\n"
        "## Errors in your own code cells\n\n"
        "- ex4_lrp.ipynb code cell 2: ZeroDivisionError: division by zero\n"
    )


def bonus_result(student, ex5, verdict):
    check = Check("ex5", 1, "ex5_faithfulness.ipynb", "checks.check_perturbation_curve(f)", (), 25)
    points = {"ex3": 25.0, "ex4": 25.0, "ex5": ex5}
    return Result(student, points, "graded", "", [verdict(check)])


def test_the_bonus_adds_to_the_total_and_never_lowers_it():
    """With --bonus: 50/50 and 'bonus: not handed in' for a student who skipped it (no
    Exercise 5 section), 75/50 for one who did it, its points shown as a bonus."""
    skipped = bonus_result(
        "ann", 0.0, lambda c: Verdict(c, False, "`perturbation_curve` is not defined", True)
    )
    text = feedback(skipped)
    assert "Exercise 3: 25/25 | Exercise 4: 25/25 | Total: 50/50 | bonus: not handed in" in text
    assert "Exercise 5" not in text
    done = bonus_result("bob", 25.0, lambda c: Verdict(c, True, "PASS check_perturbation_curve"))
    assert (
        "Exercise 3: 25/25 | Exercise 4: 25/25 | Exercise 5 (bonus): 25/25 | Total: 75/50"
        in feedback(done)
    )
    wrong = bonus_result("cy", 0.0, lambda c: Verdict(c, False, "FAIL check_perturbation_curve"))
    assert "Exercise 5 (bonus): 0/25 | Total: 50/50\n" in feedback(wrong)
    assert "## Exercise 5" in feedback(wrong)
