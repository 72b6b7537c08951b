"""The student bundle (lrpkit.authoring.student bundle): what it holds and leaves out, and
its notebooks run as a student runs them, in the bundle, offline, without the kit installed."""

import ast
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_student import HAVE_SOLUTIONS, ROOT, SOLUTION_NAMES, needs_solutions

from lrpkit.authoring import student
from lrpkit.layout import GRADE_SKIP_TAG


def cells(notebook):
    return [(c.cell_type, c.source) for c in notebook.cells]


def first_difference(notebook, fixed):
    """The one cell in which notebook and fixed (the same with one more task solved) differ."""
    assert [t for t, _ in cells(notebook)] == [t for t, _ in cells(fixed)]
    differ = [i for i, (a, b) in enumerate(zip(cells(notebook), cells(fixed))) if a != b]
    assert len(differ) == 1, f"solving one task changes one cell, not cells {differ}"
    return differ[0]


def run_the_tasks(name, client, notebooks, stubs):
    """Run notebooks[0] cell by cell in client's kernel. When a cell raises, it must be the
    NotImplementedError of the first task k not done, with its stub's text; then go on in
    notebooks[k + 1] (task k solved) from the one cell that differs, the one solving task k,
    as a student who fixes that cell and runs on. The last notebook must run to the end as
    the grader runs it: its display-only cells (tagged grade-skip: plots, the explorer, the
    curves of Exercise 5) left out once every task is solved; nbval runs them in the
    solution notebooks (tests/test_notebooks.py). Returns {index: the last output text} of
    the check cells."""
    k, index, verdicts = 0, 0, {}
    notebook = client.nb = notebooks[0]
    while index < len(notebook.cells):
        cell = notebook.cells[index]
        if k == len(stubs) and GRADE_SKIP_TAG in student.tags(cell):
            index += 1
            continue
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as error:
            where = f"{name}, cell {index} ({cell.source.splitlines()[0]!r})"
            assert k < len(stubs), f"{where}: {error.ename}: {error.evalue}, all tasks solved"
            assert (error.ename, error.evalue) == ("NotImplementedError", stubs[k]), (
                f"{where}: task {k} stops with {stubs[k]!r}, not {error.ename}: {error.evalue}"
            )
            k, fixed = k + 1, notebooks[k + 1]
            solving = first_difference(notebook, fixed)
            assert solving <= index, f"{where}: the cell solving task {k - 1} comes after it"
            notebook = client.nb = fixed
            index = solving
            continue
        if "check" in student.tags(cell):
            verdicts[index] = "".join(o.get("text", "") for o in cell.outputs)
        index += 1
    assert k == len(stubs), f"{name} ran through with task {k} ({stubs[k]!r}) not done"
    return verdicts


#: run in the bundle's kernel after the notebook: where the references and the kit modules it
#: used come from, and whether the reference LRP can be found
OWN_KIT = (
    "import importlib.util, json, sys, lrpkit.selfcheck.checks as c\n"
    "print(json.dumps([str(c.REFERENCE), importlib.util.find_spec('lrpkit.reference') is None,\n"
    "    sorted({m.__file__ for n, m in list(sys.modules.items())\n"
    "        if n.split('.')[0] in ('utils', 'lrpkit') and getattr(m, '__file__', None)})]))"
)


@pytest.fixture(scope="module")
def kernel_env(standin_weights_file):
    """The notebooks' own model from a saved stand-in (the same weights, loaded in 0.5 s)."""
    no_network = {k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy")}
    return dict(os.environ, VGG16_WEIGHTS=str(standin_weights_file), MPLBACKEND="Agg", **no_network)


@pytest.mark.slow
@needs_solutions
@pytest.mark.parametrize("name", SOLUTION_NAMES)
def test_running_an_exercise_stops_at_each_task_with_its_message(name, kernel_env, offline_bundle):
    """Run the bundle's notebook as a student would: in the bundle folder, without the kit
    installed, offline (castle.jpg copied in). It stops at the first task not done, with that
    task's NotImplementedError; with that task solved (its cell from the solution) and run on
    from that cell in the same kernel, at the next -- never with another error first -- and
    after the last task it runs to the end (less its display-only cells). Running on gives
    what Run All gives: the cells before the solved one are identical to those already run
    (asserted), and every cell from it on runs again (only what the stopped run defined may
    linger, as in a student's kernel). Every self-check passes once its task is solved,
    against the bundle's references; the kit modules the notebook used are the bundle's; the
    reference LRP is absent."""
    solution = student.read(student.SOLUTIONS / name)
    stubs = student.stubs(solution)
    shipped = student.read(offline_bundle / name)
    assert cells(shipped) == cells(student.exercise_notebook(solution)), "the student version"
    notebooks = [in_bundle(shipped)]
    notebooks += [
        in_bundle(student.exercise_notebook(solution, solved=range(k)))
        for k in range(1, len(stubs) + 1)
    ]
    client = NotebookClient(
        notebooks[0],
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(offline_bundle)}},
    )
    with client.setup_kernel(env=kernel_env):
        verdicts = run_the_tasks(name, client, notebooks, stubs)
        probe = nbformat.v4.new_code_cell(OWN_KIT)
        client.nb = nbformat.v4.new_notebook(cells=[probe])
        client.execute_cell(probe, 0)
    failing = {i: v for i, v in verdicts.items() if not v.startswith("PASS check_")}
    assert verdicts and not failing, f"{name}: check cells (index: output) not passing: {failing}"
    reference, absent, files = json.loads(probe.outputs[0]["text"])
    assert Path(reference) == offline_bundle / "data" / "reference", f"references: {reference}"
    assert absent, "lrpkit.reference (the reference LRP) can be imported in the bundle"
    outside = [f for f in files if not Path(f).is_relative_to(offline_bundle)]
    assert files and not outside, f"kit modules from outside the bundle: {outside}"


