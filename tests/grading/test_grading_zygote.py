"""Kernels forked from the zygote (lrpkit.grading.sandbox.zygote): confined as the sandbox's
processes
are, in its namespaces, with the run's environment; cleaned up unconfined; the same grades as
kernels started alone; and a run still works when the zygote is gone (tiny course)."""

import json
import os
import resource
import socket
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from crafting import CELL_TIMEOUT, code, good_cells, nb_bytes, write_submissions

from lrpkit.grading.course import load_course
from lrpkit.grading.intake.submissions import discover, parse
from lrpkit.grading.pipeline import grade
from lrpkit.grading.run.runner import Grader
from lrpkit.grading.sandbox import cgroups
from lrpkit.grading.sandbox.bwrap import available
from lrpkit.grading.sandbox.limits import Limits, MiB

MARK = "lrpkit-zygote-test-orphan"
#: a cell that prints what the kernel is and may do, as JSON on one line
FACTS = code(
    "import json, os, resource, socket, sys\n"
    "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
    "def ns(pid):\n"
    "    try:\n"
    "        return {n: os.readlink(f'/proc/{pid}/ns/{n}') for n in ('mnt', 'net', 'pid')}\n"
    "    except OSError as error:\n"
    "        return str(error)\n"
    "others = [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]\n"
    "forked = [p for p in others if 'zygote' in open(f'/proc/{p}/cmdline').read()]\n"
    "def readable(path):\n"
    "    try:\n"
    "        return bool(os.listdir(path))\n"
    "    except OSError:\n"
    "        return False\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', PORT_NUMBER), timeout=2).close()\n"
    "    net = 'connected'\n"
    "except OSError as error:\n"
    "    net = type(error).__name__\n"
    "facts = {\n"
    "    'uid': os.getresuid(), 'gid': os.getresgid(), 'groups': os.getgroups(),\n"
    "    'caps': {k: status[k].strip() for k in status if k.startswith('Cap')},\n"
    "    'no_new_privs': status['NoNewPrivs'].strip(),\n"
    "    'rlimits': {n: resource.getrlimit(getattr(resource, n)) for n in\n"
    "                ('RLIMIT_CORE', 'RLIMIT_FSIZE', 'RLIMIT_DATA', 'RLIMIT_NPROC',\n"
    "                 'RLIMIT_CPU')},\n"
    "    'ns': ns('self'), 'others_ns': [ns(p) for p in others[:8]],\n"
    "    'forked_others': len(forked),\n"
    "    'pytest_fds_readable': [readable(f'/proc/{p}/fd') for p in forked],\n"
    "    'ppid': os.getppid(), 'fds': sorted(int(f) for f in os.listdir('/proc/self/fd')),\n"
    "    'forked': 'zygote' in open('/proc/self/cmdline').read(),\n"
    "    'token': 'LRPKIT_GRADE_TOKEN' in os.environ, 'home': os.environ['HOME'],\n"
    "    'cwd': os.getcwd(), 'path0': sys.path[:2], 'net': net,\n"
    "    'grader_home': os.path.exists(GRADER_HOME),\n"
    "    'seccomp': status['Seccomp'].strip(),\n"
    "    'cgroups': open('/proc/self/cgroup').read().splitlines(),\n"
    "}\n"
    "print('FACTS' + json.dumps(facts))"
)
LIMITS = Limits(memory_bytes=2048 * MiB, processes=300, file_bytes=64 * MiB, cpu_seconds=600)


def facts(run):
    for record in run.records.values():
        for line in record.get("stdout", "").splitlines():
            if line.startswith("FACTS"):
                return json.loads(line[5:])
    raise AssertionError(f"no facts printed: {run.log}")


def one_run(tiny, tmp_path, cells, **options):
    subs = tmp_path / "subs"
    write_submissions(subs, {"ann.ipynb": nb_bytes([*cells, *good_cells()])})
    [sub] = [parse(s) for s in discover(subs)]
    grader = Grader(load_course(tiny), tmp_path / "work", CELL_TIMEOUT, 60, **options)
    try:
        assert grader.zygote is not None and grader.zygote.wait_ready(60)
        return grader.run(sub), grader
    finally:
        grader.close()


