"""Typical mistakes graded with hidden configurations (the real course, the stand-in VGG-16).

One submission per mistake, made from the solution notebooks by one edit: each loses points
on exactly the exercise it breaks, and its feedback names the mistake; a cheat that returns
a shipped array or calls the kit's own code gets 0 on that check; the correct submission gets
full marks; re-grading with the configurations recorded in grades.csv gives the same rows.
With the bonus Exercise 5, each mutant of its solution loses its points, named.
"""

import csv
import shutil

import nbformat
import pytest
from check_cases import CURVE_MUTANTS
from crafting import read_csv, real_course

from lrpkit.grading.course import ALL_EXERCISES, load_course
from lrpkit.grading.pipeline import grade
from lrpkit.layout import SOLUTIONS

SECRET = b"the course secret of the mistake tests"
EX3, EX4, EX5 = "ex3_gradient_x_input.ipynb", "ex4_lrp.ipynb", "ex5_faithfulness.ipynb"
GXI = "def gradient_x_input(model, X, c):"
CONV = "class Conv(torch.nn.Module):"
#: student -> (notebook, a line of the cell to edit, old text, new text, exercise broken,
#: words the feedback must contain)
MISTAKES = {
    "stored-gxi": (
        EX3, GXI, "return X * X.grad", "return torch.from_numpy(checks.stored()['gxi'])",
        "ex3", "FAIL check_gradient_x_input",
    ),
    "callers-x": (
        EX3, GXI, "X = X.detach().requires_grad_(True)", "X.requires_grad_(True)",
        "ex3", "requires_grad",
    ),
    "global-class": (EX3, GXI, "[0, c]", "[0, c1]", "ex3", "class"),
    "gradient-only": (EX3, GXI, "return X * X.grad", "return X.grad", "ex3", "gradient alone"),
    "float32": (
        EX3, GXI, "X = X.detach().requires_grad_(True)",
        "X = X.detach().float().requires_grad_(True)", "ex3", "(model, X, c)",
    ),
    "gamma-negative": (
        EX4, CONV, "p + gamma * p.clamp(min=0)", "p + gamma * p", "ex4", "negative weights",
    ),
    "not-detached": (
        EX4, CONV, "return zp * (z / zp).detach()", "return zp * (z / zp)", "ex4", "detach",
    ),
    "reversed-gammas": (
        EX4, "lrpmodel = utils.load_vgg16()", "10 ** (-0.0))", "10 ** (-2.0))", "ex4",
        "behaves like LRP-gamma with gamma 0.01",
    ),
    "no-bounds": (
        EX4, "def lrp_relevance(", "return X * X.grad + L * L.grad + H * H.grad",
        "return X * X.grad", "ex4", "L * L.grad",
    ),
    "kit-relevance": (
        EX4, "def lrp_relevance(", "return X * X.grad + L * L.grad + H * H.grad",
        "return checks.observe.relevance(lrpmodel, X, c)", "ex4", "kit's own observe.py",
    ),
}  # fmt: skip


def edited(name, marker, old, new):
    nb = nbformat.read(SOLUTIONS / name, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1 and old in cells[0].source, (name, marker, old)
    cells[0].source = cells[0].source.replace(old, new)
    return nbformat.writes(nb)


def submit(folder, student, ex3=None, ex4=None):
    (folder / student).mkdir(parents=True)
    for name, text in ((EX3, ex3), (EX4, ex4)):
        text = text or (SOLUTIONS / name).read_text(encoding="utf-8")
        (folder / student / name).write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, castle_file):
    base = tmp_path_factory.mktemp("mistakes")
    course = real_course(base / "course", castle_file)
    subs = base / "submissions"
    submit(subs, "correct")
    for student, (name, marker, old, new, *_) in MISTAKES.items():
        submit(subs, student, **{name[:3]: edited(name, marker, old, new)})
    slip = edited(EX3, "import cv2", "bgr[..., ::-1]", "bgr[..., :-1]")
    submit(subs, "channel-slip", ex3=slip)
    options = dict(workers=2, root=course, progress=False)
    grade(subs, base / "out", secret=SECRET, **options)
    # re-grade two submissions on their recorded configurations, with another secret
    again = base / "again"
    for student in ("correct", "reversed-gammas"):
        shutil.copytree(subs / student, again / student)
    with open(base / "out" / "grades.csv", newline="", encoding="utf-8") as f:
        recorded = {row["student"]: row["config"] for row in csv.DictReader(f)}
    grade(again, base / "out-again", secret=b"another secret", recorded=recorded, **options)
    # the bonus Exercise 5, graded when the instructor includes it; its mutants hand in
    # Exercise 5's notebook only (their other exercises get no points)
    bonus = base / "bonus"
    submit(bonus, "all-three")
    shutil.copyfile(SOLUTIONS / EX5, bonus / "all-three" / EX5)
    submit(bonus, "no-ex5")
    for name, (old, new, _) in CURVE_MUTANTS.items():
        (bonus / name.replace(" ", "-")).mkdir()
        text = edited(EX5, "def perturbation_curve(", old, new)
        (bonus / name.replace(" ", "-") / EX5).write_text(text, encoding="utf-8")
    with_bonus = load_course(course, exercises=ALL_EXERCISES)
    grade(bonus, base / "out-bonus", secret=SECRET, course=with_bonus, **options)
    return base


@pytest.mark.slow
def test_the_correct_submission_gets_full_marks_on_its_hidden_configuration(graded):
    row = read_csv(graded / "out" / "grades.csv")["correct"]
    assert (row["total"], row["status"], row["reason"]) == ("50", "graded", "all checks passed")
    assert '"size":' in row["config"] and row["sandbox"] == "bubblewrap"


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
def test_the_bonus_exercise_is_graded_like_the_others_when_included(graded):
    rows = read_csv(graded / "out-bonus" / "grades.csv")
    assert [k for k in rows["all-three"] if k.startswith("ex")] == ["ex3", "ex4", "ex5"]
    assert (rows["all-three"]["ex5"], rows["all-three"]["total"]) == ("25", "75")
    assert (rows["no-ex5"]["ex5"], rows["no-ex5"]["total"]) == ("0", "50")
    assert rows["no-ex5"]["reason"] == "all checks passed; bonus: not handed in"
    feedback = (graded / "out-bonus" / "feedback" / "no-ex5.md").read_text()
    assert "| Total: 50/50 | bonus: not handed in" in feedback and "defined" not in feedback
    assert "Total: 75/50" in (graded / "out-bonus" / "feedback" / "all-three.md").read_text()
    assert "ex5" not in read_csv(graded / "out" / "grades.csv")["correct"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CURVE_MUTANTS))
def test_each_mutant_of_exercise_5_loses_its_points_with_its_own_verdict(graded, name):
    """Graded on hidden configurations with --bonus (make grade's code path)."""
    student = name.replace(" ", "-")
    row = read_csv(graded / "out-bonus" / "grades.csv")[student]
    assert (row["ex5"], row["status"]) == ("0", "graded"), row
    feedback = (graded / "out-bonus" / "feedback" / f"{student}.md").read_text()
    (line,) = [x for x in feedback.splitlines() if x.startswith("- ex5 check 1")]
    assert "FAIL check_perturbation_curve: " in line and CURVE_MUTANTS[name][2] in line, line
