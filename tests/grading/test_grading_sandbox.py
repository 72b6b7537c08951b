"""Adversarial submissions graded in bubblewrap in one run beside correct ones (tiny course).

Each attack gets its row and reason; the grader's sentinel file is neither read into any
output nor changed; a server on 127.0.0.1 receives nothing; nothing is written outside the
sandboxes; nothing is left running; every system call the seccomp filter refuses answers
EPERM in a graded cell, and so does a user namespace; memory in memfds is stopped by the
sandbox's cgroup; the correct submissions get full marks in the same run.
"""

import os
import re
import shutil
import socket
import threading
import uuid
from pathlib import Path

import hostile
import psutil
import pytest
import seccomp_probe
from crafting import (
    CELL_TIMEOUT,
    IMPORTS,
    ROOT,
    code,
    good_cells,
    nb_bytes,
    read_csv,
    tree_hashes,
    write_submissions,
)

from lrpkit.grading.course import load_course
from lrpkit.grading.pipeline import grade
from lrpkit.grading.run.runner import isolation
from lrpkit.grading.sandbox import cgroups
from lrpkit.grading.sandbox.limits import GiB, Limits, MiB

MARK = f"lrpkit-adversary-{uuid.uuid4().hex[:8]}"  # in every process an attack leaves behind
LIMITS = Limits(memory_bytes=GiB, processes=256, file_bytes=128 * MiB, disk_bytes=256 * MiB)
LEAK = "LEAKED:"  # what an attack raises with when it could read something it must not


class Listener:
    """A TCP server on 127.0.0.1 counting the connections it receives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        self.sock.close()


def attacks(sentinel, port, outside):
    """{student: cells} of the adversarial submissions (each also holds a correct ex3/ex4)."""
    # the marker in two halves: feedback quotes a failing cell's first lines, never the marker
    leak = f"raise RuntimeError({LEAK[:4]!r} + {LEAK[4:]!r} + {{}})"
    read_secret = (
        "from pathlib import Path\n"
        f"text = Path({str(sentinel)!r}).read_text()\n" + leak.format("text")
    )
    change_secret = f"open({str(sentinel)!r}, 'a').write('changed by a student')"
    read_kit = (
        "from pathlib import Path\n"
        f"for name in ({str(ROOT / 'lrpkit' / 'reference' / 'lrp.py')!r}, "
        f"{str(ROOT / 'notebooks' / 'solutions' / 'ex4_lrp.ipynb')!r}):\n"
        "    text = Path(name).read_text()\n"
        "    " + leak.format("text[:200]")
    )
    socket_code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "s.sendall(b'grades please')\n"
    )
    write_outside = (
        f"open({str(outside)!r}, 'w').write('escaped')\n"
        f"open('/tmp/{MARK}', 'w').write('private tmp')"
    )
    hog = "blocks = [bytearray(256 * 2**20) for _ in range(12)]  # 3 GiB, touched"
    fork = (
        "import subprocess\n"
        f"procs = [subprocess.Popen(['sleep', '300', '{MARK}']) for _ in range(3000)]"
    )
    linger = (
        f"import subprocess\nsubprocess.Popen(['sleep', '300', '{MARK}'], start_new_session=True)"
    )
    disk = (
        "chunk = b'x' * 2**20\n"
        "with open('filler.bin', 'wb') as f:\n"
        "    for _ in range(1024):\n"
        "        f.write(chunk)"
    )
    flood = "import sys\nline = 'y' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(line)"
    # The kernel's parent: pytest when it started the kernel, the zygote's keeper (outside
    # the sandbox's PID namespace: getppid() is 0, and kill(0) its own process group) when
    # forked. kill-parent kills every other process it can see (pytest among them).
    kill_ppid = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
    kill_parent = (
        "import os, signal\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        if int(pid) != os.getpid():\n"
        "            os.kill(int(pid), signal.SIGKILL)\n"
        "    except OSError:\n"
        "        pass"
    )
    exit_now = "import os\nos._exit(3)"
    return {
        "read-secret": read_secret,
        "change-secret": change_secret,
        "read-kit": read_kit,
        "socket": socket_code,
        "write-outside": write_outside,
        "memory-hog": hog,
        "fork-bomb": fork,
        "linger": linger,
        "disk-filler": disk,
        "output-flood": flood,
        "kill-parent": kill_parent,
        "kill-ppid": kill_ppid,
        "exit": exit_now,
        "seccomp": hostile.seccomp_cell(),
        "userns": hostile.USERNS,
        "memfd-hog": hostile.MEMFD_HOG,
    }


def survivors():
    """Processes an attack left running anywhere on the machine."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if MARK in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def adversaries(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("adversaries")
    course_root = base / "course"
    shutil.copytree(tiny, course_root)
    # the grader's home: a sentinel no submission may read or change
    sentinel = Path.home() / f".{MARK}-sentinel"
    sentinel.write_text(f"secret-{uuid.uuid4().hex}")
    before_sentinel = sentinel.read_bytes()
    outside = base / "outside.txt"
    listener = Listener()
    try:
        cells = attacks(sentinel, listener.port, outside)
        subs = {
            f"{name}.ipynb": nb_bytes([code(src), *good_cells()]) for name, src in cells.items()
        }
        subs["correct1.ipynb"] = nb_bytes(good_cells())
        subs["correct2.ipynb"] = nb_bytes([IMPORTS, *good_cells()[1:]])
        paths = {"submissions": base / "submissions", "out": base / "out"}
        write_submissions(paths["submissions"], subs)
        course_before = tree_hashes(course_root)
        grade(
            paths["submissions"],
            paths["out"],
            workers=2,
            course=load_course(course_root),
            root=course_root,
            cell_timeout=CELL_TIMEOUT,
            timeout=90,
            progress=False,
            limits=LIMITS,
        )
        yield {
            "rows": read_csv(paths["out"] / "grades.csv"),
            "out": paths["out"],
            "sentinel": (sentinel, before_sentinel),
            "connections": listener.connections,
            "outside": outside,
            "course": (course_before, tree_hashes(course_root), course_root),
        }
    finally:
        listener.close()
        sentinel.unlink(missing_ok=True)
        for proc in survivors():
            proc.kill()