@pytest.fixture
def listener():
    """(a port on 127.0.0.1 that accepts connections, a file in the grader's home)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sentinel = Path.home() / f".lrpkit-zygote-test-{uuid.uuid4().hex[:8]}"
    sentinel.write_text("the grader's")
    yield sock.getsockname()[1], sentinel
    sentinel.unlink()
    sock.close()


def probe(listener):
    port, sentinel = listener
    source = FACTS[1].replace("PORT_NUMBER", str(port))
    return code(source.replace("GRADER_HOME", repr(str(sentinel))))


@pytest.mark.skipif(not available() or os.geteuid() != 0, reason="needs bubblewrap, as root")
def test_a_forked_kernel_is_confined_like_the_sandbox(tiny, tmp_path, listener):
    run, grader = one_run(tiny, tmp_path, [probe(listener)], limits=LIMITS)
    seen = facts(run)
    assert seen["forked"], "the kernel was not forked from the zygote"
    uid = seen["uid"][0]
    assert uid >= 1 << 28 and seen["uid"] == [uid] * 3 and seen["gid"] == [uid] * 3
    assert seen["groups"] == []
    assert set(seen["caps"].values()) == {"0000000000000000"}, seen["caps"]
    assert seen["no_new_privs"] == "1"
    assert seen["seccomp"] == "2", "the sandbox's seccomp filter"
    if cgroups.support() == "cgroup v1":  # in the sandbox's cgroups: the root of its namespace
        joined = [line for line in seen["cgroups"] if line.split(":")[1] in ("memory", "pids")]
        assert len(joined) == 2 and all(line.endswith(":/") for line in joined), seen["cgroups"]
    expected = {name: list(pair) for name, pair in LIMITS.rlimits().items()}
    assert seen["rlimits"] == expected
    assert seen["forked_others"] == 1, "pytest is forked too, from the pytest zygote"
    assert seen["pytest_fds_readable"] == [False], "the kernel may not open pytest's pipes"
    readable = [ns for ns in seen["others_ns"] if isinstance(ns, dict)]  # not bwrap's, root's
    assert readable and all(ns == seen["ns"] for ns in readable), seen
    mine = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("mnt", "net", "pid")}
    assert all(seen["ns"][n] != mine[n] for n in mine)
    assert seen["ppid"] == 0, "its parent (the keeper) is outside the sandbox's PID namespace"
    assert seen["fds"][:3] == [0, 1, 2]
    assert seen["net"] != "connected" and not seen["grader_home"]
    assert seen["token"] and seen["home"] == seen["cwd"] + "/home"
    assert seen["path0"] == [seen["cwd"]] * 2 or seen["path0"][0] == seen["cwd"]
    assert run.records and all(r["outcome"] == "passed" for r in run.records.values())


def test_an_unconfined_forked_kernel_leaves_nothing_running(tiny, tmp_path, listener):
    orphan = code(
        "import os, subprocess, time\n"
        "if os.fork() == 0:\n"  # a forked orphan does not carry the run's token
        "    os.setsid()\n"
        f"    subprocess.Popen(['sleep', '300', '{MARK}'])\n"
        "    time.sleep(300)\n"
        "    os._exit(0)"
    )
    run, _ = one_run(tiny, tmp_path, [probe(listener), orphan], sandbox=False)
    seen = facts(run)
    assert seen["forked"] and seen["uid"][0] == os.geteuid()
    assert seen["net"] == "connected", "unconfined: the machine's own network"
    time.sleep(0.5)
    left = [p for p in psutil.process_iter(["cmdline"]) if MARK in " ".join(p.info["cmdline"])]
    assert left == []


def test_forked_and_started_kernels_give_the_same_grades(tiny, tmp_path):
    subs = tmp_path / "subs"
    wrong = code("def gradient_x_input(model, X, c):\n    return X")
    write_submissions(
        subs,
        {
            "good.ipynb": nb_bytes(good_cells()),
            "wrong.ipynb": nb_bytes([*good_cells(), wrong]),
            "broken.ipynb": nb_bytes([code("raise SystemExit(3)"), *good_cells()[1:]]),
        },
    )
    course = load_course(tiny)
    rows = {}
    for fork in (True, False):
        results = grade(
            subs, tmp_path / f"out-{fork}", workers=2, course=course, root=tiny,
            cell_timeout=CELL_TIMEOUT, timeout=60, progress=False, sandbox=available(),
            fork=fork,
        )  # fmt: skip
        rows[fork] = [(r.student, r.status, r.total, r.reason) for r in results]
    assert rows[True] == rows[False]
    assert [total for _, _, total, _ in rows[True]] != [rows[True][0][2]] * 3


def test_a_run_starts_its_own_kernel_when_the_zygote_is_gone(tiny, tmp_path, listener):
    subs = tmp_path / "subs"
    write_submissions(subs, {"ann.ipynb": nb_bytes([probe(listener), *good_cells()])})
    [sub] = [parse(s) for s in discover(subs)]
    grader = Grader(load_course(tiny), tmp_path / "work", CELL_TIMEOUT, 60, sandbox=False)
    try:
        assert grader.zygote.wait_ready(60)
        grader.zygote.proc.kill()
        grader.zygote.proc.wait()
        run = grader.run(sub)
    finally:
        grader.close()
    assert not facts(run)["forked"]
    assert all(r["outcome"] == "passed" for r in run.records.values())


def test_the_keeper_refuses_what_is_not_a_kernel_request(tiny, tmp_path):
    grader = Grader(load_course(tiny), tmp_path / "work", CELL_TIMEOUT, 60, sandbox=False)
    try:
        assert grader.zygote.wait_ready(60)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        assert grader.zygote.serve(ours)
        null = os.open(os.devnull, os.O_RDWR)
        request = {"cmd": ["python", "-c", "print('not a kernel')"], "cwd": "/", "env": {}}
        socket.send_fds(theirs, [json.dumps(request).encode()], [null] * 3)
        os.close(null)
        theirs.settimeout(10)
        assert "error" in json.loads(theirs.recv(1 << 16))
        theirs.close()
    finally:
        grader.close()
    assert grader.zygote.proc.returncode is not None


def test_rlimits_are_what_prlimit_is_given():
    from lrpkit.grading.sandbox.bwrap import PRLIMIT, Sandbox

    limits = Limits(memory_bytes=MiB, processes=7, file_bytes=3 * MiB, cpu_seconds=9)
    assert limits.rlimits()["RLIMIT_CPU"] == (10, 15)
    assert all(hasattr(resource, name) for name in limits.rlimits())
    args = Sandbox.__new__(Sandbox)
    args.limits = limits
    options = args._prlimit()
    assert options[1:-1] == [f"--{PRLIMIT[n]}={s}:{h}" for n, (s, h) in limits.rlimits().items()]


@pytest.mark.skipif(not available() or os.geteuid() != 0, reason="needs bubblewrap, as root")
def test_a_process_joins_only_a_complete_sandbox(tmp_path, listener):
    """Forked straight after bwrap starts, eight times: each sees the sandbox's files only
    (joined before bwrap's mounts were done, it would see the machine's)."""
    from lrpkit.grading.run.environment import kernel_environment
    from lrpkit.grading.sandbox.bwrap import Sandbox
    from lrpkit.grading.sandbox.zygote import PYTEST, PYTEST_RUN, Zygote

    _, sentinel = listener
    test = tmp_path / "test_inside.py"
    test.write_text(
        "import os\n"
        "def test_inside():\n"
        f"    assert not os.path.exists({str(sentinel)!r})\n"
        "    assert 'student' in open('/etc/passwd').read()\n"
        f"    assert not os.path.exists({str(tmp_path / 'outside.txt')!r})\n"
    )
    (tmp_path / "outside.txt").write_text("beside the test, outside every sandbox")
    env = kernel_environment(tmp_path / "zygote", "zygote-test", 1)
    del env["PYTHONPATH"]
    zygote = Zygote(env, PYTEST_RUN, PYTEST)
    try:
        assert zygote.wait_ready(60)
        for number in range(8):
            box = tmp_path / f"box{number}"
            box.mkdir()
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)]
            sandbox = Sandbox(box, readonly=[test], env={**env, "HOME": str(box)})
            watchdog = sandbox.start(argv, cwd=box, timeout=60, zygote=zygote)
            assert watchdog.forked is not None
            outcome = watchdog.wait()
            assert b"1 passed" in outcome.output, outcome.output.decode()[-2000:]
    finally:
        zygote.close()
