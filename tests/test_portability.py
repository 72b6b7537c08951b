"""The kit runs where students are: Python 3.10 to 3.13, numpy 1.26 or 2.x, and without make.

For each of Python 3.10, 3.12 and 3.13 (CI runs 3.11 itself) pip resolves the students'
requirements (a dry run: nothing downloads but metadata) and that Python compiles the kit,
the tests and the notebooks' code. The interpreters come from pyenv or ``python3.X`` on PATH;
in CI (CI set) a missing one fails, elsewhere it skips. pip's jobs wait on the network, so they
start in the background as soon as these tests are collected (tests/pythons.py, conftest.py).
"""

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy
import pytest
from pythons import BACKGROUND, NOTEBOOKS, OTHER_PYTHONS, notebook_code

import utils
from lrpkit import tasks
from lrpkit.selfcheck import checks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sources():
    """Every Python file of the kit and its tests, and the notebooks' code as .py files."""
    return BACKGROUND.sources()


def missing(version):
    """A Python to test with is not there: fails in CI (which has them all), skips elsewhere."""
    message = (
        f"Python {version} not found (neither python{version} on PATH nor pyenv's "
        f"~/.pyenv/versions/{version}.*): install it, e.g. `pyenv install {version}`"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message + " (skipped outside CI only)")


def test_a_missing_python_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="pyenv install 3.10"):
        missing("3.10")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        missing("3.10")


