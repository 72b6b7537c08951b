"""The graded notebook (lrpkit.grading.run.notebook): cells, roles, the kernel modules' cells."""

import ast

import tiny_course
from crafting import IMPORTS, WRONG_GXI, code, nb_bytes

from lrpkit.grading.course import load_course
from lrpkit.grading.intake.submissions import NotebookFile, Submission, parse
from lrpkit.grading.run.notebook import (
    KERNEL,
    graded_notebook,
    guard_cell,
    kit_modules,
    prelude_cell,
)
from lrpkit.selfcheck.tripwire import LIBRARY_THREADS


def test_graded_notebook_drops_student_checks_and_carries_expected_outputs(tiny, tmp_path):
    course = load_course(tiny)
    sub = Submission(
        "s",
        [
            NotebookFile(
                "s.ipynb",
                nb_bytes(
                    [
                        IMPORTS,
                        WRONG_GXI,
                        code("print('PASS')", ["check", "ex3"]),
                        code("checks.check_gradient_x_input(gradient_x_input)"),
                    ]
                ),
            )
        ],
    )
    parse(sub)
    graded = graded_notebook(sub, course.checks, tmp_path)
    kinds = [role.kind for role in graded.roles]
    assert kinds.count("student") == 2
    assert kinds.count("check") == len(course.checks) == 3
    for cell, role in zip(graded.notebook.cells, graded.roles, strict=True):
        if role.kind == "check":
            assert cell.source == role.check.source and cell.execution_count
            assert cell.outputs[0]["text"].startswith("PASS")
        else:
            assert not cell.outputs and "nbval-ignore-output" in cell.metadata["tags"]


def test_unchanged_display_cells_are_skipped(tiny, tmp_path):
    course = load_course(tiny)
    assert course.skip == {tiny_course.DISPLAY}
    changed = tiny_course.DISPLAY + "\ngradient_x_input = 1"
    sub = Submission(
        "s",
        [
            NotebookFile(
                "s.ipynb", nb_bytes([IMPORTS, code(tiny_course.DISPLAY + "  \n"), code(changed)])
            )
        ],
    )
    parse(sub)
    graded = graded_notebook(sub, course.checks, tmp_path, skip=course.skip)
    sources = [
        c.source
        for c, role in zip(graded.notebook.cells, graded.roles, strict=True)
        if role.kind == "student"
    ]
    assert sources == [IMPORTS[1], changed], "the unchanged copy is skipped, the edited one runs"


def test_kernel_cells_carry_the_kernel_modules_and_their_parameters(tiny, tmp_path):
    """The prelude and guard cells hold the files' text verbatim and call them with literals."""
    [check, *_] = load_course(tiny).checks
    prelude = prelude_cell(tmp_path / "standin.pt", tmp_path / "standin.float64.pt")
    guard = guard_cell(tmp_path / "box", check, modules=kit_modules(load_course(tiny).files))
    assert (KERNEL / "prelude.py").read_text() in prelude
    assert (KERNEL / "guard.py").read_text() in guard
    calls = {}
    for source in (prelude, guard):
        *_, call, delete = ast.parse(source).body
        calls[call.value.func.id] = {k.arg: ast.literal_eval(k.value) for k in call.value.keywords}
        assert [t.id for t in delete.targets] == [call.value.func.id]
    assert calls == {
        "_lrpkit_prelude": {
            "cache": str(tmp_path / "standin.pt"),
            "cache64": str(tmp_path / "standin.float64.pt"),
        },
        "_lrpkit_guard": {
            "sandbox": str(tmp_path / "box"),
            "names": ["checks", "gradient_x_input"],
            "config": None,
            "modules": ["lrpkit", "lrpkit.selfcheck", "lrpkit.selfcheck.checks"],
            "library": [list(pair) for pair in sorted(LIBRARY_THREADS)],
        },
    }
