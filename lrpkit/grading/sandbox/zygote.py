"""Zygotes: processes that imported their modules once and fork what a run needs from there
(instructors, grading).

A graded kernel spends ~5 s importing torch, torchvision and ipykernel before its first cell,
and the run's pytest ~0.7 s importing pytest and nbval. ``Zygote`` (grader side) starts this
file as a process of its own, with a clean environment (a kernel's) and nothing of any run;
it imports its modules once and then only forks. A zygote never runs student code and never
learns a run's secret or results. The grader keeps two: one forks kernels (``KERNEL_RUN``),
one forks pytest (``PYTEST_RUN``).

``Zygote.spawn`` hands a zygote one end of a socket pair with the sandbox to join (a pidfd of
its init; None: unconfined) and how to confine the child (``confine``: uid, rlimits, the
sandbox's cgroups, its seccomp filter); the other end carries the launch message:
{"cmd": ["python", "-m", MODULE, ...], "cwd", "env", "fds": [target descriptor or None, ...]}
with as many descriptors (None: only held, by the keeper, until the child ends). For pytest
the grader sends it (``spawn``); for a kernel, pytest's plugin does, on a socket the grader
passes it in ENV, instead of starting ``python -m ipykernel_launcher``. A child of the
zygote (the keeper) joins the sandbox's cgroups, then forks the child into the sandbox's
namespaces (network, IPC, UTS, cgroup, PID, mount, all at once); the child drops to the
sandbox's uid, its rlimits, no capabilities and no_new_privs, loads the seccomp filter, then
runs the module as ``python -m`` would. The child says {"pid"} (as the sender sees it); the
keeper says {"exit": status} when it ends, kills it when the sender goes away and,
unconfined, every process it left behind (a child subreaper); {"error"} means the sender
should start the process itself. A sandbox dies as before, all of it, with its init.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

KERNEL_RUN, PYTEST_RUN = "ipykernel_launcher", "pytest"  # the modules children run
KERNEL = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "debugpy")
#: what every graded notebook of the kit imports (utils.py): ~5 s per kernel otherwise
PRELOAD = ("numpy", "torch", "torchvision", "PIL.Image", "cv2", "matplotlib.figure", *KERNEL)
#: pytest with nbval and jupyter_client; rfc3987_syntax blocked as the grader's plugin does
PYTEST = ("pytest", "nbval.plugin", "nbval.kernel", "jupyter_client.manager")
ENV = "LRPKIT_KERNEL_FD"  # where pytest's plugin finds its end of the kernel socket
#: run this file as __main__ with nothing of the kit importable (-c puts only "" first)
START = "import runpy, sys; sys.path.pop(0); runpy.run_path(sys.argv[1], run_name='__main__')"
MESSAGE = 1 << 20  # bytes of one message, at most
#: the sandbox's namespaces a kernel joins, through a pidfd of the sandbox's init
NAMESPACES = {
    "net": 0x40000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "cgroup": 0x02000000,
    "pid": 0x20000000,
    "mnt": 0x00020000,
}
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER = 1, 4, 24, 36
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
CAPABILITY_VERSION_3 = 0x20080522


class Zygote:
    """The grader's handle on a zygote process: ``serve`` or ``spawn`` once ``wait_ready``."""

    def __init__(self, env, run=KERNEL_RUN, preload=PRELOAD, log=None):
        """Start one that forks ``run`` (KERNEL_RUN, PYTEST_RUN) with ``preload`` imported;
        ``env`` is its environment (children get theirs in the launch message; matplotlib
        keeps its config folder from here)."""
        self.run = run
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with open(log or os.devnull, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", START, __file__, str(theirs.fileno()), run, *preload],
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
            )
        theirs.close()
        self.lock = threading.Lock()
        self.state = None  # True once it said "ready"; False once it failed or was too slow

    def wait_ready(self, timeout=0):
        """Whether it has imported everything and runs, waiting up to ``timeout`` seconds
        the first time (threads wait together); once late, never again."""
        with self.lock:
            if self.state is None:
                deadline = time.monotonic() + timeout
                while self.proc.poll() is None:
                    left = deadline - time.monotonic()
                    if select.select([self.control], [], [], max(0, min(left, 0.5)))[0]:
                        self.state = self.control.recv(64) == b"ready"
                        break
                    if left <= 0:
                        break
                if self.state is None and (timeout or self.proc.poll() is not None):
                    self.state = False
            return bool(self.state) and self.proc.poll() is None

    def serve(self, conn, sandbox=None, confine=None):
        """Hand the zygote ``conn``, one end of the socket a launch message comes on, for a
        child to join the sandbox whose init has the pidfd ``sandbox`` (None: unconfined),
        confined as ``confine`` says: {"uid", "rlimits" ({name in ``resource``: (soft,
        hard)}), "cgroups" (their cgroup.procs files), "seccomp" (the filter, base64 BPF)}
        (lrpkit.grading.sandbox.watchdog.Watchdog.confinement). Closes conn; whether the zygote took
        it (if not, the sender starts the process itself)."""
        try:
            if not self.wait_ready():
                return False
            request = json.dumps({"sandbox": sandbox is not None, "uid": None, **(confine or {})})
            fds = [conn.fileno()] + ([] if sandbox is None else [sandbox])
            socket.send_fds(self.control, [request.encode()], fds)
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def spawn(self, argv, cwd, env, fds, sandbox=None, confine=None, timeout=60):
        """Fork ``argv`` (python -m ``self.run`` ...) as ``serve`` says, in ``cwd`` with
        ``env``; ``fds`` {target descriptor or None: our descriptor} (None: held by the
        keeper until the child ends). The running ``Forked``, or None: start it yourself."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if not self.serve(theirs, sandbox, confine):
            ours.close()
            return None
        launch = {"cmd": [str(a) for a in argv], "cwd": str(cwd), "env": env, "fds": list(fds)}
        try:
            socket.send_fds(ours, [json.dumps(launch).encode()], list(fds.values()))
            ours.settimeout(timeout)
            reply = json.loads(ours.recv(MESSAGE) or b"{}")
            ours.settimeout(None)
        except (OSError, ValueError):
            reply = {}
        if "pid" not in reply:
            ours.close()
            return None
        from lrpkit.grading.run.forked import Forked  # never in the zygote process: no kit there

        return Forked(reply["pid"], ours)

    def close(self, wait=True):
        """End the zygote: it exits on the end of its socket, its keepers die with it.
        ``wait=False`` leaves the waiting to ``join`` (ending several at once)."""
        self.control.close()
        if wait:
            self.join()

    def join(self):
        """Wait until the zygote has exited (5 s, then it is killed)."""
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- the zygote process


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def call(name, *args):
        if getattr(libc, name)(*args) == -1:
            error = ctypes.get_errno()
            raise OSError(error, f"{name}: {os.strerror(error)}")

    def prctl(option, value=0, pointer=0):
        call("prctl", *(ctypes.c_ulong(x) for x in (option, value, pointer, 0, 0)))

    def clear_capabilities():
        header = (ctypes.c_uint32 * 2)(CAPABILITY_VERSION_3, 0)
        call("capset", header, (ctypes.c_uint32 * 6)())

    return call, prctl, clear_capabilities


def _load_seccomp(bpf):
    """Load a seccomp filter (classic BPF, lrpkit.grading.sandbox.seccomp.program) on this process,
    as bwrap --seccomp does: it needs no_new_privs (or CAP_SYS_ADMIN) and binds every thread
    and child from here on."""
    import ctypes

    if not bpf or len(bpf) % 8:
        raise ValueError("not a seccomp filter")

    class Program(ctypes.Structure):  # struct sock_fprog
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    code = ctypes.create_string_buffer(bpf, len(bpf))
    program = Program(len(bpf) // 8, ctypes.addressof(code))
    _libc()[1](PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(program))


def _join_cgroups(paths):
    """Move this process into each cgroup (its cgroup.procs file); children follow."""
    for path in paths:
        with open(path, "w") as file:
            file.write("0")


def main():
    """Import the modules named, say "ready", then fork a keeper for every request."""
    import importlib

    run = sys.argv[3]
    if run == PYTEST_RUN:  # as lrpkit/grading/run/plugin.py does in every run's pytest
        sys.modules.setdefault("rfc3987_syntax", None)
    for name in sys.argv[4:]:
        importlib.import_module(name)
    base_path = list(sys.path)
    with open("/proc/sys/kernel/cap_last_cap") as file:
        last_cap = int(file.read())
    control = socket.socket(fileno=int(sys.argv[2]))  # its end of the grader's socket
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # keepers are reaped by the kernel
    control.send(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, MESSAGE, 2)
        except InterruptedError:
            continue
        if not message:
            return  # the grader has gone
        if os.fork() == 0:
            code = 1
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                keep(run, json.loads(message), fds, base_path, last_cap)
                code = 0
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)


def keep(run, request, fds, base_path, last_cap):
    """The keeper of one child: wait for its launch message, fork it into the sandbox,
    report its exit status, kill it (and, unconfined, all it left) when it is over."""
    call, prctl, _ = _libc()
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # with the zygote, so with the grader
    if os.getppid() == 1:
        return
    conn, init = socket.socket(fileno=fds[0]), fds[1] if len(fds) > 1 else None
    if request["sandbox"] != (init is not None):
        return
    if init is None:
        prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of the run become ours to kill
    message, received, _, _ = socket.recv_fds(conn, MESSAGE, 64)
    if not message:
        return
    try:
        launch = json.loads(message)
        targets = launch.get("fds", [0, 1, 2])
        if launch["cmd"][1:3] != ["-m", run] or len(targets) != len(received):
            raise ValueError(f"not a request for python -m {run}")
        if not all(t is None or isinstance(t, int) and 0 <= t < 1024 for t in targets):
            raise ValueError("descriptors out of range")
        if init is not None:  # all of them at once, or none (Linux 5.8)
            _join_cgroups(request.get("cgroups") or ())  # before the child exists
            call("setns", init, sum(NAMESPACES.values()))
            os.close(init)
        pid = os.fork()
    except Exception as error:  # the sender starts the process itself
        conn.send(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
        return
    if pid == 0:
        child(run, launch, dict(zip(targets, received)), conn, request, base_path, last_cap)
    status = _watch(pid, conn)
    if init is None:
        _kill_children()
    try:
        conn.send(json.dumps({"exit": status}).encode())
    except OSError:
        pass


def _watch(pid, conn):
    """Wait for the child to end, killing it if the sender goes first; its exit status."""
    pidfd = os.pidfd_open(pid)
    watched = [pidfd, conn]
    while True:
        readable, _, _ = select.select(watched, [], [])
        if pidfd in readable:
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if conn in readable and not conn.recv(64):  # the sender has gone: so does the child
            os.kill(pid, signal.SIGKILL)
            watched = [pidfd]


def _kill_children():
    """Kill our children until none is left (orphans of the run come to us, the subreaper)."""
    me = str(os.getpid())
    while True:
        children = []
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{name}/stat", "rb") as file:
                    stat = file.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if stat[1].decode() == me:
                children.append(int(name))
        if not children:
            return
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for child in children:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass


def child(run, launch, fds, conn, request, base_path, last_cap):
    """The forked child: its descriptors ({target: ours}) in place, confined as the sandbox's
    processes are, then ``python -m run`` as it would run in that environment."""
    code = 1
    try:
        os.setsid()
        import fcntl

        above = max((t for t in fds if t is not None), default=2) + 1  # no copy on a target
        moved = {t: fcntl.fcntl(fd, fcntl.F_DUPFD, above) for t, fd in fds.items() if t is not None}
        for target, fd in moved.items():
            os.dup2(fd, target)
        conn.send(json.dumps({"pid": os.getpid()}).encode())
        kept = [2, *sorted(t for t in moved if t > 2)]
        for low, high in zip(kept, [*kept[1:], os.sysconf("SC_OPEN_MAX")]):
            if low + 1 < high:  # closerange(a, b) with a > b closes everything from a
                os.closerange(low + 1, high)
        if request["uid"] is not None:
            _confine(int(request["uid"]), request["rlimits"], last_cap)
            if run == PYTEST_RUN:  # the kernel (same uid) may not read its memory or fds
                _libc()[1](PR_SET_DUMPABLE, 0)
            if request.get("seccomp"):  # last: the filter refuses prctl's friends, not prctl
                import base64

                _load_seccomp(base64.b64decode(request["seccomp"]))
        else:
            _libc()[1](PR_SET_PDEATHSIG, signal.SIGKILL)
        env = {str(k): str(v) for k, v in launch["env"].items()}
        os.chdir(launch["cwd"] or "/")
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [_main_file(run), *(str(arg) for arg in launch["cmd"][3:])]
        python_path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        # python -m puts the working folder first; ipykernel_launcher takes it out again
        first = [os.getcwd()] if run == PYTEST_RUN else []
        sys.path[:] = first + python_path + base_path
        sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if "numpy" in sys.modules:  # its global generator was seeded in the zygote
            sys.modules["numpy"].random.seed()
        if run == PYTEST_RUN:
            import pytest

            code = int(pytest.main())
        else:
            from ipykernel import kernelapp

            kernelapp.launch_new_instance()
            code = 0
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _main_file(run):
    """What ``python -m run`` has as sys.argv[0]."""
    import importlib.util

    spec = importlib.util.find_spec(run)
    if spec.submodule_search_locations:  # a package: its __main__
        return os.path.join(spec.submodule_search_locations[0], "__main__.py")
    return spec.origin


def _confine(uid, rlimits, last_cap):
    """What bwrap, prlimit and setpriv do for the sandbox's processes: the run's rlimits, no
    capability (bounding, ambient, inheritable, permitted, effective), the run's uid and gid
    and no other groups, no_new_privs, and death with the keeper."""
    import resource

    call, prctl, clear_capabilities = _libc()
    for name, (soft, hard) in rlimits.items():
        resource.setrlimit(getattr(resource, name), (int(soft), int(hard)))
    for cap in range(last_cap + 1):
        prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    clear_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getresuid() != (uid,) * 3 or os.getresgid() != (uid,) * 3 or os.getgroups():
        raise PermissionError("the kernel did not drop to the sandbox's uid")


if __name__ == "__main__":
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print("usage: started by the grader (lrpkit.grading.run.runner), never by hand")
        print((__doc__ or "").strip().splitlines()[0])
        sys.exit(0)
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the grader has gone: no teardown of the modules imported (~0.7 s with torch)
