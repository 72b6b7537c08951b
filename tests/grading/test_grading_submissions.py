"""Reading submissions (lrpkit.grading.intake.submissions): cells to run, untagged check cells,
and discovery that names every link, FIFO and unusable file in its own row."""

import os

import pytest
from crafting import IMPORTS, code, nb_bytes

from lrpkit.grading.course import Check, Course
from lrpkit.grading.intake.parts import lost_exercises
from lrpkit.grading.intake.submissions import (
    CodeCell,
    NotebookFile,
    Submission,
    discover,
    is_check,
    parse,
)

NOTEBOOKS = {"ex3": "ex3_gradient_x_input.ipynb", "ex4": "ex4_lrp.ipynb"}


@pytest.mark.parametrize(
    "source, dropped",
    [
        ("from lrpkit import checks\n\nchecks.check_gradient_x_input(gradient_x_input)", True),
        ("import lrpkit.selfcheck.checks as checks\nchecks.check_conv(Conv)  # mine", True),
        ("from lrpkit.selfcheck.checks import check_conv\ncheck_conv(Conv)", True),
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
    problem, and its exercise is lost (lrpkit.grading.intake.parts); the intake's own problem and
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


# ---------------------------------------------------------------------------
# discovery: links, FIFOs, sockets and unusable files become rows, never the run's end
# ---------------------------------------------------------------------------


def test_discover_names_every_unusable_entry_and_reads_the_rest(tmp_path):
    good = nb_bytes([IMPORTS, code("x = 1")])
    subs = tmp_path / "subs"
    subs.mkdir()
    outside = tmp_path / "solution.ipynb"
    outside.write_bytes(good)
    (subs / "ann.ipynb").write_bytes(good)
    (subs / "linked.ipynb").symlink_to(outside)
    (subs / "dangling.ipynb").symlink_to(tmp_path / "gone.ipynb")
    (subs / "copy").symlink_to(subs / "bea")  # a classmate's folder
    os.mkfifo(subs / "fifo.ipynb")
    (subs / "bea").mkdir()
    (subs / "bea" / "ex3.ipynb").write_bytes(good)
    (subs / "bea" / "notes.txt").symlink_to("/dev/zero")  # not a notebook: not read
    (subs / "half").mkdir()
    (subs / "half" / "ex3.ipynb").write_bytes(good)
    (subs / "half" / "ex4.ipynb").symlink_to(outside)
    (subs / "half" / "ex5.ipynb").write_bytes(b"[" * 5000 + b"]" * 5000)
    (subs / "odd").mkdir()
    (subs / "odd" / "ex3.ipynb").mkdir()  # a folder named like a notebook
    (subs / "README.txt").write_text("ignored, as before")
    os.mkfifo(subs / "pipe")  # not named like a notebook: ignored, as before
    found = {sub.student: parse(sub) for sub in discover(subs)}
    problems = {name: (sub.problem, sub.failed) for name, sub in found.items()}
    assert problems == {
        "ann": ("", False),
        "bea": ("", False),
        "copy": ("copy is a symbolic link: hand in the folder itself", False),
        "dangling": ("dangling.ipynb is a symbolic link: hand in the file itself", False),
        "fifo": (
            "fifo.ipynb is a FIFO (named pipe), not a regular file: hand in the file itself",
            False,
        ),
        "half": ("", False),  # its unusable files cost their exercises only (parts.py)
        "linked": ("linked.ipynb is a symbolic link: hand in the file itself", False),
        "odd": ("ex3.ipynb is a folder, not a file: hand in the file itself", False),
    }
    # each unusable file on its own; the usable notebook of the same folder is still parsed
    half = found["half"]
    assert [(p.name, p.problem) for p in half.problems] == [
        ("ex4.ipynb", "ex4.ipynb is a symbolic link: hand in the file itself"),
        (
            "ex5.ipynb",
            "ex5.ipynb nests JSON 5,000 levels deep, more than the 100 allowed (no notebook "
            "file needs that many): hand in the file as it was saved",
        ),
    ]
    assert [f.name for f in half.files] == ["ex3.ipynb", "ex4.ipynb", "ex5.ipynb"]
    assert [c.label for c in half.cells] == ["ex3.ipynb code cell 1", "ex3.ipynb code cell 2"]
    assert [f.data for f in found["bea"].files] == [good]


def test_a_failure_reading_one_entry_is_its_row_and_discovery_goes_on(tmp_path, monkeypatch):
    from lrpkit.grading.intake import files, submissions

    for name in ("ann", "bob", "cy"):
        (tmp_path / f"{name}.ipynb").write_bytes(nb_bytes([code("x = 1")]))
    real = files.read_file

    def broken(path, limit, dir_fd=None):
        if path == "bob.ipynb":
            raise OSError(5, "Input/output error")
        return real(path, limit, dir_fd)

    monkeypatch.setattr(submissions.files, "read_file", broken)
    found = {sub.student: sub for sub in map(parse, discover(tmp_path))}
    assert sorted(found) == ["ann", "bob", "cy"]
    assert not found["ann"].problem and not found["cy"].problem
    assert found["bob"].failed
    assert found["bob"].problem == (
        "the grader could not read this submission (OSError: [Errno 5] Input/output error)"
    )


def test_a_file_name_that_is_not_text_gets_its_row(tmp_path):
    os.close(os.open(os.fsencode(tmp_path) + b"/\xff\xfe.ipynb", os.O_CREAT | os.O_WRONLY))
    [sub] = discover(tmp_path)
    assert sub.student == "\ufffd\ufffd"  # writable to grades.csv (utf-8)
    assert "not a student id" in sub.problem


def test_a_cell_too_complex_for_python_parser_is_no_check_and_no_crash():
    deep = "x = " + "-" * 100_000 + "1"
    assert is_check(deep) is False
    sub = parse(Submission("s", [NotebookFile("s.ipynb", nb_bytes([code(deep)]))]))
    assert not sub.problem and sub.cells[0].source == deep


def test_a_notebook_the_intake_refused_keeps_its_reason_and_is_not_parsed():
    refused = NotebookFile("ex3.ipynb", b"", "ex3", "ex3.ipynb is a symbolic link: hand in ...")
    good = NotebookFile("ex4.ipynb", nb_bytes([IMPORTS, code("x = 1")]), "ex4")
    sub = parse(Submission("s", [refused, good]))
    assert [p.problem for p in sub.problems] == [refused.problem]
    assert sub.problem == "" and [c.source for c in sub.cells] == [IMPORTS[1], "x = 1"]
