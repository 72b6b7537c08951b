"""The README's commands without make: ``python -m lrpkit.tasks demo`` or ``... test``.

Run from the kit's folder with any Python 3.10+ (Linux, macOS, Windows). Standard library
only, and lrpkit/__init__.py imports nothing, so this works before anything is installed:

    python -m lrpkit.tasks setup   # .venv/ with the requirements and the kit (editable)
    python -m lrpkit.tasks demo    # setup, castle.jpg, then figures/castle.png
    python -m lrpkit.tasks test    # setup, castle.jpg, then ruff, vermin and pytest
    python -m lrpkit.tasks lab     # setup, castle.jpg, then JupyterLab on notebooks/
    python -m lrpkit.tasks lock    # rewrite requirements-lock.txt from .venv (maintainers)

``--venv PATH`` names another venv; further arguments go to the demo (``--out x.png``) or to
pytest (``-m "not slow"``).

The Makefile's setup target runs ``setup`` from here; demo, test and lab run the same
commands as its targets (tests/test_portability.py compares them). With the Python that
requirements-lock.txt names (CI's), setup installs the lock's exact versions; with another
Python the ranges of requirements*.txt (pass --lock to refuse that; CI always does).
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_PYTHON = (3, 10)
REQUIREMENTS = "requirements-dev.txt"  # includes requirements.txt
LOCK = "requirements-lock.txt"
INPUTS = ("requirements.txt", REQUIREMENTS, LOCK, "pyproject.toml")  # a change reinstalls
STAMP = ".installed"
SHARED_CASTLE = ROOT.parent / "shared" / "data" / "castle.jpg"
PIP = ["-m", "pip", "install", "--disable-pip-version-check", "-q"]

VERMIN = ["-c", "import sys, vermin; sys.exit(vermin.main())"]  # it has no __main__
VERMIN_PATHS = ("utils.py", "lrpkit", "tests")
#: what demo, lint and test run with the venv's Python (the Makefile runs the same)
DEMO = ["-m", "lrpkit.demo", "--out", "figures/castle.png"]
LINT = [
    ["-m", "ruff", "check", "."],
    ["-m", "ruff", "format", "--check", "."],
    # ruff (target-version py310) rejects newer syntax; vermin newer standard-library APIs
    [*VERMIN, "-q", "--violations", "--eval-annotations", "-t=3.10-", *VERMIN_PATHS],
]
TEST = ["-m", "pytest", "-ra"]
LAB = ["-m", "jupyter", "lab", "notebooks/"]
BROWSER = ("chromium", "chromedriver")  # Debian's, for tests/test_explorer_browser.py


class TaskError(RuntimeError):
    """A step failed; the message says what to do."""


def venv_python(venv, windows=None):
    """The Python of a venv: Scripts\\python.exe on Windows, bin/python elsewhere."""
    windows = os.name == "nt" if windows is None else windows
    return Path(venv) / ("Scripts/python.exe" if windows else "bin/python")


def lock_python(path=None):
    """The Python version (e.g. "3.11") the lock was made for: its ``# python X.Y`` line."""
    text = Path(path or ROOT / LOCK).read_text(encoding="utf-8")
    found = re.search(r"^# python (\d+\.\d+)\s*$", text, flags=re.M)
    if not found:
        raise TaskError(f"{LOCK} has no '# python X.Y' line")
    return found.group(1)


def run(argv, **kwargs):
    """Run a command from the kit's folder, echoed first like make does; stop when it fails."""
    print("+ " + " ".join(str(a) for a in argv), flush=True)
    done = subprocess.run([str(a) for a in argv], cwd=kwargs.pop("cwd", ROOT), **kwargs)
    if done.returncode:
        raise TaskError(f"command failed with exit status {done.returncode}")
    return done


def python_version(python):
    out = subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def install_plan(version, need_lock=False):
    """(pip arguments, mode) for a venv whose Python is ``version`` ("3.12")."""
    if version == lock_python():
        return ["-r", REQUIREMENTS, "-c", LOCK], f"locked (Python {version})"
    if need_lock:
        raise TaskError(
            f"{LOCK} is for Python {lock_python()}, this venv has Python {version}: use Python "
            f"{lock_python()} (e.g. python{lock_python()} -m lrpkit.tasks ...), or run without "
            "--lock (and without CI set) to install the version ranges"
        )
    return ["-r", REQUIREMENTS], f"version ranges (Python {version}; lock: {lock_python()})"


def fingerprint(mode):
    digest = hashlib.sha256(mode.encode())
    for name in INPUTS:
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    return digest.hexdigest()


def setup(venv, need_lock=False):
    """Create the venv when missing and install into it when the requirements changed."""
    venv = Path(venv)
    python = venv_python(venv)
    if not python.is_file():
        if sys.version_info < MIN_PYTHON:
            raise TaskError("the kit needs Python 3.10 or newer")
        try:
            run([sys.executable, "-m", "venv", venv])
        except TaskError as error:
            raise TaskError(
                f"could not create {venv} ({error}). On Debian/Ubuntu: "
                "sudo apt install python3-venv"
            ) from error
    version = python_version(python)
    if tuple(int(x) for x in version.split(".")) < MIN_PYTHON:
        raise TaskError(f"{venv} has Python {version}; the kit needs 3.10+: remove {venv}")
    args, mode = install_plan(version, need_lock)
    stamp = venv / STAMP
    wanted = fingerprint(mode)
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        return python
    print(f"installing into {venv}: {mode}", flush=True)
    run([python, *PIP, *args])
    run([python, *PIP, "--no-deps", "--no-build-isolation", "-e", "."])
    stamp.write_text(wanted + "\n")
    return python


