"""The grading sandbox (lrpkit.grading.sandbox.bwrap) with the real bubblewrap: isolation and
limits.

Each test runs a small Python program inside a sandbox and checks, from outside, what it
could reach and how it was stopped: the seccomp filter, the cgroup's memory limit (memfds
included) or the watchdog. ``make test`` installs bubblewrap and libseccomp (``make sandbox``).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import hogs
import psutil
import pytest
import seccomp_probe

from lrpkit.grading.sandbox import bwrap as sb
from lrpkit.grading.sandbox import cgroups
from lrpkit.grading.sandbox import limits as lim
from lrpkit.grading.sandbox.bwrap import Sandbox
from lrpkit.grading.sandbox.limits import GiB, LimitHit, Limits, MiB

ROOT = Path(sb.__file__).resolve().parents[2]
# Root graders drop to a fresh uid; uid=0 takes the user-namespace way non-root graders take.
WAYS = ["dropped-uid", "user-namespace"] if os.geteuid() == 0 else ["user-namespace"]
# Where the grader may make cgroups, memory is the kernel's to stop; else the watchdog's.
STOPPERS = ["cgroup", "watchdog"] if cgroups.support() else ["watchdog"]


@pytest.fixture(scope="module", autouse=True)
def bubblewrap():
    """Fail (not skip) where the sandbox cannot run: make test installs bubblewrap."""
    try:
        sb.probe()
    except sb.SandboxUnavailable as error:
        pytest.fail(str(error))


@pytest.fixture
def box(tmp_path):
    folder = tmp_path / "box"
    folder.mkdir()
    return folder


TRY = """
import errno, json, os, sys
def attempt(what, *args):
    try:
        what(*args)
        return "ok"
    except OSError as error:  # by errno: EACCES or EROFS may come first, depending on the uid
        return errno.errorcode.get(error.errno, type(error).__name__)
    except BaseException as error:
        return type(error).__name__
"""


def run(sandbox, code, *args, **options):
    """Run Python code (after TRY) in the sandbox; (outcome, the JSON it printed last)."""
    outcome = sandbox.run([sys.executable, "-c", TRY + code, *map(str, args)], **options)
    lines = outcome.output.decode(errors="replace").strip().splitlines()
    try:
        return outcome, json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return outcome, None


def survivors(marker):
    """Live processes whose command line carries the marker."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(marker in a for a in cmdline):
            found.append(proc)
    return found


# ---------------------------------------------------------------------------
# limits as text
# ---------------------------------------------------------------------------


def test_limits_parse_command_line_strings():
    limits = Limits.parse("memory=512M, processes=64,cpu=2m,wall=90s,file=1.5G,output=none")
    assert limits.memory_bytes == 512 * MiB
    assert limits.processes == 64
    assert limits.cpu_seconds == 120
    assert limits.wall_seconds == 90
    assert limits.file_bytes == int(1.5 * GiB)
    assert limits.output_bytes is None
    assert limits.disk_bytes == Limits().disk_bytes  # untouched: the default
    assert lim.parse_size("4GiB") == lim.parse_size("4g") == 4 * GiB
    assert lim.parse_size("100k") == 100 * 1024 and lim.parse_size("1000") == 1000
    for bad in ("memory=lots", "colour=4G", "memory", "cpu=3 weeks"):
        with pytest.raises(ValueError, match="not a limit"):
            Limits.parse(bad)


def test_limit_hits_read_as_the_scorer_writes_them():
    assert LimitHit("memory", 4 * GiB).text == "memory limit 4 GiB exceeded"
    assert LimitHit("memory", GiB, "cgroup").text == "memory limit 1 GiB exceeded (cgroup)"
    assert str(LimitHit("processes", 512)) == "process limit 512 exceeded"
    assert LimitHit("cpu", 1800).text == "CPU time limit 1800 s exceeded"
    assert LimitHit("file", 512 * MiB).text == "file size limit 512 MiB exceeded"
    assert "memory 4 GiB, processes 512" in Limits().describe()
    limits = Limits()
    assert lim.limit_from_error("MemoryError", "", limits) == LimitHit("memory", 4 * GiB)
    error = "[Errno 27] File too large"
    assert lim.limit_from_error("OSError", error, limits).kind == "file"
    assert lim.limit_from_error("ValueError", "bad shape", limits) is None


