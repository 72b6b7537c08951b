"""The stand-in VGG-16 weights every run's kernel memory-maps, made once and kept (grading).

``make_standin_cache`` writes them (float32) and beside them (``float64_path``) their float64
copy for the checks; ``restore_standin`` makes one of the two again after a run changed it.
``prepared`` gives a grading run the copy in the user's cache (``shared_folder``: made by the
first run, reused by every later one of the same utils.py, torch and numpy: ``--only``, a
resumed or sharded run, next week's re-grade), or, where that folder cannot be written, a copy
made in the run's own work folder.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from lrpkit.layout import ROOT

STANDIN_FILE = "standin-vgg16.pt"
GIGABYTES = 1.6  # both files together, for the message saying where they are kept


def float64_path(path):
    """Where the float64 copy of the stand-in weights at path is kept (beside them)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.float64{path.suffix}")


def make_standin_cache(path, course=None):
    """Write the stand-in weights once (utils.standin_state_dict takes ~2 s per call), and
    beside them (float64_path) their float64 copy for the checks: every kernel memory-maps
    both (lrpkit.grading.run.kernel.prelude), so none converts 1.1 GB of weights."""
    path = Path(path)
    _write_standin({path: "float32", float64_path(path): "float64"}, course)
    return path


def shared_folder(course=None):
    """Where grading runs keep the stand-in weights of ``course`` (default: the kit's):
    ``$XDG_CACHE_HOME/lrpkit/standin-<key>`` (``~/.cache`` without XDG_CACHE_HOME), the key a
    hash of what makes the weights: the course's utils.py and the versions of torch and numpy.
    """
    files = course.files if course is not None else {}
    code = files.get("utils.py") or (ROOT / "utils.py").read_bytes()
    versions = f"torch {metadata.version('torch')} numpy {metadata.version('numpy')}"
    key = hashlib.sha256(code + versions.encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()
    return Path(base) / "lrpkit" / f"standin-{key}"


def prepared(course, workdir, shared=True):
    """The stand-in weights of ``course``, both files there: (float32 path, made now?). In
    the shared folder when it has them or can be written (said on stderr when made there),
    else (or not ``shared``) made in ``workdir``."""
    if not shared:
        return make_standin_cache(Path(workdir) / STANDIN_FILE, course), True
    folder = shared_folder(course)
    path = folder / STANDIN_FILE
    if _readable(path) and _readable(float64_path(path)):
        return path, False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK | os.X_OK)
    except OSError:
        writable = False
    if not writable:
        path = Path(workdir) / STANDIN_FILE
    make_standin_cache(path, course)
    if writable:
        print(
            f"stand-in weights made once in {folder} ({GIGABYTES} GB): later grading runs "
            "with this utils.py, torch and numpy reuse them; delete the folder to free the space",
            file=sys.stderr,
        )
    return path, True


def _readable(path):
    try:
        return path.is_file() and os.access(path, os.R_OK)
    except OSError:
        return False


def restore_standin(path, course=None):
    """Make one of the two files of make_standin_cache again (which one: by its name)."""
    path = Path(path)
    _write_standin({path: "float64" if path.stem.endswith(".float64") else "float32"}, course)


def _write_standin(paths, course):
    """{path: dtype}: the stand-in weights in that dtype at each path, made by the course's own
    utils.py (the one the sandboxes get) in a process of their own."""
    code = (
        "import sys, torch, utils; s = utils.standin_state_dict()\n"
        "for path, dtype in zip(sys.argv[1::2], sys.argv[2::2]):\n"
        "    t = getattr(torch, dtype)\n"
        "    torch.save({k: v.to(t) for k, v in s.items()}, path + '.part')\n"
    )
    folder = next(iter(paths)).parent
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # each maker has its own files: two grading runs may make the shared ones at once
    src = folder / f"standin-src.{os.getpid()}"
    if course is not None and "utils.py" in course.files:
        src.mkdir(exist_ok=True)
        (src / "utils.py").write_bytes(course.files["utils.py"])
        env["PYTHONPATH"] = str(src)
    argv = [x for path, dtype in paths.items() for x in (f"{path}.{os.getpid()}", dtype)]
    try:
        subprocess.run([sys.executable, "-c", code, *argv], env=env, check=True, cwd=folder)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    for path in paths:
        os.replace(f"{path}.{os.getpid()}.part", path)
        path.chmod(0o444)
