"""Reading submissions (lrpkit.grading.submissions): cells to run, untagged check cells."""

import pytest
from crafting import IMPORTS, code, nb_bytes

from lrpkit.grading.submissions import CodeCell, NotebookFile, Submission, is_check, parse


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