def test_a_missing_bubblewrap_names_the_remedies(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    problem = sb._problem.__wrapped__()  # uncached: bwrap is not on this PATH
    assert "`bwrap` (Debian package bubblewrap) is not installed" in problem
    for remedy in ("apt-get install bubblewrap", "unprivileged_userns_clone=1", "--no-sandbox"):
        assert remedy in problem


def test_a_bind_that_would_expose_the_grader_home_is_refused(box, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(ValueError, match="would expose"):
        Sandbox(box, readonly=[tmp_path]).command(["true"])
    with pytest.raises(ValueError, match="would expose"):
        Sandbox(box, readonly=[ROOT], hidden=[ROOT / "lrpkit" / "reference" / "lrp.py"]).command(
            ["true"]
        )


# ---------------------------------------------------------------------------
# isolation
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("way", WAYS)
def test_no_network_not_even_the_graders_loopback(box, way):
    server = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    server.settimeout(0.5)
    udp.settimeout(0.5)
    code = """
import socket
port, udp_port = int(sys.argv[1]), int(sys.argv[2])
tcp = attempt(socket.create_connection, ("127.0.0.1", port), 2)
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out.sendto(b"hello", ("127.0.0.1", udp_port))  # lands on the sandbox's own loopback
far = attempt(socket.create_connection, ("192.0.2.1", 80), 2)
print(json.dumps({"tcp": tcp, "far": far, "interfaces": socket.if_nameindex()}))
"""
    uid = 0 if way == "user-namespace" else None
    ports = server.getsockname()[1], udp.getsockname()[1]
    outcome, seen = run(Sandbox(box, uid=uid), code, *ports)
    assert outcome.returncode == 0, outcome.output
    assert seen["tcp"] == "ECONNREFUSED"
    assert seen["far"] == "ENETUNREACH"  # no route anywhere
    assert [name for _, name in seen["interfaces"]] == ["lo"]
    with pytest.raises(TimeoutError):
        server.accept()
    with pytest.raises(TimeoutError):
        udp.recvfrom(100)
    server.close()
    udp.close()


@pytest.mark.slow
@pytest.mark.parametrize("way", WAYS)
def test_only_the_writable_folder_and_readonly_binds_are_visible(box, tmp_path, way, monkeypatch):
    home = tmp_path / "home"  # the grader's home, as the sandbox module sees it
    home.mkdir()
    (home / "sentinel").write_text("secret")
    monkeypatch.setenv("HOME", str(home))
    other = tmp_path / "other-submission.ipynb"  # beside the sandbox folder
    other.write_text("someone else's work")
    (box / "utils.py").write_text("GIVEN = 1\n")  # a kit copy, bound read-only over itself
    (box / "lrpkit" / "selfcheck").mkdir(parents=True)
    (box / "lrpkit" / "__init__.py").write_text("")
    (box / "lrpkit" / "selfcheck" / "__init__.py").write_text("")
    (box / "lrpkit" / "selfcheck" / "checks.py").write_text("OK = True\n")
    readonly = [box / "utils.py", box / "lrpkit"]
    code = """
import importlib
from pathlib import Path
home, other, root, box = map(Path, sys.argv[1:5])
def write(path):
    path.write_text("x")
seen = {
    "sentinel": attempt((home / "sentinel").read_text),
    "home": attempt(write, home / "new"),
    "other": attempt(other.read_text),
    "beside": attempt(write, box.parent / "planted"),
    "lrp": attempt((root / "lrpkit" / "reference" / "lrp.py").read_text),
    "solutions": attempt(os.listdir, root / "notebooks" / "solutions"),
    "repo": sorted(os.listdir(root)) if root.exists() else [],
    "venv": attempt(write, Path(sys.prefix) / "planted"),
    "usr": attempt(write, Path("/usr/planted")),
    "etc": attempt(write, Path("/etc/passwd")),
    "root": attempt(write, Path("/planted")),
    "tmp": attempt(write, Path("/tmp/private")),
    "own": attempt(write, box / "result.txt"),
    "utils": attempt(write, box / "utils.py"),
    "unlink": attempt(os.unlink, box / "utils.py"),
    "rename": attempt(os.rename, box / "lrpkit", box / "moved"),
    "checks": attempt(write, box / "lrpkit" / "selfcheck" / "checks.py"),
    "import": attempt(importlib.import_module, "lrpkit.selfcheck.checks"),
    "reference": attempt(importlib.import_module, "lrpkit.reference.lrp"),
}
print(json.dumps(seen))
"""
    uid = 0 if way == "user-namespace" else None
    env = {**os.environ, "PYTHONPATH": str(box)}
    outcome, seen = run(Sandbox(box, readonly, env=env, uid=uid), code, home, other, ROOT, box)
    assert outcome.returncode == 0, outcome.output
    venv = {
        Path(p).relative_to(ROOT).parts[0] for p in sb.python_roots() if ROOT in Path(p).parents
    }
    assert seen["repo"] == sorted(venv)  # .venv alone: none of the repository's own files
    for hidden in ("sentinel", "home", "other", "lrp", "solutions"):
        assert seen[hidden] == "ENOENT", hidden
    for readonly in ("venv", "usr", "etc", "root", "utils", "checks"):
        assert seen[readonly] in ("EROFS", "EACCES"), readonly
    assert seen["unlink"] == seen["rename"] == "EBUSY"  # bind mounts stay where they are
    assert seen["tmp"] == seen["own"] == seen["import"] == "ok"
    assert seen["reference"] == "ModuleNotFoundError"
    assert (home / "sentinel").read_text() == "secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box", "home", "other-submission.ipynb"]
    assert sorted(p.name for p in home.iterdir()) == ["sentinel"]
    assert (box / "result.txt").read_text() == "x"  # the one place it may write
    assert (box / "utils.py").read_text() == "GIVEN = 1\n"
    assert not Path("/tmp/private").exists() and not Path("/planted").exists()


@pytest.mark.slow
def test_a_background_process_dies_with_the_main_one_and_os_exit_is_a_status(box):
    marker = f"sandbox-test-{uuid.uuid4().hex}"
    code = """
import subprocess, time
if os.fork() == 0:  # detached: a new session, parent gone, like a daemon
    os.setsid()
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]])
    os._exit(0)
time.sleep(0.5)
os._exit(3)
"""
    outcome, _ = run(Sandbox(box), code, marker)
    assert outcome.returncode == 3 and outcome.limit is None
    assert outcome.reason == "exited with status 3"
    assert survivors(marker) == []
    outcome, _ = run(Sandbox(box), "os.kill(os.getpid(), 9)")
    assert outcome.limit is None and outcome.reason == "killed by signal 9"


@pytest.mark.slow
def test_the_sandbox_dies_with_the_grader(box):
    marker = f"sandbox-test-{uuid.uuid4().hex}"
    grader = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("sandbox", {sb.__file__!r})
sandbox = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sandbox)
code = "import time; open('ready', 'w').close(); time.sleep(300)"
sandbox.Sandbox({str(box)!r}).run([sys.executable, "-c", code, {marker!r}])
"""
    proc = subprocess.Popen([sys.executable, "-c", grader])
    deadline = time.monotonic() + 30
    while not (box / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (box / "ready").exists(), "the sandboxed process never started"
    assert len(survivors(marker)) == 4  # the grader, bwrap outside, bwrap as init, python
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(marker) == []


# ---------------------------------------------------------------------------
# limits
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("stopper", STOPPERS)
def test_a_memory_hog_is_killed_for_memory(box, stopper):
    code = """
