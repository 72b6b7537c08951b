"""The kit runs where students are: Python 3.10 to 3.13, numpy 1.26 or 2.x, and without make.

For each of Python 3.10, 3.12 and 3.13 (CI runs 3.11 itself) pip resolves the students'
requirements (a dry run: nothing downloads but metadata) and that Python compiles the kit,
the tests and the notebooks' code. The interpreters come from pyenv or ``python3.X`` on PATH;
in CI (CI set) a missing one fails, elsewhere it skips.
"""

import ast
import concurrent.futures
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy
import pytest

import utils
from lrpkit import tasks
from lrpkit.selfcheck import checks

ROOT = Path(__file__).resolve().parents[1]
OTHER_PYTHONS = ("3.10", "3.12", "3.13")  # with CI's own 3.11: pyproject's requires-python
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.ipynb"))
COMPILE = """\
import json, sys
bad = []
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as f:
            compile(f.read(), path, "exec", dont_inherit=True)
    except SyntaxError as error:
        bad.append(f"{path}:{error.lineno}: {error.msg}")
print(json.dumps({"version": "%d.%d" % sys.version_info[:2], "count": len(sys.argv) - 1,
                  "bad": bad}))
"""


# ---------------------------------------------------------------------------
# other Pythons: resolve the students' requirements, compile everything
# ---------------------------------------------------------------------------


def _version_of(python):
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _launcher(version):
    """Windows' py launcher's interpreter of that version, or None."""
    if not shutil.which("py"):
        return None
    out = subprocess.run(
        ["py", f"-{version}", "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def find_python(version):
    """An interpreter of that version: ``python3.X`` on PATH, pyenv's newest 3.X.Y, or
    Windows' ``py -3.X``."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    pyenv = glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}"))
    patch = lambda path: [int(x) for x in re.findall(r"\d+", Path(path).parents[1].name)]
    for python in [shutil.which(f"python{version}"), *sorted(pyenv, key=patch, reverse=True)]:
        if python and _version_of(python) == version:  # a pyenv shim may name another
            return python
    return _launcher(version)


def notebook_code(path):
    """A notebook's code cells as one Python file; IPython magics and ! lines become blank."""
    cells = [
        c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"
    ]
    lines = "\n\n".join(cells).splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines) + "\n"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Every Python file of the kit and its tests, and the notebooks' code as .py files."""
    folder = tmp_path_factory.mktemp("notebook-code")
    files = [ROOT / "utils.py", *sorted((ROOT / "lrpkit").rglob("*.py"))]
    files += sorted((ROOT / "tests").rglob("*.py"))
    for path in NOTEBOOKS:
        out = folder / f"{path.parent.name}-{path.stem}.py"
        out.write_text(notebook_code(path), encoding="utf-8")
        files.append(out)
    return files


def resolve_and_compile(version, python, sources, tmp):
    """pip's dry run of requirements.txt for that Python (in a throwaway venv, by this venv's
    pip), and a byte-compile of every source with it."""
    venv = tmp / f"venv{version}"
    subprocess.run([python, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    report = tmp / f"report{version}.json"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", tasks.venv_python(venv)]
        + ["install", "--dry-run", "--ignore-installed", "--no-cache-dir", "-q"]
        + ["--disable-pip-version-check", "--report", report, "-r", "requirements.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    compiled = subprocess.run(
        [python, "-c", COMPILE, *map(str, sources)], capture_output=True, text=True, timeout=300
    )
    return pip, report, compiled


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


@pytest.fixture(scope="module")
def other_pythons(sources, tmp_path_factory):
    """The three Pythons' runs, started together in threads; {version: future or None}."""
    tmp = tmp_path_factory.mktemp("pythons")
    pool = concurrent.futures.ThreadPoolExecutor(len(OTHER_PYTHONS))
    runs = {}
    for version in OTHER_PYTHONS:
        python = find_python(version)
        runs[version] = python and pool.submit(resolve_and_compile, version, python, sources, tmp)
    yield runs
    pool.shutdown(wait=True)


@pytest.mark.slow
@pytest.mark.parametrize("version", OTHER_PYTHONS)
def test_students_requirements_resolve_and_the_code_compiles(version, other_pythons):
    run = other_pythons[version]
    if run is None:
        missing(version)
    pip, report, compiled = run.result()
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
def test_numpy_1_26_builds_the_same_standin_and_input(tmp_path):
    """The stand-in's weights and the grading input hash as data/reference/meta.json says,
    with this environment's numpy (2.x) and with numpy 1.26.4 put first on the path."""
    meta = json.loads((checks.REFERENCE / "meta.json").read_text())
    old = tmp_path / "numpy-1.26"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        + ["--only-binary=:all:", "--no-deps", "--target", old, "numpy==1.26.4"],
        check=True,
        timeout=600,
    )
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