def castle():
    """Copy ../shared/data/castle.jpg into data/ when there is one (else fetched on use)."""
    dest = ROOT / "data" / "castle.jpg"
    if not dest.exists() and SHARED_CASTLE.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_CASTLE, dest)
        print(f"copied {SHARED_CASTLE} to {dest}")


def apt(commands, packages, have=True):
    """True when the commands are there (and ``have``), else Debian's packages installed with
    apt-get; False where there is no apt-get (not Debian, not Linux)."""
    if have and all(shutil.which(name) for name in commands):
        return True
    if not sys.platform.startswith("linux") or not shutil.which("apt-get"):
        return False
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    run([*sudo, "apt-get", "update", "-q"])
    for package in packages:
        run([*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", package])
    return True


def browser():
    """Debian's headless Chromium and driver (what `make browser` installs); False if absent."""
    return apt(BROWSER, ("chromium", "chromium-driver"))


def freeze(requirements=REQUIREMENTS):
    """``name==version`` lines of everything ``requirements`` brings, as installed here.

    Runs in the venv (needs ``packaging``): follows each requirement's dependencies,
    with their extras and environment markers, through the installed packages' metadata.
    """
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def roots(path):
        for line in (ROOT / path).read_text(encoding="utf-8").splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("-r "):
                yield from roots(line[3:].strip())
            elif line:
                req = Requirement(line)
                if req.marker is None or req.marker.evaluate():  # tomli: Python 3.10 only
                    yield req

    pins, seen, todo = {}, set(), list(roots(requirements))
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        dist = metadata.distribution(name)
        pins[name] = f"{name}=={dist.version.split('+')[0]}"
        for line in dist.requires or []:
            dep = Requirement(line)
            extras = req.extras or {""}
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                todo.append(dep)
    return [pins[name] for name in sorted(pins)]


LOCK_HEADER = """\
# Exact versions for CI and `make references`: everything `pip install -r requirements-dev.txt`
# brings, as CI installs it, for the Python named below. `make setup` and
# `python -m lrpkit.tasks setup` use it as constraints (-c {lock}) with that Python;
# students and other Pythons install the ranges of requirements*.txt.
# After changing a requirement: python -m lrpkit.tasks lock (installs the ranges, rewrites this).
# python {python}
"""


def lock(venv):
    """Install the requirements' ranges into the venv, then rewrite the lock from it."""
    python = venv_python(venv)
    if not python.is_file():
        raise TaskError(f"no venv at {venv}: run `python -m lrpkit.tasks setup` first")
    run([python, *PIP, "-r", REQUIREMENTS])
    code = "import lrpkit.tasks as t; print('\\n'.join(t.freeze()))"
    out = subprocess.run([str(python), "-c", code], cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        raise TaskError(f"could not list {venv}'s packages:\n{out.stderr}")
    header = LOCK_HEADER.format(lock=LOCK, python=python_version(python))
    (ROOT / LOCK).write_text(header + out.stdout, encoding="utf-8")
    print(f"wrote {LOCK}: {len(out.stdout.split())} packages")


def sandbox():
    """Debian's bubblewrap and libseccomp (what `make sandbox` installs): grading runs every
    submission in bubblewrap under a seccomp filter; False where they cannot be had (not
    Linux, no apt-get)."""
    from ctypes.util import find_library

    return apt(("bwrap",), ("bubblewrap", "libseccomp2"), have=bool(find_library("seccomp")))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.tasks", description=__doc__.split("\n")[0], allow_abbrev=False
    )
    parser.add_argument("task", choices=["setup", "demo", "test", "lab", "lock"])
    parser.add_argument("--venv", default=".venv", help="the virtual environment (.venv)")
    parser.add_argument("--lock", action="store_true", help=f"refuse to install without {LOCK}")
    args, rest = parser.parse_known_args(argv)  # demo, test: the rest goes to the demo, pytest
    if rest and args.task not in ("demo", "test"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    venv = Path(args.venv) if Path(args.venv).is_absolute() else ROOT / args.venv
    try:
        if args.task == "lock":
            return lock(venv) or 0
        python = setup(venv, need_lock=args.lock or bool(os.environ.get("CI")))
        if args.task == "setup":
            return 0
        castle()
        if args.task == "demo":
            run([python, *DEMO, *rest])
        elif args.task == "lab":
            run([python, *LAB])
        else:
            extra = rest
            if not browser():
                print("note: no chromium/chromedriver here: the browser tests are left out")
                extra = ["-m", "not browser", *extra]
            if not sandbox():
                print("note: no bubblewrap here (Linux only): the grading tests are left out")
                extra = ["--ignore=tests/grading", "--ignore=tests/test_sandbox.py", *extra]
            for command in LINT:
                run([python, *command])
            run([python, *TEST, *extra])
    except TaskError as error:
        print(f"lrpkit.tasks {args.task}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
