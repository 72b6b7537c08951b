"""Grade submitted notebooks with nbval (instructors): ``make grade SUBMISSIONS=dir``.

``python -m lrpkit.grade SUBMISSIONS --workers 2 --out grades`` grades every ``<student
id>.ipynb`` (or folder ``<student id>/`` of notebooks) in SUBMISSIONS and writes
``grades/grades.csv`` (student, ex3, ex4, total, status, reason) and ``grades/feedback/<student
id>.md`` (every check's verdict and hint).

Each submission runs in its own kernel under ``pytest --nbval`` in a private sandbox folder
(its own copies of utils.py, lrpkit's checks and data/reference; HOME and TMPDIR inside it;
VGG16_WEIGHTS=standin, so no weights and no network). The graded notebook is built here: the
student's code cells (their check cells dropped, their outputs ignored), then for every check
cell of the solution notebooks a guard cell (restores builtins and streams, re-imports
utils and lrpkit.checks from the sandbox copy) and the instructor's check cell carrying its
stored expected output. A check earns its share of the exercise's 25 points when nbval finds
its output equal to the stored PASS line. Only checks below a solution region are graded (one
above every task, like the check of the given input X, checks given code), and a student's
unchanged copy of a given display-only cell (tag ``grade-skip``) is not run.

Student code runs with the grader's user rights. The grader never trusts the kernel: it reads
all submissions into memory first, keeps results in memory, writes grades.csv atomically,
reads cell results from a pipe the kernel does not inherit, kills every process a run started,
and after each run compares the kit, data/reference, the solutions and the submissions (and
each sandbox's copies) with what they were, restoring any change. Runs that overlapped a change
are graded again one at a time; a submission that changes them when run alone is marked
``tampered``. This guards against accidents and the usual tricks, not against code written to
attack the grader itself: for that, run the grader in a container or a throw-away account.
"""

import argparse
import ast
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from lrpkit.layout import BEGIN, STUDENT_CODE

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "notebooks" / "solutions"
EXERCISES = ("ex3", "ex4")
POINTS = 25  # per exercise, shared equally by its check cells
COLUMNS = ("student", *EXERCISES, "total", "status", "reason")
#: what every sandbox gets from the kit (never lrpkit/lrp.py, the reference solution)
KIT = STUDENT_CODE
DATA = ("data/reference", "data/castle.jpg")
MAX_NOTEBOOK_BYTES = 50 * 2**20
CELL_TIMEOUT = 120  # seconds per cell
TIMEOUT = 600  # seconds per submission, everything included
PLUGIN = Path(__file__).with_name("grade_plugin.py")
PLUGIN_NAME = "_lrpkit_grade_plugin.py"  # its name in each run's control folder
OUTPUT_CAP = 2_000_000  # characters of output kept per cell; the rest is dropped
STANDIN_FILE = "standin-vgg16.pt"
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")


class GradingError(RuntimeError):
    """The course itself cannot be graded (solutions without check outputs, missing kit)."""


# ---------------------------------------------------------------------------
# the course: check cells with their expected outputs, and the files every sandbox gets
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    exercise: str
    number: int  # 1-based within the exercise
    notebook: str
    source: str
    outputs: tuple
    points: float

    @property
    def name(self):
        return f"{self.exercise} check {self.number}"

    @property
    def expected(self):
        return "".join(o.get("text", "") for o in self.outputs if o.get("output_type") == "stream")


@dataclass
class Course:
    checks: list
    files: dict  # path relative to a sandbox -> bytes
    standin: bool = True  # pre-generate the stand-in weights once and share them read-only
    skip: frozenset = frozenset()  # given display-only cells (tag grade-skip) not to run


def _tags(cell):
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []


