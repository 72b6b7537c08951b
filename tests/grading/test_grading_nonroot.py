"""Grading as a user who is not root, with the real bubblewrap (tiny course): the sandbox
takes the user-namespace way (no zygotes, no cgroups) under the same seccomp filter; a
correct submission gets full marks beside hostile ones.

Run by root, the test drops to ``nobody`` (setpriv) in a mount namespace of its own where
the Python installation is reachable (a base interpreter under root's home, as pyenv puts
it, is not); the course, the submissions and the output are a copy that user owns.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import hostile
import pytest
import seccomp_probe
from crafting import CELL_TIMEOUT, code, good_cells, nb_bytes, read_csv, write_submissions

from lrpkit.layout import ROOT

NOBODY = 65534


def hidden_ancestor(path):
    """The highest folder above ``path`` that others may not enter (None: all may)."""
    for parent in reversed(Path(path).parents):
        if parent != Path("/") and not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def as_nobody(argv, scratch):
    """argv as uid/gid 65534 with no groups, in a private mount namespace where the Python
    installation is reachable (its hidden ancestor replaced by an empty tmpfs with it
    inside)."""
    steps = []
    for root in {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}:
        above = hidden_ancestor(root)
        if above is not None:
            keep = scratch / f"keep{len(steps)}"
            keep.mkdir()
            steps.append(f"mount --bind {root} {keep}")
            steps.append(f"mount -t tmpfs -o mode=0755 tmpfs {above}")
            steps.append(f"mkdir -p {root} && mount --bind {keep} {root}")
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    script = " && ".join([*steps, 'exec "$@"'])
    unshare = ["unshare", "--mount", "--propagation", "private", "--"]
    return [*unshare, "sh", "-c", script, "sh", *drop, *argv]


@pytest.fixture(scope="module")
def graded(tiny):
    scratch = Path(tempfile.mkdtemp(prefix="lrpkit-nonroot-"))
    try:
        course = scratch / "course"
        shutil.copytree(tiny, course)
        subs = {
            "correct.ipynb": nb_bytes(good_cells()),
            "seccomp.ipynb": nb_bytes([code(hostile.seccomp_cell()), *good_cells()]),
            "userns.ipynb": nb_bytes([code(hostile.USERNS), *good_cells()]),
        }
        write_submissions(scratch / "subs", subs)
        (scratch / "home").mkdir()
        argv = [sys.executable, "-m", "lrpkit.grading", str(scratch / "subs")]
        argv += ["--out", str(scratch / "out"), "--root", str(course), "--workers", "2"]
        argv += ["--cell-timeout", str(CELL_TIMEOUT), "--timeout", "120", "--no-progress"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "XDG_"))}
        env.update(HOME=str(scratch / "home"), PYTHONPATH=str(ROOT), TMPDIR=str(scratch))
        if os.geteuid() == 0:
            scratch.chmod(0o755)
            subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(scratch)], check=True)
            argv = as_nobody(argv, scratch)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        yield read_csv(scratch / "out" / "grades.csv"), scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.slow
def test_a_grader_that_is_not_root_gives_full_marks_in_its_sandbox(graded):
    rows, scratch = graded
    row = rows["correct"]
    assert (row["total"], row["status"], row["sandbox"]) == ("50", "graded", "bubblewrap, seccomp")
    owners = {p.stat().st_uid for p in (scratch / "out").rglob("*")}
    assert owners == {os.geteuid() if os.geteuid() else NOBODY}, owners


@pytest.mark.slow
def test_the_seccomp_filter_and_no_user_namespace_hold_for_it_too(graded):
    rows, _ = graded
    ok, wrong = hostile.seccomp_reason(rows["seccomp"]["reason"])
    assert (ok, wrong) == (len(seccomp_probe.expected()), "[]"), rows["seccomp"]["reason"]
    assert "USERNS Operation not permitted; unshare tool: 1" in rows["userns"]["reason"]
    assert rows["seccomp"]["total"] == rows["userns"]["total"] == "50"
