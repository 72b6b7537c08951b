"""Student versions (lrpkit.authoring.student): stubs, drift, the exercises as generated
(tests/test_bundle.py runs them in the student bundle)."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lrpkit.authoring import student

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_NAMES = ("ex3_gradient_x_input.ipynb", "ex4_lrp.ipynb", "ex5_faithfulness.ipynb")
HAVE_SOLUTIONS = all((student.SOLUTIONS / name).is_file() for name in SOLUTION_NAMES)
needs_solutions = pytest.mark.skipif(
    not HAVE_SOLUTIONS, reason="notebooks/solutions/ not written yet"
)


def nb(*cells):
    made = []
    for kind, source, *tags in cells:
        new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        cell = new(source)
        if tags:
            cell.metadata["tags"] = list(tags[0])
        if kind == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="out\n")]
            cell.execution_count = 1
        made.append(cell)
    return nbformat.v4.new_notebook(cells=made)


FUNC = """\
def f(x):
    \"\"\"Doc stays.\"\"\"
    y = x  # given
    # BEGIN SOLUTION: Exercise 3 -- implement f: return 2 y
    z = 2 * y
    return z
    # END SOLUTION"""


# ---------------------------------------------------------------------------
# the generator, on crafted notebooks
# ---------------------------------------------------------------------------


def test_region_becomes_a_stub_at_its_indentation_and_given_code_stays():
    out = student.exercise_notebook(nb(("code", FUNC)))
    assert out.cells[0].source == (
        "def f(x):\n"
        '    """Doc stays."""\n'
        "    y = x  # given\n"
        '    raise NotImplementedError("Exercise 3 -- implement f: return 2 y")'
    )
    namespace = {}
    exec(out.cells[0].source, namespace)
    with pytest.raises(NotImplementedError, match="^Exercise 3 -- implement f: return 2 y$"):
        namespace["f"](1)


def test_top_level_region_outputs_and_solution_cells():
    source = "import math\n# BEGIN SOLUTION: Exercise 4 -- say \"hi\"\nprint('hi')\n# END SOLUTION"
    original = nb(
        ("md", "**Task:** say hi"),
        ("code", source, ["nbval-ignore-output"]),
        ("md", "The answer is print.", ["solution"]),
        ("code", "secret = 1", ["solution"]),
    )
    out = student.exercise_notebook(original)
    assert [c.cell_type for c in out.cells] == ["markdown", "code"]
    assert out.cells[0].source == "**Task:** say hi"
    assert (
        out.cells[1].source
        == 'import math\nraise NotImplementedError("Exercise 4 -- say \\"hi\\"")'
    )
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert out.cells[1].metadata["tags"] == ["nbval-ignore-output"]
    assert original.cells[1].source == source, "the solution notebook is not changed"
    with pytest.raises(NotImplementedError, match='Exercise 4 -- say "hi"'):
        exec(out.cells[1].source, {})


def test_long_stubs_are_wrapped_and_keep_their_message():
    stub = "Exercise 4 -- " + " ".join(f"word{i}" for i in range(40))
    source = f"if True:\n    # BEGIN SOLUTION: {stub}\n    pass\n    # END SOLUTION"
    out = student.exercise_notebook(nb(("code", source))).cells[0].source
    assert max(len(line) for line in out.splitlines()) <= student.LINE_LENGTH
    assert len(out.splitlines()) > 3
    with pytest.raises(NotImplementedError) as raised:
        exec(out, {})
    assert str(raised.value) == stub


def test_solved_regions_are_kept_without_markers():
    original = nb(
        ("code", FUNC), ("code", "# BEGIN SOLUTION: Exercise 4 -- b\nb = 2\n# END SOLUTION")
    )
    out = student.exercise_notebook(original, solved={1})
    assert "raise NotImplementedError" in out.cells[0].source
    assert out.cells[1].source == "b = 2"
    assert student.stubs(original) == ["Exercise 3 -- implement f: return 2 y", "Exercise 4 -- b"]


@pytest.mark.parametrize(
    "source, words",
    [
        ("# BEGIN SOLUTION: Exercise 3 -- x\nx = 1", "no END SOLUTION"),
        ("x = 1\n# END SOLUTION", "END SOLUTION without BEGIN"),
        ("# BEGIN SOLUTION: a\n# BEGIN SOLUTION: b\n# END SOLUTION", "inside a region"),
        ("# BEGIN SOLUTION:   \nx = 1\n# END SOLUTION", "needs a stub text"),
    ],
)
def test_broken_markers_are_refused(source, words):
    with pytest.raises(student.MarkerError, match=words):
        student.exercise_notebook(nb(("code", source)))


