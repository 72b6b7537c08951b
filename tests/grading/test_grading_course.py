"""The course as grading sees it (lrpkit.grading.course): graded checks, points, refusals."""

import shutil

import nbformat
import pytest

from lrpkit.grading.course import EXERCISES, GradingError, check_keys, load_course


def test_points_are_split_over_an_exercises_checks(tiny):
    """ex4's two checks share its 25 points; ex3's check of given code (above the task) is
    not graded, so its one graded check gets all 25."""
    checks = load_course(tiny).checks
    assert "check_reference" not in "".join(c.source for c in checks)
    by = {e: [c.points for c in checks if c.exercise == e] for e in EXERCISES}
    assert by == {"ex3": [25.0], "ex4": [12.5, 12.5]}
    assert [c.name for c in checks] == ["ex3 check 1", "ex4 check 1", "ex4 check 2"]
    assert [c.key for c in checks] == [
        "ex3.check_gradient_x_input",
        "ex4.check_conv_weights",
        "ex4.check_conv_relevance",
    ]


def test_check_keys_are_named_after_the_function_and_unique():
    sources = ["_ = checks.check_conv(C)", "x = 1", "checks.check_conv(C, 2)", "check_lrp(f)"]
    assert check_keys("ex4", sources) == [
        "ex4.check_conv",
        "ex4.check2",
        "ex4.check_conv-2",
        "ex4.check_lrp",
    ]


def test_unexecuted_solutions_are_refused(tiny, tmp_path):
    shutil.copytree(tiny, tmp_path / "c")
    path = tmp_path / "c" / "notebooks" / "solutions" / "ex4_lrp.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nbformat.write(nb, str(path))
    with pytest.raises(GradingError, match="no stored output"):
        load_course(tmp_path / "c")


def test_the_sandbox_files_never_hold_the_reference_solution(tiny):
    course = load_course(tiny)
    assert {"lrpkit/selfcheck/checks.py", "data/reference/tiny.json"} <= set(course.files)
    assert not any(
        name.startswith("notebooks/") or name.endswith("lrp.py") for name in course.files
    )
    assert not course.standin, "a course without utils.py needs no stand-in weights"
