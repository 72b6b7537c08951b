"""Scoring (lrpkit.grading.run.scoring): verdicts and hints from cell records, named results."""

from lrpkit.grading.course import Check
from lrpkit.grading.intake.submissions import Submission
from lrpkit.grading.run.notebook import Role
from lrpkit.grading.run.runner import Run
from lrpkit.grading.run.scoring import Note, Result, hint, score

EX3 = Check(
    "ex3",
    1,
    "ex3.ipynb",
    "checks.check_gradient_x_input(gradient_x_input)",
    (),
    25.0,
    "ex3.check_gradient_x_input",
)
EX4 = Check("ex4", 1, "ex4.ipynb", "checks.check_conv(Conv)", (), 25.0, "ex4.check_conv")
ROLES = [
    Role("prelude"),
    Role("student", label="ex3.ipynb code cell 1", excerpt="R = f(X)"),
    Role("guard", check=EX3),
    Role("check", check=EX3),
    Role("guard", check=EX4),
    Role("check", check=EX4),
]


def cell(outcome="passed", stdout="", error=None, message=""):
    return {"outcome": outcome, "stdout": stdout, "error": error, "message": message}


def test_a_check_earns_its_points_only_after_a_clean_guard():
    records = {
        0: cell(),
        1: cell("failed", error=["NameError", "name 'X' is not defined"]),
        2: cell(),
        3: cell(stdout="PASS check_gradient_x_input: right\n"),
        4: cell("failed", error=["RuntimeError", "utils is not the grader's copy"]),
        5: cell(stdout="PASS check_conv: right\n"),
    }
    result = score("ann", Run(records, ROLES, seconds=3.0), cell_timeout=120)
    assert (result.points, result.status, result.seconds) == (
        {"ex3": 25.0, "ex4": 0.0},
        "graded",
        3,
    )
    assert [(v.check, v.passed) for v in result.verdicts] == [(EX3, True), (EX4, False)]
    assert result.verdicts[0].text == "PASS check_gradient_x_input: right"
    assert result.reason == (
        "error in own cell ex3.ipynb code cell 1: `X` is not defined: define it in your "
        "notebook with exactly this name (renamed, missing, or its cell failed?); ex4 check 1: "
        "not graded: the grader could not reset the kernel before this check"
    )
    what = "`X` is not defined: define it in your notebook with exactly this name (renamed, "
    assert result.notes == [
        Note("ex3.ipynb code cell 1", "R = f(X)", what + "missing, or its cell failed?)")
    ]
    assert str(result.notes[0]).startswith("ex3.ipynb code cell 1: `X` is not defined")


def test_a_thread_left_running_is_named_by_the_guard():
    left = "your code left 1 thread(s) running (Thread-1 (spin)): the check cannot watch them"
    records = {
        0: cell(),
        1: cell(),
        2: cell(),
        3: cell(stdout="PASS check_gradient_x_input: right\n"),
        4: cell("failed", error=["ThreadLeftRunning", left]),
        5: cell(stdout="PASS check_conv: right\n"),
    }
    result = score("ann", Run(records, ROLES, seconds=3.0), cell_timeout=120)
    assert result.points == {"ex3": 25.0, "ex4": 0.0}
    assert result.verdicts[1].text == f"not graded: {left}"


def test_stopped_runs_and_failed_checks_say_why():
    records = {2: cell(), 3: cell("failed", stdout="FAIL check: wrong; hint: more\n")}
    result = score("bob", Run(records, ROLES, timed_out=True, seconds=600.2), cell_timeout=120)
    assert (result.status, result.points) == ("timeout", {"ex3": 0.0, "ex4": 0.0})
    assert result.reason == (
        "stopped after the per-submission limit of 600 s; ex3 check 1: FAIL check: wrong; "
        "hint: more; ex4 check 1: not run: the submission was stopped before this check"
    )
    nothing = score("cy", Run({}, ROLES, log="collected 0 items\nERROR boom\n"), cell_timeout=120)
    assert (nothing.status, nothing.reason.split(";")[0]) == (
        "error",
        "the notebook did not run: ERROR boom",
    )


def test_hints():
    assert "endless loop" in hint("", "", "Cell execution timed out (Timeout)", 120)
    assert "the kernel had stopped" in hint("", "", "Kernel dead on test start", 120)
    died = hint("", "", "Kernel died while the cell ran", 120)  # the grading plugin's DIED
    assert "the kernel stopped while this cell ran" in died
    assert "still raises NotImplementedError (Exercise 3)" in hint(
        "NotImplementedError", "Exercise 3", "", 120
    )
    assert hint("ValueError", "bad", "", 120) == "ValueError: bad"
    assert hint("", "", "", 120) == "did not run"