# ---------------------------------------------------------------------------
# the student bundle
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    if not HAVE_SOLUTIONS or not (ROOT / "lrpkit" / "selfcheck" / "checks.py").is_file():
        pytest.skip("solutions and checks not written yet")
    out = tmp_path_factory.mktemp("bundle") / "student-bundle"
    student.bundle(out)
    return out


@pytest.fixture(scope="module")
def offline_bundle(bundle, tmp_path_factory, castle_file):
    """A copy of the bundle with castle.jpg put into data/, as a student without network
    would (the bundle itself never ships it)."""
    out = tmp_path_factory.mktemp("offline") / "student-bundle"
    shutil.copytree(bundle, out)
    shutil.copyfile(castle_file, out / "data" / "castle.jpg")
    return out


#: first cell of notebooks run in the bundle: a student has no editable install of the kit
DROP_KIT = "import sys\nsys.meta_path[:] = [f for f in sys.meta_path if 'ditable' not in repr(f)]"


def in_bundle(notebook):
    notebook.cells.insert(0, nbformat.v4.new_code_cell(DROP_KIT))
    return notebook


def bundle_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_bundle_holds_what_students_need_and_nothing_else(bundle):
    files = bundle_files(bundle)
    needed = ["README.md", "utils.py", "lrpkit/__init__.py", "lrpkit/selfcheck/checks.py"]
    needed += [
        "lrpkit/explorer/__init__.py",
        "lrpkit/explorer/engine.py",
        "lrpkit/explorer/widget.py",
        "environment.yml",
        "requirements.txt",
        *SOLUTION_NAMES,
    ]
    for name in needed:
        assert name in files, name
    references = bundle_files(ROOT / "data" / "reference")
    assert [f for f in files if f.startswith("data/reference/")] == [
        "data/reference/" + name for name in references
    ]
    assert (bundle / student.MARK).is_file()
    files.remove(student.MARK)
    allowed = re.compile(
        r"(README\.md|utils\.py|environment\.yml|requirements\.txt|pyproject\.toml"
        r"|lrpkit/(__init__|sheet)\.py|lrpkit/(selfcheck|explorer)/\w+\.py"
        r"|data/reference/.*|ex[345]_\w+\.ipynb)"
    )
    assert [f for f in files if not allowed.fullmatch(f)] == []
    assert "data/castle.jpg" not in files, "third-party image: fetched on first use, not shipped"
    assert "lrpkit/reference/lrp.py" not in files
    assert (
        "lrpkit/reference/perturbation.py" not in files
        and "lrpkit/reference/references.py" not in files
    )
    for name in SOLUTION_NAMES:
        assert (bundle / name).read_text() == (student.EXERCISES / name).read_text()
    init = ast.parse((bundle / "lrpkit" / "__init__.py").read_text())
    imports = [n for n in ast.walk(init) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(n) for n in imports] == ["import importlib"]  # checks load lazily


def test_bundle_readme_names_what_students_must_keep(bundle):
    """The names the grader calls, the hand-in format and the exact offline command."""
    readme = (bundle / "README.md").read_text()
    for name in (
        "gradient_x_input(model, X, c)",
        "Conv(conv, gamma)",
        "lrp_relevance(lrpmodel, X, c)",
        "gradient_x_input_ex3(model, X, c)",
        "perturbation_curve(model, X, R, c, size, steps, seed)",
    ):
        assert f"`{name}`" in readme, name
    assert "VGG16_WEIGHTS=standin .venv/bin/jupyter lab" in readme
    assert "<student id>.ipynb" in readme and "<student id>/" in readme
    assert "`ex5_faithfulness.ipynb` if you did the bonus" in readme
    assert "`Total: 50/50`" in readme and "`bonus: not handed in`" in readme
    assert "Exercise 3's checks grade `gradient_x_input`" in readme
    for name in SOLUTION_NAMES:
        assert f"| `{name}` |" in readme, name
    assert "{" not in readme, "an unfilled template field"


