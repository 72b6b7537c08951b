"""Other Pythons and numpy 1.26 for tests/test_portability.py, prepared in the background.

pip's dry runs for Python 3.10, 3.12 and 3.13 and the download of numpy 1.26 wait on the
network (about a minute), not on the CPU: conftest.py starts them (``BACKGROUND.start``) as
soon as the tests that need them are collected, so they run beside the other tests; those
tests then wait for their results (``BACKGROUND.result``).
"""

import concurrent.futures
import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from lrpkit import tasks

ROOT = Path(__file__).resolve().parents[1]
OTHER_PYTHONS = ("3.10", "3.12", "3.13")  # with CI's own 3.11: pyproject's requires-python
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*/*.ipynb"))
#: the tests that wait for the background's jobs, by name: which jobs each needs
NEEDS = {
    "test_students_requirements_resolve_and_the_code_compiles": OTHER_PYTHONS,
    "test_numpy_1_26_builds_the_same_standin_and_input": ("numpy-1.26",),
}
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


def write_sources(folder):
    """Every Python file of the kit and its tests, and the notebooks' code as .py files
    written into ``folder`` (named notebook-code*)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [ROOT / "utils.py", *sorted((ROOT / "lrpkit").rglob("*.py"))]
    files += sorted((ROOT / "tests").rglob("*.py"))
    for path in NOTEBOOKS:
        out = folder / f"{path.parent.name}-{path.stem}.py"
        out.write_text(notebook_code(path), encoding="utf-8")
        files.append(out)
    return files


def run(argv, timeout, check=False, **options):
    """subprocess.run, its process ended by ``BACKGROUND.close`` when the session ends first
    (a run stopped early, --collect-only)."""
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with subprocess.Popen(argv, start_new_session=True, **pipes, **options) as proc:
        BACKGROUND.running.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            BACKGROUND.running.discard(proc)
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def resolve_and_compile(version, python, sources, tmp):
    """pip's dry run of requirements.txt for that Python (in a throwaway venv, by this venv's
    pip), and a byte-compile of every source with it."""
    venv = tmp / f"venv{version}"
    run([python, "-m", "venv", "--without-pip", venv], 120, check=True)
    report = tmp / f"report{version}.json"
    pip = run(
        [sys.executable, "-m", "pip", "--python", tasks.venv_python(venv)]
        + ["install", "--dry-run", "--ignore-installed", "--no-cache-dir", "-q"]
        + ["--disable-pip-version-check", "--report", report, "-r", "requirements.txt"],
        600,
        cwd=ROOT,
    )
    compiled = run([python, "-c", COMPILE, *map(str, sources)], 300)
    return pip, report, compiled


def fetch_numpy(target):
    """numpy 1.26.4's wheel unpacked into ``target`` (to put first on a PYTHONPATH)."""
    run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        + ["--only-binary=:all:", "--no-deps", "--target", target, "numpy==1.26.4"],
        600,
        check=True,
    )
    return target


class Background:
    """The jobs, each started once, in threads (they wait on pip's downloads)."""

    def __init__(self):
        self.pool = None
        self.folder = None
        self.jobs = {}  # name -> Future (of None: that Python is missing)
        self.running = set()  # their processes now
        self._sources = None

    def start(self, names):
        """Start the jobs named (a Python's version, or "numpy-1.26") not started yet."""
        if self.pool is None:
            self.folder = Path(tempfile.mkdtemp(prefix="lrpkit-portability-"))
            self.pool = concurrent.futures.ThreadPoolExecutor(len(OTHER_PYTHONS) + 1)
        for name in names:
            if name in self.jobs:
                continue
            if name == "numpy-1.26":
                self.jobs[name] = self.pool.submit(fetch_numpy, self.folder / "numpy-1.26")
                continue
            python = find_python(name)
            if python is None:
                self.jobs[name] = None
                continue
            sources = self.sources()
            args = (name, python, sources, self.folder)
            self.jobs[name] = self.pool.submit(resolve_and_compile, *args)

    def sources(self):
        """The files every Python compiles (written once)."""
        if self._sources is None:
            self.start(())
            self._sources = write_sources(self.folder / "notebook-code")
        return self._sources

    def result(self, name):
        """The job's result (started now if it was not); None for a missing Python."""
        self.start([name])
        job = self.jobs[name]
        return None if job is None else job.result()

    def close(self):
        """End what still runs (no test waits for it any more) and remove the folder."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            for proc in list(self.running):  # pip --python starts a pip of its own
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            self.pool.shutdown(wait=True)
            shutil.rmtree(self.folder, ignore_errors=True)
            self.pool = None


BACKGROUND = Background()