def load_checks(solutions=SOLUTIONS):
    """The graded check cells of the solution notebooks: tagged ``check`` and ``ex3``/``ex4``,
    and below a solution region. A check above every task (such as one of the given input
    X) checks given code, which earns no points."""
    found = {exercise: [] for exercise in EXERCISES}
    for path in sorted(Path(solutions).glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        task_seen = False
        for index, cell in enumerate(nb.cells):
            tags = _tags(cell)
            if cell.cell_type == "code" and "solution" not in tags:
                task_seen |= any(BEGIN.match(line) for line in cell.source.splitlines())
            exercise = next((t for t in tags if t in EXERCISES), None)
            if cell.cell_type != "code" or "check" not in tags or exercise is None:
                continue
            if not task_seen:
                continue
            if not any(o.get("output_type") == "stream" for o in cell.outputs):
                raise GradingError(
                    f"{path.name}, cell {index}: the check cell has no stored output; execute "
                    "the solution notebook and save it with its check verdicts"
                )
            found[exercise].append((path.name, cell))
    checks = []
    for exercise, cells in found.items():
        if not cells:
            raise GradingError(f"no check cells tagged 'check' and {exercise!r} in {solutions}")
        for number, (name, cell) in enumerate(cells, 1):
            outputs = tuple(nbformat.from_dict(dict(o)) for o in cell.outputs)
            checks.append(Check(exercise, number, name, cell.source, outputs, POINTS / len(cells)))
    return checks


def _normal(source):
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def load_skips(solutions=SOLUTIONS):
    """Sources of the given cells tagged ``grade-skip``: display only (figures, top-5, the
    explorer), so a student's unchanged copy of one need not run when grading."""
    found = set()
    for path in sorted(Path(solutions).glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type == "code" and "grade-skip" in _tags(cell):
                if any(BEGIN.match(line) for line in cell.source.splitlines()):
                    raise GradingError(f"{path.name}: a grade-skip cell holds a solution region")
                found.add(_normal(cell.source))
    return frozenset(found)


def load_course(root=ROOT, solutions=None, kit=KIT, data=DATA, standin=True):
    """Read everything grading needs into memory once: check cells and sandbox files."""
    root = Path(root)
    solutions = solutions or root / "notebooks" / "solutions"
    checks = load_checks(solutions)
    files = {}
    for name in kit:
        if (root / name).is_file():
            files[name] = (root / name).read_bytes()
    if "lrpkit/checks.py" not in files:
        raise GradingError(f"{root / 'lrpkit/checks.py'} is missing")
    for name in data:
        path = root / name
        if path.is_file():
            files[name] = path.read_bytes()
        elif path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file() and not item.name.startswith("."):
                    files[item.relative_to(root).as_posix()] = item.read_bytes()
    if "utils.py" in files and "data/castle.jpg" not in files:
        raise GradingError("data/castle.jpg is missing (the checks need it): run `make castle`")
    return Course(checks, files, standin and "utils.py" in files, load_skips(solutions))


# ---------------------------------------------------------------------------
# submissions
# ---------------------------------------------------------------------------


@dataclass
class Submission:
    student: str
    files: list  # [(name, bytes)], read before any student code runs
    cells: list = field(default_factory=list)  # [(label, source, tags)] of code cells to run
    problem: str = ""  # why it cannot be graded; empty when it can


def discover(folder):
    """The submissions in folder: ``<id>.ipynb`` files and ``<id>/`` folders of notebooks."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GradingError(f"{folder} is not a folder of submissions")
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            student, paths = entry.stem, [entry]
        elif entry.is_dir():
            student = entry.name
            paths = sorted(p for p in entry.glob("*.ipynb") if not p.name.startswith("."))
        else:
            continue
        sub = Submission(student, [])
        for path in paths:
            size = path.stat().st_size
            if size > MAX_NOTEBOOK_BYTES:
                sub.problem = (
                    f"{path.name} is {size / 2**20:.0f} MiB; clear its outputs and hand it in again"
                )
            else:
                sub.files.append((path.name, path.read_bytes()))
        if not paths:
            sub.problem = "the folder holds no .ipynb notebook"
        found.append(sub)
    seen = set()
    for sub in found:
        if sub.student in seen:
            sub.problem = f"a second submission for {sub.student} (a notebook and a folder)"
        seen.add(sub.student)
        if not ID.fullmatch(sub.student) and not sub.problem:
            sub.problem = "the file name is not a student id (letters, digits, . _ @ + -)"
    return found


def code_cells(name, data):
    """[(label, source, tags)] of a notebook's code cells; ValueError says why it is unusable."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text (not a notebook file?)") from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{name} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(nb, dict):
        raise ValueError(f"{name} is JSON but not a notebook")
    version = nb.get("nbformat")
    if version != 4:
        raise ValueError(
            f"{name} has nbformat {version!r}; the grader reads nbformat 4 notebooks "
            "(save it with Jupyter 4 or later)"
        )
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise ValueError(f"{name} has no list of cells")
    found, number = [], 0
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise ValueError(f"{name}, cell {index}: the source is not text")
        metadata = cell.get("metadata")
        tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
        tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
        found.append((f"{name} code cell {number}", source, tags))
    return found


def is_check(source):
    """True for a check cell that lost its tag: only lrpkit imports and checks.* calls."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False

    def checking(node):
        if isinstance(node, ast.ImportFrom):
            return (node.module or "").split(".")[0] == "lrpkit"
        if isinstance(node, ast.Import):
            return all(a.name.split(".")[0] == "lrpkit" for a in node.names)
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            node = ast.Expr(node.value)  # `_ = checks.check_x(...)` counts as a call
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            f = node.value.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
            return owner == "checks" or name.startswith("check_")
        return False

    return (
        bool(tree.body)
        and all(checking(node) for node in tree.body)
        and any(isinstance(node, ast.Expr | ast.Assign) for node in tree.body)
    )


def parse(sub):
    """Fill sub.cells with the code to run, or sub.problem with why there is none."""
    if sub.problem:
        return sub
    cells = []
    try:
        for name, data in sub.files:
            cells += code_cells(name, data)
    except ValueError as error:
        sub.problem = str(error)
        return sub
    # The student's own check cells are not trusted (nor needed): the grader brings its own.
    sub.cells = [c for c in cells if c[1].strip() and "check" not in c[2] and not is_check(c[1])]
    if not sub.cells:
        sub.problem = "empty notebook: no code cells to grade"
    return sub


# ---------------------------------------------------------------------------
# the graded notebook
# ---------------------------------------------------------------------------

PRELUDE = """\
# The grader's setup (not student code): pristine references for the guard cells below.
def _lrpkit_prelude(cache={cache!r}):
    import builtins
    import sys
    import types

    pristine = types.ModuleType("_lrpkit_pristine")
    pristine.builtins_module = builtins
    pristine.builtins = dict(vars(builtins))
    pristine.streams = (sys.stdout, sys.stderr, sys.displayhook, sys.excepthook)
    pristine.stream_class = type(sys.stdout)
    pristine.stream_methods = {{
        k: v for k, v in vars(type(sys.stdout)).items() if k in ("write", "writelines", "flush")
    }}
    # An editable install of the kit maps lrpkit.* to the instructor's files, the reference
    # solution lrpkit.lrp included: the kernel gets only this sandbox's copies.
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    for name in [n for n in sys.modules if n.startswith("__editable__")]:
        del sys.modules[name]
    pristine.paths = (list(sys.path), list(sys.meta_path), list(sys.path_hooks))
    # Nobody looks at the figures: show them as text, saving the PNG rendering.
    for mime in ("image/png", "image/jpeg", "image/svg+xml", "application/pdf"):
        get_ipython().display_formatter.formatters[mime].enabled = False
    pristine.standin = None
    if cache:
        def standin(path=cache):
            \"\"\"The stand-in weights from the grader's copy: the bits utils makes.\"\"\"
            import torch
            return torch.load(path, mmap=True, weights_only=True)

        import utils
        pristine.standin = utils.standin_state_dict = standin
    sys.modules["_lrpkit_pristine"] = pristine


_lrpkit_prelude()
del _lrpkit_prelude
"""

GUARD = """\
# The grader's guard (not student code): undo patches made above, then import utils and
# lrpkit.checks afresh from this sandbox's copies, so the check below is the instructor's.
def _lrpkit_guard(box={box!r}, names={names!r}):
    import sys

    p = sys.modules["_lrpkit_pristine"]
    p.builtins_module.__dict__.update(p.builtins)
    sys.modules["builtins"] = p.builtins_module
    sys.stdout, sys.stderr, sys.displayhook, sys.excepthook = p.streams
    for k, v in p.stream_methods.items():
        setattr(p.stream_class, k, v)
    sys.path[:], sys.meta_path[:], sys.path_hooks[:] = (list(x) for x in p.paths)
    sys.path_importer_cache.clear()
    for k in [k for k in sys.modules if k in ("utils", "lrpkit") or k.startswith("lrpkit.")]:
        del sys.modules[k]
    import importlib
    import os

    importlib.invalidate_caches()
    fresh = {{}}
    for name in ("utils", "lrpkit.checks"):
        if not os.path.isfile(os.path.join(box, name.replace(".", "/") + ".py")):
            continue  # a course without utils.py
        module = fresh[name] = importlib.import_module(name)
        if os.path.dirname(os.path.realpath(module.__file__)) not in (
            os.path.realpath(box), os.path.realpath(os.path.join(box, "lrpkit"))
        ):
            raise RuntimeError(f"{{name}} is not the grader's copy")
    checks = fresh["checks"] = fresh["lrpkit.checks"]
    fresh["lrpkit"] = sys.modules["lrpkit"]
    # The float64 stand-in and the decoded castle (checks' cached _model, _X) take ~1 s to
    # build: share the first fresh module's caches with later ones (they copy the model per
    # check). The references (_arrays) stay fresh from disk.
    if not hasattr(p, "caches"):
        p.caches = {{k: getattr(checks, k) for k in ("_model", "_X")
                    if hasattr(getattr(checks, k, None), "cache_info")}}
    for k, v in p.caches.items():
        setattr(checks, k, v)
    if p.standin is not None:
        fresh["utils"].standin_state_dict = p.standin
    ns = get_ipython().user_ns
    ns["__builtins__"] = p.builtins_module
    for k in names:
        v = ns.get(k)
        if k in fresh:
            ns[k] = fresh[k]
        elif type(v) is type(sys) and getattr(v, "__name__", None) in fresh:
            ns[k] = fresh[v.__name__]
        elif not k.startswith("_") and hasattr(checks, k):
            ns[k] = getattr(checks, k)


_lrpkit_guard()
del _lrpkit_guard
"""


def _names(source):
    """Names a check cell's code reads (checks, utils, check functions), for the guard."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})


def graded_notebook(sub, checks, box, cache=None, skip=frozenset()):
    """The notebook nbval runs, and the role of each of its code cells."""
    new = nbformat.v4.new_code_cell
    ignore = {"tags": ["nbval-ignore-output"]}
    cells = [new(PRELUDE.format(cache=str(cache) if cache else ""), metadata=ignore)]
    roles = [("prelude", None)]
    for label, source, tags in sub.cells:
        if _normal(source) in skip:
            continue
        keep = ["nbval-skip"] if "nbval-skip" in tags else []
        cells.append(new(source, metadata={"tags": ["nbval-ignore-output", *keep]}))
        roles.append(("student", label))
    for number, check in enumerate(checks, 1):
        guard = GUARD.format(box=str(box), names=_names(check.source))
        cells.append(new(guard, metadata=ignore))
        roles.append(("guard", check))
        cell = new(check.source, metadata={"tags": ["check", check.exercise]})
        cell.outputs = [nbformat.from_dict(dict(o)) for o in check.outputs]
        cell.execution_count = number  # nbval compares outputs only of cells that were run
        cells.append(cell)
        roles.append(("check", check))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb, roles


# ---------------------------------------------------------------------------
# running one submission
# ---------------------------------------------------------------------------


@dataclass
class Run:
    records: dict  # graded-notebook cell number -> the plugin's record
    finished: bool
    timed_out: bool
    seconds: float
    log: str
    started: float = 0.0
    ended: float = 0.0


def kill_token(token, prefix=False):
    """Kill every process whose environment carries this run's token (kernels included)."""
    import psutil

    me = os.getpid()
    victims = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            mark = proc.environ().get("LRPKIT_GRADE_TOKEN", "")
            if mark == token or prefix and mark.startswith(token):
                victims.append(proc)
        except (psutil.Error, OSError):
            continue
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=5)
    return len(victims)


class Grader:
    """Runs submissions, each in a fresh sandbox under ``workdir`` (stand-in weights and
    matplotlib's font cache are made there once and shared)."""

    def __init__(
        self,
        course,
        workdir,
        cell_timeout=CELL_TIMEOUT,
        timeout=TIMEOUT,
        workers=1,
        standin_cache=None,
        keep=False,
    ):
        self.course = course
        self.workdir = Path(workdir)
        self.cell_timeout = cell_timeout
        self.timeout = timeout
        self.workers = max(1, int(workers))
        self.keep = keep
        self.token_prefix = uuid.uuid4().hex
        self.lock = threading.Lock()
        self.counter = 0
        self.cache = None
        if course.standin:
            self.cache = Path(standin_cache) if standin_cache else self.workdir / STANDIN_FILE
            if not self.cache.is_file():
                make_standin_cache(self.cache, course)
        self.mpl = self.workdir / "mplconfig"
        if not self.mpl.is_dir():
            self._warm_matplotlib()

    def _warm_matplotlib(self):
        """Build matplotlib's font cache once; every sandbox gets a copy (saves ~1 s each)."""
        self.mpl.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, MPLCONFIGDIR=str(self.mpl), MPLBACKEND="Agg")
        subprocess.run(
            [sys.executable, "-c", "import matplotlib.font_manager"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )

    def environment(self, box, token):
        home = box / "home"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JUPYTER", "IPYTHON", "PYTEST", "MPL", "LRPKIT", "VGG16"))
            and key not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME")
        }
        threads = str(max(1, (os.cpu_count() or 1) // self.workers))
        env.update(
            HOME=str(home),
            TMPDIR=str(box / "tmp"),
            PYTHONPATH=str(box),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONNOUSERSITE="1",
            PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
            IPYTHONDIR=str(home / ".ipython"),
            JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
            JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
            JUPYTER_RUNTIME_DIR=str(home / ".local/share/jupyter/runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            MPLCONFIGDIR=str(home / ".matplotlib"),
            MPLBACKEND="Agg",
            VGG16_WEIGHTS="standin",
            OMP_NUM_THREADS=threads,
            MKL_NUM_THREADS=threads,
            PYDEVD_DISABLE_FILE_VALIDATION="1",
            # Grading never downloads: HTTP(S) through a proxy that is not there fails fast.
            http_proxy="http://127.0.0.1:9",
            https_proxy="http://127.0.0.1:9",
            HTTP_PROXY="http://127.0.0.1:9",
            HTTPS_PROXY="http://127.0.0.1:9",
            no_proxy="",
            NO_PROXY="",
            LRPKIT_GRADE_TOKEN=token,
        )
        return env

    def prepare(self, job):
        """A private sandbox with its own copies of the kit files; returns (box, ctl)."""
        base = self.workdir / "jobs" / f"{job}-{uuid.uuid4().hex[:12]}"
        box, ctl = base / "box", base / "ctl"
        for name, data in self.course.files.items():
            path = box / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o444)
        for sub in ("home", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        if self.mpl.is_dir():
            shutil.copytree(self.mpl, box / "home" / ".matplotlib")
        ctl.mkdir(parents=True)
        shutil.copyfile(PLUGIN, ctl / PLUGIN_NAME)
        (ctl / "pytest.ini").write_text("[pytest]\n")
        return box, ctl

    def run(self, sub):
        """Run one parsed submission under nbval; returns (Run, roles, sandbox changes)."""
        with self.lock:
            self.counter += 1
            job = self.counter
        token = f"{self.token_prefix}-{job}"
        box, ctl = self.prepare(job)
        nb, roles = graded_notebook(sub, self.course.checks, box, self.cache, self.course.skip)
        notebook = box / "submission.ipynb"
        nbformat.write(nb, str(notebook))
        written = {notebook: notebook.read_bytes(), ctl / PLUGIN_NAME: PLUGIN.read_bytes()}
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            PLUGIN_NAME[:-3],
            "-p",
            "nbval.plugin",
            "--nbval",
            "--nbval-current-env",
            f"--nbval-cell-timeout={self.cell_timeout}",
            "--nbval-kernel-startup-timeout=60",
            "-c",
            str(ctl / "pytest.ini"),
            "--rootdir",
            str(box),
            "-q",
            "--tb=no",
            "-W",
            "ignore::DeprecationWarning",
            str(notebook),
        ]
        # Cell results come back on a pipe, each record signed with a secret that reaches
        # pytest on a second pipe: neither is inherited by the kernel, so records forged by
        # student code (say through /proc) lack the secret and are ignored.
        read_fd, write_fd = os.pipe()
        secret_r, secret_w = os.pipe()
        secret = uuid.uuid4().hex
        os.write(secret_w, secret.encode())
        os.close(secret_w)
        env = self.environment(box, token)
        env["LRPKIT_GRADE_FD"] = str(write_fd)
        env["LRPKIT_GRADE_SECRET_FD"] = str(secret_r)
        env["LRPKIT_GRADE_OUTPUT_CAP"] = str(OUTPUT_CAP)
        records, lines = {}, []
        started = time.monotonic()
        wall_started = time.time()
        with open(ctl / "pytest.log", "wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=ctl,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(write_fd, secret_r),
            )
        os.close(write_fd)
        os.close(secret_r)
        reader = threading.Thread(target=_read_records, args=(read_fd, lines, secret), daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            kill_token(token)
            proc.wait()
        reader.join(timeout=10)
        seconds = time.monotonic() - started
        finished = False
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict) or record.get("secret") != secret:
                continue
            if record.get("event") == "cell":
                records[record["cell"]] = record
            finished |= record.get("event") == "finish"
        log_text = (ctl / "pytest.log").read_bytes()[-4000:].decode("utf-8", "replace")
        changes = self.sandbox_changes(box)
        changes += [p.name for p, data in written.items() if not _same(p, data)]
        if not self.keep:
            _force_rmtree(box.parent)
        run = Run(records, finished, timed_out, seconds, log_text, wall_started, time.time())
        return run, roles, changes

    def sandbox_changes(self, box):
        """Kit files in the sandbox that differ from the originals after a run."""
        return [name for name, data in self.course.files.items() if not _same(box / name, data)]


def _same(path, data):
    try:
        return path.is_file() and path.read_bytes() == data
    except OSError:
        return False


def _force_rmtree(path):
    """rmtree that also removes read-only files (the sandbox's copies are chmod 444)."""
    if not Path(path).exists():
        return

    def retry(func, name, _info):
        try:
            os.chmod(name, 0o700)
            Path(name).parent.chmod(0o700)
            func(name)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry)


def _read_records(fd, lines, secret):
    """Keep the pipe's lines that carry the secret (bounded: it may be flooded)."""
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as pipe:
        while line := pipe.readline(100_000):
            if not line.endswith("\n"):  # longer than any record: skip to its end
                while line and not line.endswith("\n"):
                    line = pipe.readline(100_000)
                continue
            if secret in line and len(lines) < 10_000:
                lines.append(line)


def make_standin_cache(path, course=None):
    """Write the stand-in weights once (utils.standin_state_dict takes ~2 s per call)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    code = "import sys, torch, utils; torch.save(utils.standin_state_dict(), sys.argv[1] + '.part')"
    env = dict(os.environ)
    if course is not None and "utils.py" in course.files:
        # Make it from the very utils.py the sandboxes get.
        src = path.parent / "standin-src"
        src.mkdir(exist_ok=True)
        (src / "utils.py").write_bytes(course.files["utils.py"])
        env["PYTHONPATH"] = str(src)
    subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=True, cwd=path.parent)
    os.replace(str(path) + ".part", path)
    path.chmod(0o444)
    return path


# ---------------------------------------------------------------------------
# watching the files no submission may change
# ---------------------------------------------------------------------------


class Watch:
    """Snapshot of protected files; ``verify`` restores changed ones and says which changed.

    Small files are compared by content; big ones (the stand-in cache) by inode, size and
    modification and change times -- a write always updates ctime, which no program can set.
    """

    BIG = 16 * 2**20

    def __init__(self, paths, restore_big=None, quarantine=None):
        self.items = {}
        self.restore_big = restore_big
        self.quarantine = Path(quarantine) if quarantine else None
        for path in paths:
            path = Path(path)
            if path.is_file():
                self.items[path] = self._state(path)

    def _state(self, path):
        st = path.stat()
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
        data = path.read_bytes() if st.st_size <= self.BIG else None
        return key, data

    def verify(self):
        changed = []
        for path, (key, data) in self.items.items():
            try:
                st = path.stat()
                now = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
            except OSError:
                now = None
            if now == key:
                continue
            if data is not None and now is not None and now[1] == key[1]:
                try:
                    if path.read_bytes() == data:
                        self.items[path] = (now, data)  # touched or chmod-ed, not changed
                        continue
                except OSError:
                    pass
            changed.append(path)
            self._restore(path, data)
        return changed

    def _restore(self, path, data):
        """Put the original back; a changed small file is kept in the quarantine folder."""
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                if self.quarantine and data is not None and path.is_file():
                    self.quarantine.mkdir(parents=True, exist_ok=True)
                    kept = self.quarantine / f"{time.time_ns()}-{path.name}"
                    shutil.copyfile(path, kept)
                path.chmod(0o644)
                path.unlink()
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        elif self.restore_big is not None:
            self.restore_big(path)
        self.items[path] = self._state(path)


# ---------------------------------------------------------------------------
# scoring and feedback
# ---------------------------------------------------------------------------


@dataclass
class Result:
    student: str
    points: dict
    status: str
    reason: str
    verdicts: list = field(default_factory=list)  # [(check, passed, text)]
    notes: list = field(default_factory=list)  # problems in the student's own cells
    seconds: float = 0.0

    @property
    def total(self):
        return sum(self.points.values())

    def row(self):
        fmt = lambda x: f"{round(x, 2):g}"
        return {
            "student": self.student,
            **{e: fmt(self.points.get(e, 0.0)) for e in EXERCISES},
            "total": fmt(self.total),
            "status": self.status,
            "reason": self.reason,
        }


def _hint(ename, evalue, message, cell_timeout):
    if "Timeout" in message or ename == "KeyboardInterrupt":
        return f"took longer than {cell_timeout:g} s and was stopped (an endless loop?)"
    if "Kernel dead" in message or "kernel" in message.lower() and not ename:
        return "the kernel had stopped before this check (did your code exit or crash it?)"
    if ename == "NameError":
        match = re.search(r"name '(\w+)' is not defined", evalue)
        if match:
            return (
                f"`{match[1]}` is not defined: define it in your notebook with exactly this "
                "name (renamed, missing, or its cell failed?)"
            )
    if ename == "NotImplementedError":
        return f"still raises NotImplementedError ({evalue}): replace the stub by your code"
    if ename:
        return f"{ename}: {evalue}"[:500]
    return message[:500] or "did not run"


def _first_line(text, prefix):
    return next((line for line in text.splitlines() if line.startswith(prefix)), "")


def score(student, run, roles, cell_timeout):
    """Points, status, reason and feedback from the plugin's per-cell records."""
    points = {e: 0.0 for e in EXERCISES}
    verdicts, notes = [], []
    guard = None  # the record of the guard cell before the current check
    for number, (role, what) in enumerate(roles):
        record = run.records.get(number)
        if role == "student" and record and record.get("error"):
            ename, evalue = record["error"]
            notes.append(f"{what}: {_hint(ename, evalue, record.get('message', ''), cell_timeout)}")
        elif role == "guard":
            guard = record
        elif role == "check":
            guard_ok = bool(guard) and guard["outcome"] == "passed"
            passed = bool(record) and record["outcome"] == "passed" and guard_ok
            stdout = (record or {}).get("stdout", "")
            if passed:
                text = _first_line(stdout, "PASS") or stdout.strip()
                points[what.exercise] += what.points
            elif record is None:
                text = "not run: the submission was stopped before this check"
            elif not guard_ok and guard and not guard.get("error") and guard.get("message"):
                text = _hint("", "", guard["message"], cell_timeout)  # kernel dead, timeout
            elif not guard_ok:
                text = "not graded: the grader could not reset the kernel before this check"
            elif record.get("error"):
                ename, evalue = record["error"]
                text = _hint(ename, evalue, record.get("message", ""), cell_timeout)
            elif "Timeout" in record.get("message", ""):
                text = _hint("", "", record["message"], cell_timeout)
            else:
                fail = _first_line(stdout, "FAIL")
                text = fail or ("output differs from the expected verdict: " + stdout.strip()[:300])
            verdicts.append((what, passed, text))
    failed = [(c, t) for c, passed, t in verdicts if not passed]
    if run.timed_out:
        status = "timeout"
        reason = f"stopped after the per-submission limit of {run.seconds:.0f} s"
    elif not run.records:
        status = "error"
        reason = "the notebook did not run: " + (run.log.strip().splitlines() or ["no output"])[-1]
    else:
        status = "graded"
        reason = "all checks passed" if not failed else ""
    if failed:
        details = "; ".join(f"{c.name}: {t}" for c, t in failed)
        reason = f"{reason}; {details}" if reason else details
    reason = " ".join(reason.split())
    if len(reason) > 400:
        reason = reason[:397] + "..."
    for key in points:
        points[key] = round(points[key], 6)
    return Result(student, points, status, reason, verdicts, notes, run.seconds)


def rejected(sub, status="invalid"):
    return Result(sub.student, {e: 0.0 for e in EXERCISES}, status, sub.problem)


def feedback(result):
    """The feedback file's text (markdown) for one student."""
    row = result.row()
    lines = [
        f"# Feedback for {result.student}",
        "",
        " | ".join(f"Exercise {e[2:]}: {row[e]}/{POINTS}" for e in EXERCISES)
        + f" | Total: {row['total']}/{POINTS * len(EXERCISES)}",
        "",
        f"Status: {result.status}" + (f" ({result.reason})" if result.status != "graded" else ""),
    ]
    for exercise in EXERCISES:
        mine = [v for v in result.verdicts if v[0].exercise == exercise]
        if mine:
            lines += ["", f"## Exercise {exercise[2:]}", ""]
            for check, passed, text in mine:
                share = f"{round(check.points, 2):g}"
                verdict = "PASS" if passed else "FAIL"
                lines.append(f"- {check.name} ({share} P): {verdict} -- {text}")
    if result.notes:
        lines += ["", "## Errors in your own code cells", ""]
        lines += [f"- {note}" for note in result.notes[:20]]
    return "\n".join(lines) + "\n"


def safe_name(student):
    name = re.sub(r"[^A-Za-z0-9._@+-]", "_", student).lstrip(".")
    return name or "unnamed"


def write_atomic(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def grades_csv(results):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in sorted(results, key=lambda r: r.student):
        writer.writerow(result.row())
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# the whole run
# ---------------------------------------------------------------------------


def protected_paths(root, submissions, course_root=None):
    """Files no submission may change: the kit, references, solutions, and all submissions."""
    paths = []
    for base in {Path(root), Path(course_root or root)}:
        for pattern in (
            "*.py",
            "lrpkit/*.py",
            "notebooks/solutions/*.ipynb",
            "data/reference/**/*",
            "data/castle.jpg",
            "*.toml",
            "*.txt",
            "*.yml",
            "Makefile",
        ):
            paths += [p for p in base.glob(pattern) if p.is_file()]
    paths += [p for p in Path(submissions).rglob("*") if p.is_file()]
    return sorted(set(paths))


def grade(
    submissions,
    out,
    workers=2,
    course=None,
    root=ROOT,
    cell_timeout=CELL_TIMEOUT,
    timeout=TIMEOUT,
    progress=True,
    standin_cache=None,
    keep=False,
    workdir=None,
):
    """Grade every submission in ``submissions``; write out/grades.csv and out/feedback/.

    Returns the results, one per submission, sorted by student id.
    """
    out = Path(out)
    course = course or load_course(root)
    subs = [parse(sub) for sub in discover(submissions)]
    results = {}  # one per submission, in discovery order
    for key, sub in enumerate(subs):
        results[key] = (
            rejected(sub)
            if sub.problem
            else Result(sub.student, {e: 0.0 for e in EXERCISES}, "pending", "not graded yet")
        )
    pending = [(key, sub) for key, sub in enumerate(subs) if not sub.problem]

    def save():
        write_atomic(out / "grades.csv", grades_csv(results.values()))

    save()
    own_workdir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="lrpkit-grade-"))
    watch = Watch(
        protected_paths(root, submissions) + ([Path(standin_cache)] if standin_cache else []),
        restore_big=lambda path: make_standin_cache(path, course),
        quarantine=out / "changed-files",
    )
    grader = None
    try:
        grader = Grader(course, workdir, cell_timeout, timeout, workers, standin_cache, keep)
        if grader.cache is not None and standin_cache is None:
            watch.items[grader.cache] = watch._state(grader.cache)
        bar = _progress(len(pending), progress)
        runs, suspects, incidents = {}, [], []  # incidents: (since, seen) of a change
        last_clean = time.time()

        def one(key, sub):
            try:
                return key, sub, *grader.run(sub)
            except Exception as error:  # the grader's own trouble: that row says so
                return key, sub, error, None, []

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(one, key, sub) for key, sub in pending]
            for future in as_completed(futures):
                key, sub, run, roles, changes = future.result()
                with grader.lock:
                    changed = watch.verify()
                    now = time.time()
                    if changed:
                        incidents.append((last_clean, now))
                    else:
                        last_clean = now
                if roles is None:
                    results[key] = _grader_error(sub, run)
                else:
                    runs[key] = run
                    results[key] = score(sub.student, run, roles, cell_timeout)
                if changes:
                    suspects.append(key)
                bar.update(1)
                save()
        bar.close()
        # Runs that overlapped a change to shared files may have been disturbed: grade them
        # again one at a time, and blame those that still change something when alone.
        for since, seen in incidents:
            suspects += [k for k, r in runs.items() if r.started <= seen and r.ended >= since]
        for key in sorted(set(suspects)):
            sub = subs[key]
            try:
                run, roles, changes = grader.run(sub)
            except Exception as error:
                results[key] = _grader_error(sub, error)
                continue
            changed = watch.verify()
            result = score(sub.student, run, roles, cell_timeout)
            if changes or changed:
                names = sorted({*changes, *(p.name for p in changed)})
                result = Result(
                    sub.student,
                    {e: 0.0 for e in EXERCISES},
                    "tampered",
                    "the submission changed files it must not touch: " + ", ".join(names[:8]),
                    result.verdicts,
                    result.notes,
                    result.seconds,
                )
            results[key] = result
            save()
    except BaseException:
        if grader is not None:
            kill_token(grader.token_prefix, prefix=True)
        for result in results.values():
            if result.status == "pending":
                result.status, result.reason = "error", "grading was interrupted"
        raise
    finally:
        watch.verify()
        if own_workdir and not keep:
            _force_rmtree(workdir)
        save()
        for result in results.values():
            write_atomic(out / "feedback" / f"{safe_name(result.student)}.md", feedback(result))
    return sorted(results.values(), key=lambda r: r.student)


def _grader_error(sub, error):
    reason = f"the grader failed on this submission ({type(error).__name__}: {error})"
    return Result(sub.student, {e: 0.0 for e in EXERCISES}, "error", reason[:400])


def _progress(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc="grading", unit="notebook", disable=not enabled)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.grade", description=__doc__.split("\n")[0]
    )
    parser.add_argument("submissions", type=Path, help="folder of <student id>.ipynb notebooks")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="output folder")
    parser.add_argument("--workers", type=int, default=2, help="submissions graded at once")
    parser.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per submission")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--keep", action="store_true", help="keep the sandboxes (debugging)")
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="kit with the solutions, checks and references (default: this one)",
    )
    args = parser.parse_args(argv)
    try:
        results = grade(
            args.submissions,
            args.out,
            args.workers,
            root=args.root,
            cell_timeout=args.cell_timeout,
            timeout=args.timeout,
            progress=not args.no_progress,
            keep=args.keep,
        )
    except GradingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(results)} submissions ({summary}): {args.out / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
