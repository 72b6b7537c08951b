"""The solution notebooks: committed clean, built as the kit's conventions say, and passing
nbval (every cell runs on a fresh kernel with the stand-in; check verdicts as stored)."""

import ast
import os
import subprocess
import sys

import nbformat
import pytest

from lrpkit import layout
from lrpkit.authoring import solutions
from lrpkit.selfcheck import checks, faithfulness_checks

NOTEBOOKS = {
    "ex3_gradient_x_input.ipynb": "ex3",
    "ex4_lrp.ipynb": "ex4",
    "ex5_faithfulness.ipynb": "ex5",
}
#: calls whose output depends on the model (weights, heatmaps, scores, widgets).
MODEL_DEPENDENT = ("load_vgg16", "visualize", "topk", "explore", "print", "fig")


def read(name):
    return nbformat.read(str(layout.SOLUTIONS / name), as_version=4)


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_solution_notebooks_are_the_expected_ones():
    assert sorted(p.name for p in layout.SOLUTIONS.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_clean(name):
    """Only check cells keep outputs (one PASS line each): no stand-in heatmaps or numbers."""
    nb = read(name)
    assert solutions.problems(nb) == []
    assert nb == solutions.clean(nb)
    text = nbformat.writes(nb)
    assert "image/png" not in text and "STAND-IN" not in text


def check_calls(name):
    """The checks that the check cells of a notebook call; asserts each cell calls one check
    of lrpkit.selfcheck.checks (Exercise 5's too) and is tagged with its exercise, and no other cell
    calls a check."""
    exercise = NOTEBOOKS[name]
    found = []
    for cell in code_cells(read(name)):
        if "check" not in layout.tags(cell):
            assert "checks.check_" not in cell.source, cell.source
            continue
        assert exercise in layout.tags(cell)
        (statement,) = ast.parse(cell.source).body  # `_ = checks.check_...(...)`: nbval
        call = statement.value  # does not honour a trailing `;` that would hide True
        assert ast.unparse(call.func).startswith("checks.check_")
        found.append(call.func.attr)
    assert found, "no check cells"
    return found


def test_check_cells_call_every_check_once():
    used = [check for name in NOTEBOOKS for check in check_calls(name)]
    public = sorted(name for name in dir(checks) if name.startswith("check_"))
    assert sorted(used) == public == sorted(checks.CHECKS)
    assert not [name for name in dir(faithfulness_checks) if name.startswith("check_")]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_model_dependent_cells_are_not_compared(name):
    """nbval compares every output it is not told to ignore; the model's are not stable."""
    for cell in code_cells(read(name)):
        lines = [line for line in cell.source.splitlines() if not line.startswith("%")]
        tree = ast.parse("\n".join(lines))
        names = {getattr(n, "attr", getattr(n, "id", None)) for n in ast.walk(tree)}
        last = tree.body[-1] if tree.body else None
        shows = isinstance(last, ast.Expr)
        if (names & set(MODEL_DEPENDENT) or shows) and "check" not in layout.tags(cell):
            assert "nbval-ignore-output" in layout.tags(cell), cell.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_regions_name_their_exercise(name):
    exercise = {"ex3": "Exercise 3", "ex4": "Exercise 4", "ex5": "Exercise 5"}[NOTEBOOKS[name]]
    stubs = [
        line.split("# BEGIN SOLUTION:")[1].strip()
        for cell in code_cells(read(name))
        for line in cell.source.splitlines()
        if "# BEGIN SOLUTION:" in line
    ]
    assert stubs and any(stub.startswith(exercise) for stub in stubs)
    # Exercise 4's notebook also asks for Exercise 3's function again (gradient_x_input_ex3)
    assert all(stub.startswith(("Exercise 3 -- ", f"{exercise} -- ")) for stub in stubs)


def nbval(*paths):
    """Run `pytest --nbval` on paths with the stand-in, in a subprocess."""
    env = dict(os.environ, VGG16_WEIGHTS="standin")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(layout.ROOT),
            "--nbval-cell-timeout",
            "600",
            *map(str, paths),
        ],
        cwd=layout.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


@pytest.mark.slow
def test_nbval_passes_on_the_stand_in():
    """`pytest --nbval notebooks/solutions` with VGG16_WEIGHTS=standin, on fresh kernels."""
    result = nbval(layout.SOLUTIONS)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    cells = sum(len(code_cells(read(name))) for name in NOTEBOOKS)
    assert f"{cells} passed" in result.stdout, result.stdout[-2000:]


@pytest.mark.slow
def test_nbval_compares_the_check_verdicts(tmp_path):
    """A stored verdict that the check does not print fails nbval: the comparison is live."""
    nb = read("ex3_gradient_x_input.ipynb")
    cell = next(c for c in code_cells(nb) if "check_input" in c.source)
    cell.outputs[0].text = cell.outputs[0].text.replace("PASS", "PASS (edited)")
    nbformat.write(nb, str(tmp_path / "edited.ipynb"))
    result = nbval(tmp_path / "edited.ipynb")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 failed" in result.stdout and "PASS (edited)" in result.stdout