import time
chunks = []
try:
    while len(chunks) < 256:  # up to 8 GiB, touched page by page
        chunks.append(bytearray(32 << 20))
except MemoryError:  # RLIMIT_DATA (limit + 1 GiB), should the watchdog be slow to look
    pass
time.sleep(30)  # a kernel lives on after the cell
"""
    limits = Limits(memory_bytes=512 * MiB)
    outcome, _ = run(Sandbox(box, limits=limits, cgroup=stopper == "cgroup"), code)
    assert outcome.limit == LimitHit("memory", 512 * MiB, stopper)
    assert outcome.reason == f"memory limit 512 MiB exceeded ({stopper})"
    assert 480 * MiB < outcome.peak_memory < 2 * GiB
    assert outcome.isolation.endswith("cgroup v1" if stopper == "cgroup" else "seccomp")


def sandbox_cgroups():
    """The sandbox cgroups that exist now (those of this process's parents)."""
    found = cgroups.parents()
    folders = dict.fromkeys(found[1].values()) if found else []
    return [p for f in folders for p in f.iterdir() if p.name.startswith(cgroups.PREFIX)]


@pytest.mark.slow
@pytest.mark.skipif(not cgroups.support(), reason="the grader may make no cgroups here")
def test_memory_in_memfds_is_counted_by_the_cgroup_and_the_cgroup_removed(box):
    """2.5 GiB in forty memfds, mapped nowhere (in no process's resident set, so the watchdog
    sees ~0), under a 1 GiB limit: the kernel stops it at the limit."""
    code = hogs.MEMFD + 'print(json.dumps("survived"), flush=True)\ntime.sleep(30)\n'
    before = set(sandbox_cgroups())
    outcome, seen = run(Sandbox(box, limits=Limits(memory_bytes=GiB)), code, timeout=60)
    assert seen is None and outcome.reason == "memory limit 1 GiB exceeded (cgroup)"
    assert outcome.seconds < 30
    assert set(sandbox_cgroups()) <= before, "the sandbox's cgroup was not removed"


@pytest.mark.slow
def test_a_fork_bomb_is_stopped_for_processes_and_nothing_survives(box):
    marker = f"sandbox-test-{uuid.uuid4().hex}"
    code = """
import time
while True:  # every child forks too: thousands within a second, unless stopped
    try:
        os.fork()
    except OSError:
        time.sleep(0.001)
"""
    outcome, _ = run(Sandbox(box, limits=Limits(processes=128)), code, marker, timeout=60)
    assert (outcome.limit.kind, outcome.limit.value) == ("processes", 128)
    assert outcome.limit.by in STOPPERS  # RLIMIT_NPROC, pids.max: whichever the bomb meets
    assert survivors(marker) == []


@pytest.mark.slow
def test_a_disk_filler_is_killed_for_disk(box):
    code = """
import time
for i in range(128):  # 128 files of 8 MiB: 1 GiB in all
    with open(f"fill-{i}", "wb") as file:
        file.write(os.urandom(1 << 20) * 8)
time.sleep(30)
"""
    limits = Limits(disk_bytes=64 * MiB, file_bytes=32 * MiB)
    outcome, _ = run(Sandbox(box, limits=limits), code)
    assert outcome.limit == LimitHit("disk", 64 * MiB)
    assert sum(p.stat().st_size for p in box.iterdir()) < 512 * MiB  # what 50 ms can write


@pytest.mark.slow
def test_one_file_stops_at_the_file_size_limit(box):
    code = """
import time
def fill():
    with open("big", "wb") as file:
        while True:
            file.write(b"x" * (1 << 20))
print(json.dumps(attempt(fill)), flush=True)
time.sleep(30)  # a kernel lives on after the cell's error
"""
    limits = Limits(disk_bytes=GiB, file_bytes=16 * MiB)
    outcome, seen = run(Sandbox(box, limits=limits), code)
    assert outcome.limit == LimitHit("file", 16 * MiB)
    assert seen == "EFBIG"  # 'File too large'
    assert (box / "big").stat().st_size == 16 * MiB


@pytest.mark.slow
def test_a_gigabyte_of_output_is_capped(box):
    code = """
import os
block = b"y" * (1 << 20)
for _ in range(1024):
    os.write(1, block)
"""
    log = box.parent / "log.txt"
    sandbox = Sandbox(box, limits=Limits(output_bytes=MiB))
    outcome = sandbox.run([sys.executable, "-c", code], output=log)
    assert outcome.returncode == 0 and outcome.limit is None
    assert outcome.output_total == GiB
    assert outcome.output_capped == LimitHit("output", MiB)
    assert MiB < log.stat().st_size < MiB + 200
    assert log.read_bytes().endswith(b"[sandbox: output limit 1 MiB exceeded; dropped]\n")


@pytest.mark.slow
def test_cpu_and_wall_time(box):
    spin = "while True: pass"
    outcome = Sandbox(box, limits=Limits(cpu_seconds=1)).run([sys.executable, "-c", spin])
    assert outcome.limit == LimitHit("cpu", 1)
    outcome = Sandbox(box).run([sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)
    assert outcome.limit == LimitHit("wall", 1)
    assert outcome.seconds < 5


@pytest.mark.slow
def test_pipes_passed_in_reach_the_sandbox_and_nothing_else_leaks(box):
    read, write = os.pipe()
    code = """
import json, os, sys
os.write(int(sys.argv[1]), b"record\\n")
print(json.dumps(sorted(os.listdir("/proc/self/fd"))))
"""
    watch = Sandbox(box).start([sys.executable, "-c", code, write], pass_fds=(write,))
    os.close(write)
    received = []
    reader = threading.Thread(target=lambda: received.append(os.read(read, 100)))
    reader.start()
    outcome = watch.wait()
    reader.join(5)
    os.close(read)
    assert received == [b"record\n"]
    fds = json.loads(outcome.output.decode().strip().splitlines()[-1])
    assert fds == sorted(["0", "1", "2", "3", str(write)])  # 3: listdir's own


@pytest.mark.slow
@pytest.mark.parametrize("way", WAYS)
def test_the_seccomp_filter_refuses_each_call_and_nothing_else(box, way):
    """Each refused call answers EPERM (clone3: ENOSYS) under the filter; the same program
    without it gets other answers (the calls are real, and harmless), and Python runs."""
    uid = 0 if way == "user-namespace" else None
    answers = {}
    for filtered in (True, False):
        sandbox = Sandbox(box, uid=uid, seccomp=filtered)
        outcome = sandbox.run([sys.executable, "-c", seccomp_probe.source()], timeout=60)
        assert outcome.returncode == 0, outcome.output
        answers[filtered] = seccomp_probe.read(outcome.output.decode())
    assert answers[True] == seccomp_probe.expected()
    unfiltered = {k for k, v in answers[False].items() if v != answers[True][k]}
    for call in ("unshare", "setns", "ptrace", "keyctl", "bpf", "clone3", "clone 0x10000000"):
        assert call in unfiltered, (call, answers[False][call])
    assert answers[False]["unshare"] == "ok"  # a user namespace, but for the filter


def test_the_filter_goes_to_bwrap_and_to_forked_processes(box):
    import base64

    from lrpkit.grading.sandbox import seccomp

    fds = []
    cmd = Sandbox(box).command(["true"], fds=fds)
    assert cmd[cmd.index("--seccomp") + 1] in map(str, fds)
    assert os.read(int(cmd[cmd.index("--seccomp") + 1]), 1 << 16) == seccomp.program()
    for fd in fds:
        os.close(fd)
    assert "--seccomp" not in Sandbox(box, seccomp=False).command(["true"], fds=[])
    watch = Sandbox(box).start([sys.executable, "-c", "pass"])
    confine = watch.confinement()
    watch.wait()
    assert base64.b64decode(confine["seccomp"]) == seccomp.program()
    assert confine["rlimits"] == Limits().rlimits()


def test_the_python_installation_is_bound_over_the_private_tmp(box):
    """A clone (and its .venv) under /tmp stays visible: /tmp's tmpfs is mounted first."""
    cmd = Sandbox(box).command(["true"])
    tmp = max(i for i, arg in enumerate(cmd) if arg == "--tmpfs" and cmd[i + 1] == "/tmp")
    roots = {name for real, names in sb.python_roots().items() for name in (*names, real)}
    binds = [i for i, arg in enumerate(cmd) if arg == "--ro-bind" and cmd[i + 2] in roots]
    assert binds and min(binds) > tmp
