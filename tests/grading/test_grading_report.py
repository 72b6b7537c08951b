"""Feedback files and pages (lrpkit.grading.results.feedback, feedbackpage): atomic writes, names of
their own, PASS or FAIL once with the diagnosis and hint, escaped text."""

import re
from html.parser import HTMLParser

import pytest

from lrpkit.grading.course import Check, Course
from lrpkit.grading.late import Late
from lrpkit.grading.results.feedback import (
    diagnosis,
    feedback,
    feedback_name,
    literal,
    number,
    page_name,
    quoted,
    write_atomic,
)
from lrpkit.grading.results.feedbackpage import feedback_page
from lrpkit.grading.run.scoring import Note, Result, Verdict

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


def test_diagnosis_takes_the_verdict_word_and_check_name_off_and_splits_the_hint():
    text = "FAIL check_conv: the weights are wrong. Hint: gamma only on positive weights"
    assert diagnosis(text) == ("the weights are wrong", "gamma only on positive weights")
    assert diagnosis("PASS check_conv: matches (1e-06)") == ("matches (1e-06)", "")
    assert diagnosis("FAIL Conv: pW is wrong; hint: gamma on W+") == ("pW is wrong", "gamma on W+")
    assert diagnosis("FAIL gradient_x_input raised ValueError: no") == (
        "gradient_x_input raised ValueError: no",
        "",
    )
    assert diagnosis("not graded: x.ipynb is empty") == ("not graded: x.ipynb is empty", "")
    assert diagnosis("FAILED to\nstart") == ("FAILED to start", "")
    assert diagnosis("PASS") == ("PASS", "")


@pytest.mark.parametrize("text", ["1 / 0", "```\nx\n```", "````", "<b>x</b>\n# y"])
def test_cells_are_quoted_in_a_fence_no_line_closes(text):
    block = quoted(text).split("\n")
    fence = block[0].strip()
    assert set(fence) == {"`"} and len(fence) >= 3 and block[-1].strip() == fence
    assert all(not line.strip().startswith(fence) for line in block[1:-1])
    assert [line[2:] for line in block[1:-1]] == text.splitlines()


NOTE = Note("ex4_lrp.ipynb code cell 2", "# divide\nx = 1 / 0", "ZeroDivisionError: by zero")


def bob():
    return Result(
        "bob",
        {"ex3": 25.0, "ex4": 25 / 3},
        "graded",
        "ex4 check 2: FAIL",
        [
            Verdict(EX3, True, "PASS fine"),
            Verdict(EX4[1], False, "FAIL check_conv: <b>wrong</b>. Hint: use `clamp`"),
        ],
        [NOTE],
        late=Late(None, "1 d 2 h", 10.0, "1 d 2 h late; -10% (1 started day x 10%)"),
    )


def test_feedback():
    assert feedback(bob(), COURSE) == (
        "# Feedback for `bob`\n\n"
        "Exercise 3: 25/25 | Exercise 4: 8.33/25 | Total: 33.33/50\n\n"
        "Late: 1 d 2 h late; -10% (1 started day x 10%)\n\n"
        "Total after the late penalty: 30/50\n\n"
        "Status: graded\n\n"
        "## Exercise 3\n\n"
        "- ex3 check 1, x (25 P): PASS -- `fine`\n\n"
        "## Exercise 4\n\n"
        "- ex4 check 2, c2 (8.33 P): FAIL -- `<b>wrong</b>`. Hint: `` use `clamp` ``\n\n"
        "## Errors in your own code cells\n\n"
        "- In `ex4_lrp.ipynb`, the cell that begins with\n\n"
        "  ```\n  # divide\n  x = 1 / 0\n  ```\n\n"
        "  `ZeroDivisionError: by zero`\n"
    )
    rejected = Result("=1+1", {}, "invalid", "x.ipynb is empty")
    assert feedback(rejected, COURSE).startswith(
        "# Feedback for `=1+1`\n\nExercise 3: 0/25 | Exercise 4: 0/25 | Total: 0/50\n\n"
        "Status: invalid (`x.ipynb is empty`)\n"
    )


class Elements(HTMLParser):
    """Tags, and the text inside each element with a class."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.texts, self.open = [], {}, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in ("meta", "br"):
            self.open.append(dict(attrs).get("class", ""))

    def handle_endtag(self, tag):
        self.open.pop()

    def handle_data(self, data):
        for cls in self.open:
            if cls:
                self.texts.setdefault(cls, []).append(data)


def test_the_feedback_page_shows_the_same_facts_escaped():
    result = bob()
    result.student = "<img src=x onerror=alert(1)>"
    result.notes = [Note("<b>nb</b>.ipynb code cell 1", "</pre><script>x()</script>", "<i>e</i>")]
    page = feedback_page(result, COURSE)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page and "&lt;b&gt;wrong&lt;/b&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and "http" not in page
    found = Elements(page)
    assert found.tags.count("table") == 3 and found.open == []  # points, ex3, ex4; all closed
    assert found.texts["badge pass"] == ["PASS"] and found.texts["badge fail"] == ["FAIL"]
    assert found.texts["diagnosis"] == ["fine", "<b>wrong</b>"]
    assert found.texts["hint"] == ["use `clamp`"]  # the passed check has none
    assert found.texts["excerpt"] == ["</pre><script>x()</script>"]
    assert "code cell" not in "".join(found.texts["note"])
    assert "30" in "".join(found.texts.get("num", []))  # after the late penalty


def test_a_page_has_the_feedback_files_name_with_html():
    assert page_name("feedback/ann.md") == "feedback/ann.html"
    assert page_name("feedback/Ann~3f2a9c01b7d4.md") == "feedback/Ann~3f2a9c01b7d4.html"


EX5 = Check(
    "ex5", 1, "ex5.ipynb", "checks.check_perturbation_curve(f)", (), 25.0,
    "ex5.check_perturbation_curve",
)  # fmt: skip
BONUS_COURSE = Course([EX3, *EX4, EX5], {})


def bonus_result(student, ex5, verdict):
    points = {"ex3": 25.0, "ex4": 25.0, "ex5": ex5}
    return Result(student, points, "graded", "", [verdict(EX5)])


def test_the_bonus_adds_to_the_total_and_never_lowers_it():
    """With --bonus: 50/50 and 'bonus: not handed in' for a student who skipped it (no
    Exercise 5 section), 75/50 for one who did it, its points shown as a bonus."""
    skipped = bonus_result(
        "ann", 0.0, lambda c: Verdict(c, False, "`perturbation_curve` is not defined", True)
    )
    text = feedback(skipped, BONUS_COURSE)
    assert "Exercise 3: 25/25 | Exercise 4: 25/25 | Total: 50/50 | bonus: not handed in" in text
    assert "Exercise 5" not in text
    done = bonus_result("bob", 25.0, lambda c: Verdict(c, True, "PASS check_perturbation_curve"))
    assert (
        "Exercise 3: 25/25 | Exercise 4: 25/25 | Exercise 5 (bonus): 25/25 | Total: 75/50"
        in feedback(done, BONUS_COURSE)
    )
    wrong = bonus_result("cy", 0.0, lambda c: Verdict(c, False, "FAIL check_perturbation_curve"))
    assert "Exercise 5 (bonus): 0/25 | Total: 50/50\n" in feedback(wrong, BONUS_COURSE)
    assert "## Exercise 5" in feedback(wrong, BONUS_COURSE)