def secret_lines():
    return student.solution_lines(*map(student.read, sorted(student.SOLUTIONS.glob("*.ipynb"))))


def test_no_solution_line_leaks_into_the_bundle(bundle):
    secrets = secret_lines()
    assert secrets, "the solutions have solution regions"
    leaks = []
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # binary (references, castle.jpg): look for the bytes
            leaks += [(path.name, s) for s in secrets if len(s) >= 16 and s.encode() in data]
            continue
        if path.suffix == ".ipynb":
            notebook = nbformat.reads(text, as_version=4)
            text = "\n".join(c.source for c in notebook.cells)
        lines = {line.strip() for line in text.splitlines()}
        leaks += [(path.name, s) for s in secrets if s in lines]
    assert not leaks


def is_gradient_trick(node):
    """a * (b / c).detach() or .data: the ratio detached, as in Conv.forward."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return False
    for side in (node.left, node.right):
        inner = None
        if isinstance(side, ast.Call) and isinstance(side.func, ast.Attribute):
            inner = side.func.value if side.func.attr == "detach" else None
        elif isinstance(side, ast.Attribute) and side.attr == "data":
            inner = side.value
        if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Div):
            return True
    return False


def test_is_gradient_trick_finds_the_answer():
    tree = ast.parse("def forward(self, X):\n    return zp * (z / zp).detach()")
    assert any(is_gradient_trick(n) for n in ast.walk(tree))
    tree = ast.parse("y = (z / zp).data * zp")
    assert any(is_gradient_trick(n) for n in ast.walk(tree))
    assert not any(is_gradient_trick(n) for n in ast.walk(ast.parse("y = a * (b / c)")))


def test_bundled_code_holds_no_answer(bundle):
    """No gradient_x_input, no Conv class, no Module whose forward uses the gradient trick,
    and no import of the reference solution lrpkit.reference.lrp."""
    for path in sorted(bundle.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(bundle)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.name not in ("gradient_x_input", "lrp", "lrp_relevance"), where
            if isinstance(node, ast.ClassDef):
                assert node.name != "Conv", where
                bases = {ast.unparse(b) for b in node.bases}
                if bases & {"torch.nn.Module", "nn.Module", "Module"}:
                    assert not any(is_gradient_trick(n) for n in ast.walk(node)), where
            if isinstance(node, ast.ImportFrom):
                names = {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
                assert not names & {"lrpkit.reference.lrp", "lrp"}, where
            if isinstance(node, ast.Import):
                assert all(a.name != "lrpkit.reference.lrp" for a in node.names), where


def shipped_module(bundle, name):
    """Whether module `name` (dotted) is a file or package of the bundle."""
    path = bundle.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_bundled_code_imports_nothing_outside_the_bundle(bundle):
    """What ships never imports a kit module that does not ship (the reference in
    lrpkit.reference, grading, authoring) nor looks for one (find_spec): it behaves the same
    for students and instructors. The lazy aliases of lrpkit/__init__.py count as imports."""
    instructor = {
        "lrpkit.reference.lrp",
        "lrpkit.reference.references",
        "lrpkit.reference.perturbation",
    }
    shipped = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*.py")}
    assert "lrpkit/explorer/__init__.py" in shipped and "lrpkit/selfcheck/onepixel.py" in shipped
    aliases = ast.literal_eval(
        next(
            n.value
            for n in ast.parse((bundle / "lrpkit" / "__init__.py").read_text()).body
            if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "_SHIPPED_ALIASES"
        )
    )
    assert all(shipped_module(bundle, name) for name in aliases.values()), aliases
    for path in sorted(bundle.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                kit = [a.name for a in node.names if a.name.split(".")[0] == "lrpkit"]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lrpkit"):
                kit = [node.module] + [  # `from lrpkit.x import y`: y may be a module
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if shipped_module(ROOT, f"{node.module}.{a.name}")
                ]
            else:
                kit = []
            assert all(shipped_module(bundle, name) for name in kit), (path.name, kit)
    for path in sorted(bundle.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = set()
            if isinstance(node, ast.Import):
                names = {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("find_spec"):
                names = {ast.unparse(a).strip("'\"") for a in node.args}
                assert not any(n.startswith("lrpkit") for n in names), (path.name, names)
            assert not names & instructor, (path.name, names)


def test_bundle_command(tmp_path):
    if not HAVE_SOLUTIONS or not (ROOT / "lrpkit" / "selfcheck" / "checks.py").is_file():
        pytest.skip("solutions and checks not written yet")
    assert student.main(["bundle", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "README.md").is_file()
    assert not (tmp_path / "b" / "data" / "castle.jpg").exists()
    assert student.main(["bundle", "--out", str(ROOT)]) == 2, "never empties the kit itself"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert student.main(["bundle", "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert student.main(["bundle", "--out", str(tmp_path / "b")]) == 0, "rebuilds"