@pytest.mark.slow
@pytest.mark.parametrize("version", OTHER_PYTHONS)
def test_students_requirements_resolve_and_the_code_compiles(version):
    """(Started in the background when collected: tests/pythons.py.)"""
    run = BACKGROUND.result(version)
    if run is None:
        missing(version)
    pip, report, compiled = run
    assert pip.returncode == 0, f"pip cannot install requirements.txt on {version}:\n{pip.stderr}"
    plan = json.loads(report.read_text())
    assert plan["environment"]["python_version"] == version
    chosen = {
        item["metadata"]["name"].lower(): item["metadata"]["version"] for item in plan["install"]
    }
    from packaging.requirements import Requirement

    wanted = [
        Requirement(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for req in wanted:
        if req.marker is not None and not req.marker.evaluate({"python_version": version}):
            continue  # tomli: Python 3.10 only
        assert req.specifier.contains(chosen[req.name.lower()], prereleases=True), (req, chosen)
    assert compiled.returncode == 0, compiled.stderr
    result = json.loads(compiled.stdout)
    assert result["version"] == version and result["count"] > 40
    assert result["bad"] == [], f"Python {version} cannot compile: " + "; ".join(result["bad"])


def test_notebook_code_strips_magics_only(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("%matplotlib inline\nx = 1\n  !ls\ny = x")]
    )
    nbformat.write(nb, str(tmp_path / "magics.ipynb"))
    assert notebook_code(tmp_path / "magics.ipynb") == "\nx = 1\n\ny = x\n"


@pytest.mark.slow
def test_notebooks_use_no_newer_python_api(sources):
    """vermin (as `make lint` runs it on the .py files) on the notebooks' code."""
    code = [str(p) for p in sources if p.parent.name.startswith("notebook-code")]
    assert len(code) == len(NOTEBOOKS) >= 4
    done = subprocess.run(
        [sys.executable, *tasks.LINT[2][: -len(tasks.VERMIN_PATHS)], *code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_too_new_api_fails_the_lint(tmp_path):
    """The lint's vermin step fails on 3.11-only code that ruff (py310) lets through."""
    (tmp_path / "new.py").write_text("import tomllib\nfrom datetime import UTC\n")
    done = subprocess.run(
        [sys.executable, *tasks.LINT[2][: -len(tasks.VERMIN_PATHS)], str(tmp_path / "new.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0 and "tomllib" in done.stdout and "UTC" in done.stdout


# ---------------------------------------------------------------------------
# numpy 1.26 and 2.x build the same stand-in
# ---------------------------------------------------------------------------

FINGERPRINTS = """\
import json, numpy, utils
from lrpkit.selfcheck import checks
with numpy.load(checks.REFERENCE / "input.npz") as npz:
    pixels = npz["castle_pixels"]
print(json.dumps({
    "numpy": numpy.__version__,
    "standin": checks.fingerprint(utils.standin_state_dict()),
    "input": checks.input_sha256(utils.normalize(pixels / 255.0)),
}))
"""


def stored_pixels():
    with numpy.load(checks.REFERENCE / "input.npz") as npz:
        return npz["castle_pixels"]


def fingerprints(env):
    done = subprocess.run(
        [sys.executable, "-c", FINGERPRINTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
def test_numpy_1_26_builds_the_same_standin_and_input():
    """The stand-in's weights and the grading input hash as data/reference/meta.json says,
    with this environment's numpy (2.x) and with numpy 1.26.4 put first on the path."""
    meta = json.loads((checks.REFERENCE / "meta.json").read_text())
    old = BACKGROUND.result("numpy-1.26")  # downloaded in the background (tests/pythons.py)
    here = {  # this environment's numpy, in this process
        "numpy": numpy.__version__,
        "standin": checks.fingerprint(utils.standin_state_dict()),
        "input": checks.input_sha256(utils.normalize(stored_pixels() / 255.0)),
    }
    runs = [here, fingerprints(dict(os.environ, PYTHONPATH=str(old)))]
    assert runs[0]["numpy"].startswith("2.") and runs[1]["numpy"] == "1.26.4"
    for run in runs:
        assert run["standin"] == meta["standin_fingerprint"], run["numpy"]
        assert run["input"] == meta["input_sha256"], run["numpy"]


# ---------------------------------------------------------------------------
# without make: python -m lrpkit.tasks
# ---------------------------------------------------------------------------


def test_venv_python_on_windows_and_elsewhere():
    assert tasks.venv_python("v", windows=True) == Path("v", "Scripts", "python.exe")
    assert tasks.venv_python("v", windows=False) == Path("v", "bin", "python")


def test_lock_only_with_its_python():
    version = tasks.lock_python()
    args, mode = tasks.install_plan(version)
    assert args == ["-r", "requirements-dev.txt", "-c", "requirements-lock.txt"], mode
    assert tasks.install_plan("3.13")[0] == ["-r", "requirements-dev.txt"]
    with pytest.raises(tasks.TaskError, match="lock"):
        tasks.install_plan("3.13", need_lock=True)


def make_recipe(target):
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{target}:.*\n((?:\t.*\n?)*)", text, flags=re.M)
    return [line.strip() for line in match.group(1).splitlines()]


def test_make_and_tasks_run_the_same_commands():
    """`make demo/lint/test/lab` and `python -m lrpkit.tasks demo/test/lab` do the same."""
    py = "$(PY) "
    assert make_recipe("demo") == [py + shlex.join(tasks.DEMO)]
    assert make_recipe("lint") == [py + shlex.join(c) for c in tasks.LINT]
    assert make_recipe("test") == [py + shlex.join(tasks.TEST)]
    assert make_recipe("lab") == ["$(VENV)/bin/jupyter " + " ".join(tasks.LAB[2:])]
    assert make_recipe("setup") == ["$(PYTHON) -m lrpkit.tasks setup --venv $(VENV)"]


def run_tasks(*args, env=None):
    """python -m lrpkit.tasks ... from the kit's folder with this venv (nothing reinstalls
    when `make setup` installed it)."""
    return subprocess.run(
        [sys.executable, "-m", "lrpkit.tasks", *args, "--venv", sys.prefix],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_demo_without_make(tmp_path):
    out = tmp_path / "castle.png"
    done = run_tasks("demo", "--out", str(out), env=dict(os.environ, VGG16_WEIGHTS="standin"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    assert f"+ {tasks.venv_python(sys.prefix)} -m lrpkit.demo" in done.stdout
    assert "STAND-IN" in done.stdout


@pytest.mark.slow
def test_tests_without_make():
    """`python -m lrpkit.tasks test ARGS` lints, then runs pytest ARGS (here: one fast test)."""
    done = run_tasks(
        "test", "tests/test_portability.py", "-k", "venv_python_on", "-p", "no:cacheprovider"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for command in [*tasks.LINT, tasks.TEST]:
        assert f"+ {tasks.venv_python(sys.prefix)} {' '.join(command)}" in done.stdout, command
    assert re.search(r"\b1 passed\b", done.stdout), done.stdout


def test_tasks_refuses_unknown_arguments(capsys):
    with pytest.raises(SystemExit):
        tasks.main(["setup", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_tasks_module_needs_only_the_standard_library():
    """It runs before anything is installed: no third-party import at module level."""
    tree = ast.parse((ROOT / "lrpkit" / "tasks.py").read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name.split(".")[0] for n in top for a in n.names if isinstance(n, ast.Import)}
    names |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom)}
    assert names <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)
    init = ast.parse((ROOT / "lrpkit" / "__init__.py").read_text())
    imports = [ast.unparse(n) for n in init.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert imports == ["import importlib"]  # the shipped checks load lazily