def test_correct_submissions_get_full_marks_beside_the_attacks(adversaries):
    for name in ("correct1", "correct2"):
        row = adversaries["rows"][name]
        assert (row["total"], row["status"], row["sandbox"]) == ("50", "graded", isolation())


def test_every_attack_gets_its_row_and_reason(adversaries):
    rows = adversaries["rows"]
    assert set(rows) == {*attacks(Path("x"), 1, Path("y")), "correct1", "correct2"}
    for name, row in rows.items():
        assert row["status"] in ("graded", "limit", "timeout", "error"), (name, row)
    reason = {name: row["reason"] for name, row in rows.items()}
    assert "memory limit 1 GiB exceeded" in reason["memory-hog"], reason["memory-hog"]
    assert "process limit 256 exceeded" in reason["fork-bomb"] or (
        "Resource temporarily unavailable" in reason["fork-bomb"]
    ), reason["fork-bomb"]
    assert "limit" in reason["disk-filler"] and "exceeded" in reason["disk-filler"]
    for name in ("read-secret", "read-kit"):
        assert "No such file or directory" in reason[name], (name, reason[name])
    assert "Read-only file system" in reason["change-secret"], reason["change-secret"]
    assert "Connection refused" in reason["socket"] or "unreachable" in reason["socket"]
    assert "No such file or directory" in reason["write-outside"], reason["write-outside"]
    for name in ("kill-parent", "kill-ppid", "exit"):
        assert rows[name]["total"] == "0" and rows[name]["reason"], (name, rows[name])
    # 1 GiB of output: stopped by a limit (output or the memory queued for it), and named
    assert rows["output-flood"]["status"] == "limit", rows["output-flood"]
    stopper = r"exceeded( \((cgroup|watchdog)\))? in output-flood\.ipynb code cell 1"
    assert re.search(stopper, reason["output-flood"]), reason["output-flood"]
    assert "the run ended early, in kill-parent.ipynb code cell 1" in reason["kill-parent"]
    stopped = "code cell 1: the kernel stopped while this cell ran"
    assert stopped in reason["exit"], reason["exit"]
    assert stopped in reason["kill-ppid"] or "ended early, in kill-ppid" in reason["kill-ppid"]
    assert rows["linger"]["total"] == "50", rows["linger"]


def test_each_refused_system_call_answers_eperm_in_a_graded_cell(adversaries):
    """The kernel is forked from the zygote (root) or started by bwrap: the filter holds."""
    row = adversaries["rows"]["seccomp"]
    assert row["total"] == "50", row  # the calls fail, the correct code after them passes
    ok, wrong = hostile.seccomp_reason(row["reason"])
    assert (ok, wrong) == (len(seccomp_probe.expected()), "[]"), row["reason"]


def test_no_user_namespace_inside(adversaries):
    reason = adversaries["rows"]["userns"]["reason"]
    assert "USERNS Operation not permitted; unshare tool: 1" in reason, reason
    assert reason.count("Operation not permitted") == 2, reason


@pytest.mark.skipif(not cgroups.support(), reason="the grader may make no cgroups here")
def test_memory_in_memfds_is_stopped_by_the_cgroup(adversaries):
    row = adversaries["rows"]["memfd-hog"]
    assert row["status"] == "limit" and row["total"] == "0", row
    assert "memory limit 1 GiB exceeded (cgroup) in memfd-hog.ipynb code cell 1" in row["reason"]


def test_nothing_leaks_changes_or_escapes(adversaries):
    sentinel, before = adversaries["sentinel"]
    assert sentinel.read_bytes() == before
    secret = before.decode()
    texts = [(adversaries["out"] / "grades.csv").read_text()]
    texts += [p.read_text() for p in (adversaries["out"] / "feedback").glob("*.md")]
    for text in texts:
        assert secret not in text and LEAK not in text
    assert adversaries["connections"] == 0, "the server on 127.0.0.1 received a connection"
    assert not adversaries["outside"].exists()
    assert not Path(f"/tmp/{MARK}").exists()
    before_course, after_course, _ = adversaries["course"]
    assert after_course == before_course


def test_reasons_are_printed_for_the_closing_note(adversaries):
    for name, row in sorted(adversaries["rows"].items()):
        print(f"{name}: {row['total']} {row['status']}: {row['reason']}")


def test_nothing_is_left_running(adversaries):
    assert survivors() == []


def test_grading_refuses_to_run_unconfined_where_bubblewrap_cannot(tmp_path, monkeypatch, tiny):
    """No bwrap on PATH: grading stops with the remedy (it never falls back silently)."""
    from lrpkit.grading.sandbox import bwrap as sandbox

    sandbox._problem.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap, prlimit or setpriv there
    (tmp_path / "subs").mkdir()
    write_submissions(tmp_path / "subs", {"ann.ipynb": nb_bytes(good_cells())})
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="--no-sandbox"):
            grade(tmp_path / "subs", tmp_path / "out", course=load_course(tiny), progress=False)
    finally:
        sandbox._problem.cache_clear()
    assert os.environ["PATH"] == str(tmp_path)
