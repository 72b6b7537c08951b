"""Feedback files (lrpkit.grading.report): atomic writes, names of their own, escaped text."""

import re

import pytest

from lrpkit.grading.course import Check, Course
from lrpkit.grading.late import Late
from lrpkit.grading.report import feedback, feedback_name, literal, number, write_atomic
from lrpkit.grading.scoring import Result, Verdict

EX3 = Check("ex3", 1, "ex3.ipynb", "checks.check_gradient_x_input(f)", (), 25.0, "ex3.x")
EX4 = [
    Check("ex4", n, "ex4.ipynb", "checks.check_conv(Conv)", (), 25 / 3, f"ex4.c{n}")
    for n in (1, 2, 3)
]
COURSE = Course([EX3, *EX4], {})


def test_write_atomic_replaces_whole_files(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_feedback_names_are_unique_per_student_and_stable():
    ids = ["ann", "good~", "good_", "Good", "good", "../x y", "...", "a@b+c", '=HYPERLINK("x")']
    names = [feedback_name(s) for s in ids]
    assert names[0] == "ann.md" and names[4] == "good.md" and names[7] == "a@b+c.md"
    assert len({name.lower() for name in names}) == len(ids), names  # case-insensitive too
    assert all(re.fullmatch(r"[A-Za-z0-9._@+~-]+\.md", n) and not n.startswith(".") for n in names)
    assert [feedback_name(s) for s in ids] == names


@pytest.mark.parametrize(
    "text",
    ["<script>alert(1)</script>", "a `b` c", "``x``", "# title\n- item\n\n[link](x)", "`", " "],
)
def test_text_from_students_is_one_code_span(text):
    span = literal(text)
    fence = re.match(r"`+", span)[0]
    inner = span[len(fence) : -len(fence)]
    assert span.endswith(fence) and fence not in inner and "\n" not in span
    assert inner.strip() == " ".join(text.split())


def test_numbers():
    assert [number(x) for x in (25, 25 / 3, 12.5, 0, -0.0, 100 / 3 * 2, 1e-9)] == [
        "25",
        "8.33",
        "12.5",
        "0",
        "0",
        "66.67",
        "0",
    ]


def test_feedback():
    result = Result(
        "bob",
        {"ex3": 25.0, "ex4": 25 / 3},
        "graded",
        "ex4 check 2: FAIL",
        [Verdict(EX3, True, "PASS fine"), Verdict(EX4[1], False, "FAIL check_conv: <b>wrong</b>")],
        ["ex4_lrp.ipynb code cell 2: ZeroDivisionError: division by zero"],
        late=Late(None, "1 d 2 h", 10.0, "1 d 2 h late; -10% (1 started day x 10%)"),
    )
    assert feedback(result, COURSE) == (
        "# Feedback for `bob`\n\n"
        "Exercise 3: 25/25 | Exercise 4: 8.33/25 | Total: 33.33/50\n\n"
        "Late: 1 d 2 h late; -10% (1 started day x 10%)\n\n"
        "Total after the late penalty: 30/50\n\n"
        "Status: graded\n\n"
        "## Exercise 3\n\n"
        "- ex3 check 1 (25 P): PASS -- `PASS fine`\n\n"
        "## Exercise 4\n\n"
        "- ex4 check 2 (8.33 P): FAIL -- `FAIL check_conv: <b>wrong</b>`\n\n"
        "## Errors in your own code cells\n\n"
        "- `ex4_lrp.ipynb code cell 2: ZeroDivisionError: division by zero`\n"
    )
    rejected = Result("=1+1", {}, "invalid", "x.ipynb is empty")
    assert feedback(rejected, COURSE).startswith(
        "# Feedback for `=1+1`\n\nExercise 3: 0/25 | Exercise 4: 0/25 | Total: 0/50\n\n"
        "Status: invalid (`x.ipynb is empty`)\n"
    )