def test_named_results():
    sub = Submission("dan", [], problem="dan.ipynb is not valid JSON")
    zero = {"ex3": 0.0, "ex4": 0.0}
    rejected = Result.rejected(sub)
    assert (rejected.points, rejected.status, rejected.reason) == (zero, "invalid", sub.problem)
    pending = Result.pending(sub)
    assert (pending.status, pending.reason, pending.points, pending.total) == (
        "pending",
        "not graded yet",
        None,
        None,
    )
    interrupted = Result.interrupted(sub)
    assert (interrupted.status, interrupted.points) == ("pending", None)
    assert "--resume" in interrupted.reason
    error = Result.grader_error(sub, OSError("disk full"))
    assert error.reason == "the grader failed on this submission (OSError: disk full)"
    assert error.points is None, "the grader's own failure is no 0 for the student"
    scored = Result("dan", {"ex3": 25.0, "ex4": 0.0}, "graded", "", ["v"], ["n"], 4.0)
    tampered = Result.tampered(scored, ["checks.py"])
    assert (tampered.points, tampered.status, tampered.verdicts, tampered.total) == (
        zero,
        "tampered",
        ["v"],
        0,
    )
    assert tampered.reason == "the submission changed files it must not touch: checks.py"


def test_the_row_shows_errors_and_time_outs_in_own_cells_even_when_all_checks_pass():
    """grades.csv tells the instructor at a glance: not only in the feedback file."""
    records = {n: cell(stdout="PASS check: right\n") for n in range(6)}
    records[1] = cell("failed", message="Timeout of 120 seconds exceeded executing cell")
    result = score("dee", Run(records, ROLES, seconds=130.0), cell_timeout=120)
    assert result.points == {"ex3": 25.0, "ex4": 25.0}
    assert result.reason == (
        "all checks passed; error in own cell ex3.ipynb code cell 1: took longer than 120 s "
        "and was stopped (an endless loop?)"
    )
    clean = score("eve", Run({n: cell(stdout="PASS c: ok\n") for n in range(6)}, ROLES), 120)
    assert clean.reason == "all checks passed"
    assert clean.checks == {"ex3.check_gradient_x_input": 25.0, "ex4.check_conv": 25.0}


def test_a_lost_exercise_earns_0_with_its_reason_and_the_others_count():
    """The run left out the checks of ex3 (its notebook was empty): ex4 is graded."""
    roles = [ROLES[0], Role("student", label="ex4.ipynb code cell 1"), *ROLES[4:]]
    records = {n: cell(stdout="PASS check_conv: right\n") for n in range(4)}
    lost = {"ex3": "ex3.ipynb is empty"}
    result = score("fay", Run(records, roles), 120, lost=lost, checks=[EX3, EX4])
    assert (result.points, result.status) == ({"ex3": 0.0, "ex4": 25.0}, "graded")
    assert result.reason == "ex3.ipynb is empty (ex3: 0 points)"
    assert [(v.check, v.passed, v.text) for v in result.verdicts] == [
        (EX3, False, "not graded: ex3.ipynb is empty"),
        (EX4, True, "PASS check_conv: right"),
    ]
    assert result.checks == {"ex3.check_gradient_x_input": 0.0, "ex4.check_conv": 25.0}


def test_a_bonus_not_handed_in_is_no_failure():
    """Exercise 5's check finds perturbation_curve undefined: the reason says the bonus was
    not handed in, and lists no failure for it."""
    ex5 = Check(
        "ex5", 1, "ex5.ipynb", "checks.check_perturbation_curve(perturbation_curve)", (), 25
    )
    roles = [*ROLES, Role("guard", check=ex5), Role("check", check=ex5)]
    records = {
        0: cell(),
        1: cell(),
        2: cell(),
        3: cell(stdout="PASS check_gradient_x_input: right\n"),
        4: cell(),
        5: cell(stdout="PASS check_conv: right\n"),
        6: cell(),
        7: cell("failed", error=["NameError", "name 'perturbation_curve' is not defined"]),
    }
    result = score("ann", Run(records, roles, seconds=3.0), cell_timeout=120)
    assert result.points == {"ex3": 25.0, "ex4": 25.0, "ex5": 0.0}
    assert result.reason == "all checks passed; bonus: not handed in"
    assert result.verdicts[-1].missing and not result.verdicts[-1].passed