def test_markers_in_markdown_are_refused():
    with pytest.raises(student.MarkerError, match="outside a code cell"):
        student.exercise_notebook(nb(("md", "Text\n# BEGIN SOLUTION: x")))


def test_solution_lines_are_those_only_in_solutions():
    original = nb(
        (
            "code",
            "return zp * (z / zp).data\n# BEGIN SOLUTION: Exercise 4 -- c\n"
            "pconv = 1\nreturn zp * (z / zp).data\n# END SOLUTION",
        ),
        ("md", "A hint only solutions have.", ["solution"]),
    )
    assert student.solution_lines(original) == {"pconv = 1", "A hint only solutions have."}


def test_drift_is_detected(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    nbformat.write(nb(("code", FUNC)), str(solutions / "a.ipynb"))
    student.write_exercises(solutions, exercises)
    assert student.drift(solutions, exercises) == []
    assert (
        student.render(student.read(exercises / "a.ipynb")) == (exercises / "a.ipynb").read_text()
    ), "what is written reads back to the same text"
    (exercises / "stale.ipynb").write_text("{}")
    changed = nb(("code", FUNC.replace("y = x", "y = x + 0")))
    nbformat.write(changed, str(solutions / "a.ipynb"))
    problems = student.drift(solutions, exercises)
    assert any(p.startswith("a.ipynb: differs") for p in problems)
    assert "stale.ipynb: has no solution notebook" in problems
    student.write_exercises(solutions, exercises)
    assert student.drift(solutions, exercises) == []
    assert not (exercises / "stale.ipynb").exists()


# ---------------------------------------------------------------------------
# the real exercises
# ---------------------------------------------------------------------------


@needs_solutions
def test_exercises_do_not_drift_from_the_solutions():
    problems = student.drift()
    assert not problems, f"run `make exercises`: {problems}"


@needs_solutions
def test_check_command_reports_drift(tmp_path, monkeypatch):
    assert student.main(["check"]) == 0
    monkeypatch.setattr(student, "EXERCISES", tmp_path)
    assert student.main(["check"]) == 1


@needs_solutions
@pytest.mark.parametrize("name", SOLUTION_NAMES)
def test_stubs_name_their_exercise_and_keep_the_task_text(name):
    solution = student.read(student.SOLUTIONS / name)
    exercise = student.read(student.EXERCISES / name)
    number = name[2]
    stubs = student.stubs(solution)
    assert stubs, "every exercise has at least one task"
    for stub in stubs:
        assert re.match(r"Exercise [345] -- \S", stub), stub
    assert any(stub.startswith(f"Exercise {number} --") for stub in stubs)
    sources = [c.source for c in exercise.cells]
    for stub in stubs:
        lines = [student.stub_line(indent, stub) for indent in ("", " " * 4, " " * 8)]
        assert any(line in s for s in sources for line in lines), stub
    kept = [
        c.source
        for c in solution.cells
        if c.cell_type == "markdown" and "solution" not in student.tags(c)
    ]
    assert kept == [c.source for c in exercise.cells if c.cell_type == "markdown"]
    assert any("**Task:**" in s for s in kept)
    lines = {line.strip() for s in sources for line in s.splitlines()}
    for line in student.solution_lines(solution):
        assert line not in lines, f"solution line in the exercise: {line}"


@needs_solutions
def test_given_code_stays():
    ex4 = "\n".join(c.source for c in student.read(student.EXERCISES / "ex4_lrp.ipynb").cells)
    solution = student.read(student.SOLUTIONS / "ex4_lrp.ipynb")
    convpx = next(c.source for c in solution.cells if c.source.startswith("class ConvPx"))
    assert convpx in ex4, "ConvPx is given as it is"
    for given in (
        "features[i] = ConvPx(features[i])",
        "features[i] = Conv(features[i], ",
        "lrpmodel.eval()",
        "utils.bounds(X)",
    ):
        assert given in ex4, given


@needs_solutions
def test_exercises_pass_the_linter():
    """`make lint` lints notebooks too: a stub must not leave a name undefined or unused."""
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(student.EXERCISES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout
