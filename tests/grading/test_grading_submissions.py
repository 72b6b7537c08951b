"""Reading submissions (lrpkit.grading.submissions): cells to run, untagged check cells."""

import pytest
from crafting import IMPORTS, code, nb_bytes

from lrpkit.grading.course import Check, Course
from lrpkit.grading.parts import lost_exercises
from lrpkit.grading.submissions import CodeCell, NotebookFile, Submission, is_check, parse

NOTEBOOKS = {"ex3": "ex3_gradient_x_input.ipynb", "ex4": "ex4_lrp.ipynb"}


@pytest.mark.parametrize(
    "source, dropped",
    [
        ("from lrpkit import checks\n\nchecks.check_gradient_x_input(gradient_x_input)", True),
        ("import lrpkit.checks as checks\nchecks.check_conv(Conv)  # mine", True),
        ("from lrpkit.checks import check_conv\ncheck_conv(Conv)", True),
        ("_ = checks.check_input(X)", True),
        ("_ = gradient_x_input(model, X, c)", False),
        ("def check_gradient_x_input(f):\n    print('PASS')", False),
        (
            "R = gradient_x_input(model, X, c)\nchecks.check_gradient_x_input(gradient_x_input)",
            False,
        ),
        ("from lrpkit import checks", False),
        ("checks.check(", False),
    ],
)
def test_untagged_check_cells_are_recognised(source, dropped):
    assert is_check(source) is dropped


def test_parse_keeps_the_students_code_cells_with_labels_and_tags():
    data = nb_bytes(
        [
            IMPORTS,
            code("   "),
            code("x = 1", ["nbval-skip"]),
            code("print('PASS')", ["check", "ex3"]),
            code("checks.check_conv(Conv)"),
        ]
    )
    sub = parse(Submission("s", [NotebookFile("s.ipynb", data)]))
    assert not sub.problem
    assert sub.cells == [
        CodeCell("s.ipynb code cell 1", IMPORTS[1], ()),
        CodeCell("s.ipynb code cell 3", "x = 1", ("nbval-skip",)),
    ]


def test_parse_says_why_a_notebook_cannot_be_graded():
    sub = parse(Submission("s", [NotebookFile("s.ipynb", b"[1, 2]")]))
    assert (sub.problem, sub.cells) == ("s.ipynb is JSON but not a notebook", [])
    empty = parse(Submission("e", [NotebookFile("e.ipynb", b"  \n")]))
    assert empty.problem == "e.ipynb is empty"


def test_a_bad_notebook_costs_only_itself():
    """An empty ex3 notebook beside a good ex4 one: the submission runs, the file keeps its
    problem, and its exercise is lost (lrpkit.grading.parts); the intake's own problem and
    exercise of a file are kept."""
    good = nb_bytes([IMPORTS, code("class Conv: pass")])
    files = [
        NotebookFile("ex3_gradient_x_input.ipynb", b""),
        NotebookFile("ex4_lrp.ipynb", good),
        NotebookFile("notes.ipynb", good),
        NotebookFile("ex3_copy.ipynb", good, problem="ex3_copy.ipynb is a symbolic link"),
    ]
    sub = parse(Submission("s", files))
    assert not sub.problem and [c.label for c in sub.cells][-1] == "notes.ipynb code cell 2"
    assert [f.problem for f in sub.files] == [
        "ex3_gradient_x_input.ipynb is empty",
        "",
        "",
        "ex3_copy.ipynb is a symbolic link",
    ]
    course = Course([Check(e, 1, n, "", (), 25.0) for e, n in NOTEBOOKS.items()], {})
    assert lost_exercises(sub, course) == {}, "notes.ipynb may hold any exercise's code"
    del sub.files[2]
    assert lost_exercises(sub, course) == {
        "ex3": "ex3_gradient_x_input.ipynb is empty; ex3_copy.ipynb is a symbolic link"
    }
    sub.files[0] = NotebookFile("answers.ipynb", good, exercise="ex3")  # matched by content
    assert lost_exercises(sub, course) == {}
    only4 = parse(Submission("t", [NotebookFile("ex4_LRP-final.ipynb", good)]))
    assert lost_exercises(only4, course) == {"ex3": "ex3_gradient_x_input.ipynb is missing"}
    nothing = parse(Submission("u", [NotebookFile("ex4_lrp.ipynb", b"{")]))
    assert nothing.problem.startswith("ex4_lrp.ipynb is not valid JSON")
