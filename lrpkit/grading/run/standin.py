"""The stand-in VGG-16 weights every run's kernel memory-maps, made once per grading (grading).

``make_standin_cache`` writes them (float32) and beside them (``float64_path``) their float64
copy for the checks; ``restore_standin`` makes one of the two again after a run changed it.
"""

import os
import subprocess
import sys
from pathlib import Path

STANDIN_FILE = "standin-vgg16.pt"


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
    if course is not None and "utils.py" in course.files:
        src = folder / "standin-src"
        src.mkdir(exist_ok=True)
        (src / "utils.py").write_bytes(course.files["utils.py"])
        env["PYTHONPATH"] = str(src)
    argv = [str(x) for item in paths.items() for x in item]
    subprocess.run([sys.executable, "-c", code, *argv], env=env, check=True, cwd=folder)
    for path in paths:
        os.replace(f"{path}.part", path)
        path.chmod(0o444)
