"""Run one submission's processes in a bubblewrap sandbox, with limits (instructors, grading).

``Sandbox(writable, readonly, limits).start(argv)`` runs argv under ``bwrap`` with no network,
its own PID namespace (all of it dies when argv exits, on a breach and with the grader), the
system and the Python installation (venv, base interpreter: nothing else of the repository)
read-only, private /tmp and /dev/shm, ``writable`` the only writable host folder and nothing
else of the machine visible (the grader's home, the repository, other submissions), as an
unprivileged user without capabilities, under a seccomp filter (lrpkit.grading.sandbox.seccomp: no
new namespaces, no mount, ptrace, bpf, keyrings, kernel modules...; ``--disable-userns`` too
where bwrap makes a user namespace).

Limits: where the grader may make cgroups (lrpkit.grading.sandbox.cgroups), each sandbox gets its
own, with the memory limit (memfds, tmpfs and page cache included) and the process limit;
the kernel enforces them, and the watchdog names them ("memory limit 4 GiB exceeded
(cgroup)"). Besides: ``prlimit`` sets ``Limits.rlimits()``: RLIMIT_FSIZE, RLIMIT_CPU,
RLIMIT_NPROC and RLIMIT_DATA (memory + 1 GiB per process; torch maps ~3 GiB it never
touches, so not RLIMIT_AS) right before argv; a watchdog polls every 50 ms (memory summed
over the processes in the sandbox's own /proc where there is no cgroup, the cgroup's OOM
kills and refused forks where there is one, processes and threads, wall time, bytes,
files and the largest file in ``writable``, /tmp and /dev/shm; CPU time every 250 ms), kills
the sandbox on a breach and names the limit (``LimitHit``: "memory limit 4 GiB exceeded").
Output beyond ``output_bytes`` is dropped.

``start(argv, zygote=...)`` forks argv from a zygote (lrpkit.grading.sandbox.zygote) into the
sandbox instead, once it is complete; bwrap then runs only a waiter that ends with argv.
"""

import base64
import functools
import json
import os
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from lrpkit.grading.sandbox import cgroups, seccomp

GiB, MiB, KiB = 1 << 30, 1 << 20, 1 << 10
UID = 1000  # the sandbox's uid (and gid) inside its user namespace
FIRST_UID = 1 << 28  # a root grader's sandboxes run as fresh uids above this one
INTERVAL, SLOW = 0.05, 5  # seconds between polls; CPU time every SLOW-th poll
DATA_HEADROOM = GiB  # RLIMIT_DATA is the memory limit plus this
#: what bwrap runs where a zygote forks the sandbox's process: it says "ready" once the
#: sandbox is complete, then waits for the end of its stdin (the zygote's keeper holds it)
WAITER = ["/bin/sh", "-c", "echo ready && exec cat"]
READY_SECONDS = 30
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "hosts")
ETC += ("host.conf", "alternatives", "mime.types")
PRLIMIT = {"RLIMIT_CORE": "core", "RLIMIT_FSIZE": "fsize", "RLIMIT_DATA": "data"}
PRLIMIT.update(RLIMIT_NPROC="nproc", RLIMIT_CPU="cpu")  # prlimit's options
TOOLS = {"bwrap": "bubblewrap", "prlimit": "util-linux", "setpriv": "util-linux"}
REMEDY = (
    "Install it (`apt-get install bubblewrap`, or `make sandbox`), enable user namespaces "
    "(`sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu 24.04 also "
    "`sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or pass --no-sandbox to grade "
    "unconfined (the grades record it)."
)


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot run on this machine; the message names the remedies."""


_SIZES = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1 << 40}
_TIMES = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}


def _parse(text, units, example):
    text = str(text).strip().lower()
    if text in ("none", "off"):
        return None
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :]
    if units is _SIZES:
        unit = unit.removesuffix("b").removesuffix("i")
    try:
        return float(number) * units[unit]
    except (KeyError, ValueError):
        raise ValueError(f"not a limit: {text!r} (say {example}, or none)") from None


def parse_size(text):
    """'4G', '512MiB', '1.5g', '100k', '1000' -> bytes; 'none' -> None (no limit)."""
    size = _parse(text, _SIZES, "4G, 512M or a number of bytes")
    return None if size is None else int(size)


def parse_seconds(text):
    """'90', '90s', '10m', '1h' -> seconds; 'none' -> None (no limit)."""
    return _parse(text, _TIMES, "90, 90s, 10m or 1h")


def parse_count(text):
    """'512' -> 512; 'none' -> None (no limit)."""
    count = _parse(text, {"": 1}, "512")
    return None if count is None else int(count)


def format_size(size):
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use; None switches a limit off. Sizes in bytes, times in seconds.
    ``cell_seconds`` is for the runner to hand to nbval (a timeout per cell)."""

    memory_bytes: int | None = 4 * GiB  # anonymous + shared memory of all its processes
    processes: int | None = 512  # tasks: processes and threads together
    file_bytes: int | None = GiB  # one file
    disk_bytes: int | None = 2 * GiB  # writable folder, /tmp and /dev/shm together
    files: int | None = 10_000  # files and folders in them
    tmpfs_bytes: int = 256 * MiB  # size of /tmp and of /dev/shm (each held in memory)
    output_bytes: int | None = 8 * MiB  # stdout + stderr kept
    cpu_seconds: float | None = 1800  # CPU time of all its processes together
    wall_seconds: float | None = None  # the whole run
    cell_seconds: float | None = None  # one notebook cell

    KEYS = {  # command-line name: (field, parser)
        "memory": ("memory_bytes", parse_size),
        "processes": ("processes", parse_count),
        "file": ("file_bytes", parse_size),
        "disk": ("disk_bytes", parse_size),
        "files": ("files", parse_count),
        "tmpfs": ("tmpfs_bytes", parse_size),
        "output": ("output_bytes", parse_size),
        "cpu": ("cpu_seconds", parse_seconds),
        "wall": ("wall_seconds", parse_seconds),
        "cell": ("cell_seconds", parse_seconds),
    }

    @classmethod
    def parse(cls, text, base=None):
        """'memory=2G,cpu=10m,processes=256' (a command-line option) -> Limits."""
        changes = {}
        for item in filter(None, (part.strip() for part in str(text).split(","))):
            key, _, value = (part.strip() for part in item.partition("="))
            if key not in cls.KEYS or not value:
                raise ValueError(
                    f"not a limit: {item!r} (say key=value; keys: {', '.join(cls.KEYS)})"
                )
            name, parse = cls.KEYS[key]
            changes[name] = parse(value)
        return replace(base or cls(), **changes)

    def rlimits(self):
        """{resource name: (soft, hard)}: what the sandbox's processes get (prlimit; the
        zygote's kernels, lrpkit.grading.sandbox.zygote): no core files, the file size, memory
        plus DATA_HEADROOM (RLIMIT_DATA), tasks (RLIMIT_NPROC), CPU time (SIGXCPU past the
        limit, SIGKILL 5 s later)."""
        limits = {"RLIMIT_CORE": (0, 0)}
        if self.file_bytes is not None:
            limits["RLIMIT_FSIZE"] = (self.file_bytes, self.file_bytes)
        if self.memory_bytes is not None:
            limits["RLIMIT_DATA"] = (self.memory_bytes + DATA_HEADROOM,) * 2
        if self.processes is not None:
            limits["RLIMIT_NPROC"] = (self.processes, self.processes)
        if self.cpu_seconds is not None:
            limits["RLIMIT_CPU"] = (int(self.cpu_seconds) + 1, int(self.cpu_seconds) + 6)
        return limits

    def describe(self):
        """'memory 4 GiB, processes 512, ...': the limits, for logs and grade reports."""
        values = ((key, getattr(self, name)) for key, (name, _) in self.KEYS.items())
        return ", ".join(f"{k} {LimitHit(k, v).limit}" for k, v in values if v is not None)


_LABELS = {"memory": "memory", "processes": "process", "file": "file size", "disk": "disk"}
_LABELS.update(files="file count", tmpfs="temporary space", output="output", cpu="CPU time")
_LABELS.update(wall="wall time", cell="cell time")


@dataclass(frozen=True)
class LimitHit:
    """A limit a sandbox ran into: ``LimitHit("memory", 4 * GiB).text`` is
    'memory limit 4 GiB exceeded'; ``by`` names what stopped it ("cgroup", "watchdog") where
    two could: 'memory limit 4 GiB exceeded (cgroup)'."""

    kind: str  # a key of Limits.KEYS
    value: float
    by: str = ""

    @property
    def limit(self):
        if self.kind in ("memory", "file", "disk", "tmpfs", "output"):
            return format_size(self.value)
        return f"{self.value:g} s" if self.kind in ("cpu", "wall", "cell") else f"{self.value:g}"

    @property
    def text(self):
        by = f" ({self.by})" if self.by else ""
        return f"{_LABELS[self.kind]} limit {self.limit} exceeded{by}"

    __str__ = text.fget


def limit_from_error(ename, evalue, limits):
    """The limit behind an error a cell raised in the sandbox (else None): limits the kernel
    enforces end in an exception, not a kill: MemoryError (RLIMIT_DATA), 'File too large'
    (RLIMIT_FSIZE), 'No space left on device' (/tmp or /dev/shm full)."""
    if ename == "MemoryError" and limits.memory_bytes:
        return LimitHit("memory", limits.memory_bytes)
    if "File too large" in str(evalue) and limits.file_bytes:
        return LimitHit("file", limits.file_bytes)
    if "No space left on device" in str(evalue):
        return LimitHit("tmpfs", limits.tmpfs_bytes)
    return None


def python_roots():
    """This Python installation's folders (venv, base interpreter), symlinks resolved:
    {real folder: the paths the interpreter knows it by}."""
    roots = {}
    for path in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix):
        roots.setdefault(os.path.realpath(path), set()).add(os.path.abspath(path))
    real = os.path.realpath(sys.executable)
    if not any(real.startswith(root + os.sep) for root in roots):
        roots.setdefault(os.path.dirname(real), set()).add(os.path.dirname(real))
    return roots


def _under(path, folders):
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _data(text, fds):
    """A pipe bwrap reads ``text`` from (for --ro-bind-data); its descriptor joins fds."""
    read, write = os.pipe()
    os.write(write, text.encode())
    os.close(write)
    fds.append(read)
    return str(read)


class Sandbox:
    """A sandbox: ``writable`` (a folder, at the same path inside) is the only host folder it
    may write to; ``readonly``, paths or {host path: path inside}, are bound read-only (also
    over files and folders in ``writable``); ``hidden`` paths must not be exposed by any
    bind (the grader's home never is); ``env`` is its environment.

    Who the code inside runs as depends on who runs the grader:

    - not root: bwrap makes a user namespace; inside, uid 1000 (the grader's uid outside)
      with no capabilities; RLIMIT_NPROC counts the tasks of this sandbox only;
    - root: the kernel never applies RLIMIT_NPROC to (anything mapped to) uid 0, so bwrap runs
      as root without a user namespace and drops to ``uid`` (default: a fresh unprivileged
      uid per sandbox; ``writable`` is handed to it) with no capabilities, through setpriv.
      ``uid=0`` takes the user-namespace way instead (processes then limited by the watchdog).
    """

    def __init__(
        self, writable, readonly=(), limits=None, env=None, hidden=(), uid=None, cgroup=True,
        seccomp=True,
    ):  # fmt: skip
        """``cgroup``: give it a cgroup of its own where the grader may make one; ``seccomp``:
        run it under the seccomp filter (False: for tests that show what the filter does)."""
        self.writable = Path(writable).resolve()
        if not isinstance(readonly, dict):
            readonly = {path: path for path in readonly}
        self.readonly = {Path(s).resolve(): Path(d).absolute() for s, d in readonly.items()}
        self.limits = limits or Limits()
        self.env = env
        self.hidden = [Path(p).resolve() for p in (Path.home(), *hidden)]
        self.uid = None
        if os.geteuid() == 0 and uid != 0:
            self.uid = uid if uid is not None else FIRST_UID + secrets.randbelow(FIRST_UID)
        self.cgroup, self.seccomp = cgroup, seccomp

    def _bind(self, args, option, source, dest, bound, made):
        """Bind source on dest (default: the same path); first make dest's parents that do not
        exist inside, world-readable (bwrap would make them 0700)."""
        source, dest = Path(source), Path(dest or source)
        for hidden in self.hidden:
            if hidden.is_relative_to(source):
                raise ValueError(f"the sandbox would expose {hidden} (through {source})")
        for parent in map(str, reversed(dest.parents[:-1])):
            if not _under(parent, bound) and parent not in made:
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        args += [option, str(source), str(dest)]
        bound.append(str(dest))

    def command(self, argv, cwd=None, fds=None):
        """bwrap, the limits and argv, as one command line (``start`` runs and watches it).
        With a list ``fds``: also the seccomp filter and a private /etc/passwd and /etc/group,
        through descriptors appended to fds (pass them to the process, then close them)."""
        uid = UID if self.uid is None else self.uid
        args = [shutil.which("bwrap") or "bwrap", "--unshare-pid", "--unshare-net"]
        args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        args += ["--die-with-parent", "--new-session"]
        if fds is not None and self.seccomp:  # on what bwrap runs, after its own set-up
            args += ["--seccomp", seccomp.pipe(fds)]
        if self.uid is None:
            args += ["--unshare-user", "--uid", str(UID), "--gid", str(UID)]
            args += ["--disable-userns", "--cap-drop", "ALL"]
        args += ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc"]
        bound, made = ["/usr"], {"/etc", "/tmp", "/dev"}  # host folders bound; folders made
        for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(name):
                args += ["--symlink", os.readlink(name), name]
            elif os.path.isdir(name):
                self._bind(args, "--ro-bind", name, None, bound, made)
        for name in ETC:
            if os.path.exists(f"/etc/{name}"):
                args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        if fds is not None:
            user, group = f"student:x:{uid}:{uid}::/nonexistent:/bin/sh\n", f"student:x:{uid}:\n"
            args += ["--perms", "0444", "--ro-bind-data", _data(user, fds), "/etc/passwd"]
            args += ["--perms", "0444", "--ro-bind-data", _data(group, fds), "/etc/group"]
        # /proc, /dev and the private /tmp first: the Python installation (and the kit's
        # copies) may live under /tmp, say in a clone there, and must be bound on top of it.
        args += ["--proc", "/proc", "--dev", "/dev"]
        for tmpfs in ("/dev/shm", "/tmp"):
            args += ["--perms", "01777", "--size", str(self.limits.tmpfs_bytes), "--tmpfs", tmpfs]
        for real, names in sorted(python_roots().items()):
            for name in sorted(names | {real}):
                if not _under(name, bound):
                    self._bind(args, "--ro-bind", real, name, bound, made)
        self._bind(args, "--bind", self.writable, None, bound, made)
        for source, dest in self.readonly.items():
            self._bind(args, "--ro-bind", source, dest, bound, made)
        args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", str(cwd or self.writable)]
        args += ["--", *self._prlimit()]
        if self.uid is not None:
            args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
            args += ["--inh-caps=-all", "--bounding-set=-all", "--"]
        return args + [str(arg) for arg in argv]

    def _prlimit(self):
        args = [shutil.which("prlimit") or "prlimit"]
        for name, (soft, hard) in self.limits.rlimits().items():
            args.append(f"--{PRLIMIT[name]}={soft}:{hard}")
        return [*args, "--"]

    def start(self, argv, cwd=None, output=None, pass_fds=(), timeout=None, zygote=None):
        """Start argv in the sandbox (in ``cwd``, default ``writable``); its stdout and stderr
        go to ``output`` (a path or a binary file; None: ``Outcome.output``). ``timeout``
        overrides the wall limit. Returns the running ``Watchdog``: call its ``wait()``.
        ``zygote``: fork argv from it (``Watchdog``); where it will not, argv runs as usual."""
        if zygote is not None:
            try:
                return Watchdog(self, argv, cwd, output, pass_fds, timeout, zygote)
            except ForkRefused:
                pass
        return Watchdog(self, argv, cwd, output, pass_fds, timeout)

    def run(self, argv, **options):
        """``start(argv, **options).wait()``: the ``Outcome`` of a whole run."""
        return self.start(argv, **options).wait()


@dataclass
class Outcome:
    """How a sandboxed run ended."""

    returncode: int
    limit: LimitHit | None  # the limit the watchdog killed it for, if any
    seconds: float
    output: bytes  # its output, when not written to a file
    output_total: int  # bytes of output it produced, kept or not
    output_capped: LimitHit | None  # set when output beyond the limit was dropped
    peak_memory: int  # bytes, as the cgroup (else the watchdog) saw it
    peak_tasks: int
    isolation: str = "bubblewrap, seccomp"  # and the cgroup version, where it had one

    @property
    def reason(self):
        if self.limit:
            return self.limit.text
        if self.returncode < 0 or self.returncode > 128:
            return f"killed by signal {abs(self.returncode) % 128}"
        return f"exited with status {self.returncode}"


def _status(proc):
    """(anonymous + shared memory in bytes, threads) of one process, from its /proc status."""
    memory = threads = 0
    try:
        with open(proc / "status", "rb") as file:
            for line in file:
                if line.startswith((b"RssAnon:", b"RssShmem:")):
                    memory += int(line.split()[1]) * KiB
                elif line.startswith(b"Threads:"):
                    threads = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return memory, threads


def _cpu(proc):
    """CPU seconds of one process and of its children it has waited for."""
    try:
        fields = (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()
        return sum(map(int, fields[11:15])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _usage(folder, most):
    """(bytes on disk, entries, largest file) of a folder, on its file system only (a bind
    inside is not counted twice); stops counting past ``most`` entries."""
    used = entries = largest = 0
    try:
        stack, device = [folder], os.stat(folder).st_dev
    except OSError:
        return 0, 0, 0
    while stack and entries <= most:
        try:
            with os.scandir(stack.pop()) as listing:
                for entry in listing:
                    stat = entry.stat(follow_symlinks=False)
                    if stat.st_dev == device:
                        entries, used = entries + 1, used + stat.st_blocks * 512
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            largest = max(largest, stat.st_size)
        except OSError:
            continue
    return used, entries, largest


def _said_ready(fd, seconds):
    """Whether the waiter said "ready" on the pipe ``fd`` within ``seconds`` (closes fd)."""
    deadline, said = time.monotonic() + seconds, b""
    try:
        while b"\n" not in said and time.monotonic() < deadline:
            if select.select([fd], [], [], max(0, deadline - time.monotonic()))[0]:
                chunk = os.read(fd, 64)
                if not chunk:
                    break
                said += chunk
    finally:
        os.close(fd)
    return said == b"ready\n"


def _hand_over(folder, uid):
    """Give a folder and everything in it to uid (links are not followed)."""
    os.lchown(folder, uid, uid)
    for parent, names, files in os.walk(folder):
        for name in names + files:
            os.lchown(os.path.join(parent, name), uid, uid)


class ForkRefused(RuntimeError):
    """A zygote would not fork a sandbox's process; it runs as usual instead."""


class Watchdog:
    """A started sandbox: ``wait()`` polls its usage until it ends or breaks a limit.

    With a ``zygote`` (lrpkit.grading.sandbox.zygote.Zygote), argv is forked from it into the
    sandbox, where bwrap runs only a waiter (``cat`` on a pipe the zygote's keeper holds
    until argv ends): the sandbox ends with argv, as it does with argv run by bwrap."""

    def __init__(self, sandbox, argv, cwd, output, pass_fds, timeout, zygote=None):
        self.sandbox, self.limits = sandbox, sandbox.limits
        self.timeout = self.limits.wall_seconds if timeout is None else timeout
        if zygote is not None and sandbox.uid is None:
            raise ForkRefused("forking into a user namespace")  # the keeper could not join
        info_r, info_w = os.pipe()
        out_r, out_w = os.pipe()
        hold_r, hold_w = os.pipe() if zygote is not None else (None, None)
        ready_r, ready_w = os.pipe() if zygote is not None else (None, None)
        fds = [info_w]
        self.cgroups = None  # lrpkit.grading.sandbox.cgroups.Cgroups: its own, where there are any
        try:
            cmd = sandbox.command(argv if zygote is None else WAITER, cwd, fds)
            cmd[1:1] = ["--info-fd", str(info_w)]
            if sandbox.cgroup:
                self.cgroups = cgroups.Cgroups.make(self.limits.memory_bytes, self.limits.processes)
            if self.cgroups is not None:  # bwrap joins them first: all it starts is in them
                join = "".join(f"echo 0 > {shlex.quote(p)} && " for p in self.cgroups.procs)
                cmd = ["/bin/sh", "-c", join + 'exec "$@"', "sh", *cmd]
            if sandbox.uid is not None:
                _hand_over(sandbox.writable, sandbox.uid)
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                cmd,
                env=sandbox.env,
                stdin=subprocess.DEVNULL if zygote is None else hold_r,
                stdout=out_w if zygote is None else ready_w,
                stderr=out_w,
                pass_fds=(*fds, *(pass_fds if zygote is None else ())),
                start_new_session=True,
            )
        except OSError as error:
            for fd in (info_r, out_r, out_w, hold_w, ready_r):
                if fd is not None:
                    os.close(fd)
            if self.cgroups is not None:
                self.cgroups.remove()
            raise SandboxUnavailable(f"bwrap did not start ({error}). {REMEDY}") from error
        finally:
            for fd in (*fds, hold_r, ready_w):
                if fd is not None:
                    os.close(fd)
        with os.fdopen(info_r, "rb") as info:  # bwrap closes it once the sandbox exists
            text = info.read()
        self.init = json.loads(text)["child-pid"] if text else None  # its PID 1, from here
        self.pidfd = None  # to kill that init, never a process that reused its number
        if self.init:
            try:
                self.pidfd = os.pidfd_open(self.init)
            except OSError:
                pass
        self.stdout = os.fdopen(out_r, "rb")
        self.forked = None  # argv, forked from the zygote
        try:
            # Only a complete sandbox may be joined: bwrap runs the waiter, which says
            # "ready", once every mount is in place (before, the joiner could see the host's).
            if zygote is not None and _said_ready(ready_r, READY_SECONDS):
                self.forked = self._fork(zygote, argv, cwd, out_w, pass_fds, hold_w)
            elif hold_w is not None:
                os.close(hold_w)
        finally:
            os.close(out_w)
        if zygote is not None and self.forked is None:
            self.kill()
            self.proc.wait()
            self.stdout.close()
            if self.pidfd is not None:
                os.close(self.pidfd)
            if self.cgroups is not None:
                self.cgroups.remove()
            raise ForkRefused("the zygote did not fork it")
        self.root = Path(f"/proc/{self.init}/root")  # the sandbox's file system, from here
        self.ready = False  # whether root/proc is the sandbox's own /proc yet
        self.output, self.output_total, self.output_capped = bytearray(), 0, None
        self.pump = threading.Thread(target=self._pump, args=(output,), daemon=True)
        self.pump.start()
        self.hit, self.peak_memory, self.peak_tasks, self.polls = None, 0, 0, 0

    def _fork(self, zygote, argv, cwd, out, pass_fds, hold):
        """argv forked from the zygote into this sandbox, its output to ``out`` (a ``Forked``),
        or None; the keeper holds ``hold`` (the waiter's pipe) until argv ends."""
        null = os.open(os.devnull, os.O_RDWR)
        try:
            if self.pidfd is None:
                return None
            box = self.sandbox
            fds = {0: null, 1: out, 2: out, **{fd: fd for fd in pass_fds}, None: hold}
            env = dict(os.environ) if box.env is None else box.env
            cwd = cwd or box.writable
            return zygote.spawn(argv, cwd, env, fds, self.pidfd, self.confinement())
        finally:
            os.close(null)
            os.close(hold)

    def confinement(self):
        """How a process a zygote forks into this sandbox confines itself, as bwrap confines
        what it runs (lrpkit.grading.sandbox.zygote): the sandbox's uid, rlimits, cgroups (their
        cgroup.procs files) and seccomp filter (base64)."""
        return {
            "uid": self.sandbox.uid,
            "rlimits": self.limits.rlimits(),
            "cgroups": self.cgroups.procs if self.cgroups is not None else [],
            "seccomp": base64.b64encode(seccomp.program()).decode() if self.sandbox.seccomp else "",
        }

    @property
    def isolation(self):
        """How this sandbox confines, as grades.csv records it."""
        parts = ["bubblewrap", *(["seccomp"] if self.sandbox.seccomp else [])]
        return ", ".join([*parts, *([self.cgroups.name] if self.cgroups else [])])

    def _pump(self, output):
        """Copy the sandbox's output up to the limit; drain and drop the rest."""
        cap = self.limits.output_bytes
        sink = open(output, "wb") if isinstance(output, (str, Path)) else output
        write = self.output.extend if sink is None else sink.write
        try:
            while chunk := self.stdout.read1(1 << 16):
                before, self.output_total = self.output_total, self.output_total + len(chunk)
                if cap is not None and self.output_total > cap:
                    chunk = chunk[: max(0, cap - before)]
                    if self.output_capped is None:
                        self.output_capped = LimitHit("output", cap)
                        chunk += f"\n[sandbox: {self.output_capped}; dropped]\n".encode()
                if chunk:
                    write(chunk)
        finally:
            if sink is not None and sink is not output:
                sink.close()

    def _procs(self):
        """The sandbox's processes, as folders of its own /proc (None until it is mounted)."""
        proc = self.root / "proc"
        try:  # a fresh procfs has a device number of its own; before the mount we see ours
            if not self.ready and os.stat(proc).st_dev == os.stat("/proc").st_dev:
                return None
            self.ready = True
            return [proc / name for name in os.listdir(proc) if name.isdigit()]
        except OSError:
            return None

    def poll(self):
        """Measure once; the LimitHit to kill the sandbox for, or None."""
        lim = self.limits
        self.polls += 1
        if self.timeout is not None and time.monotonic() - self.started > self.timeout:
            return LimitHit("wall", self.timeout)
        procs = self._procs() if self.init else None
        if procs is None:
            return None
        if lim.processes is not None and len(procs) >= lim.processes:
            return LimitHit("processes", lim.processes, "watchdog")  # before a file per process
        memory, tasks = (sum(values) for values in zip((0, 0), *map(_status, procs)))
        self.peak_memory = max(self.peak_memory, memory)
        self.peak_tasks = max(self.peak_tasks, tasks)
        hit = self._cgroup_hit()
        if hit is not None:
            return hit
        # a cgroup counts memory better than this sum (shared pages once, memfds, tmpfs)
        if lim.memory_bytes is not None and memory > lim.memory_bytes and not self.cgroups:
            return LimitHit("memory", lim.memory_bytes, "watchdog")
        if lim.processes is not None and tasks >= lim.processes:
            return LimitHit("processes", lim.processes, "watchdog")
        most = lim.files if lim.files is not None else 1 << 62
        places = (self.sandbox.writable, self.root / "tmp", self.root / "dev/shm")
        used, entries, largest = zip(*(_usage(place, most) for place in places))
        if lim.files is not None and sum(entries) > lim.files:
            return LimitHit("files", lim.files)
        if lim.disk_bytes is not None and sum(used) > lim.disk_bytes:
            return LimitHit("disk", lim.disk_bytes)
        if lim.file_bytes is not None and max(largest) >= lim.file_bytes:
            return LimitHit("file", lim.file_bytes)
        if self.polls % SLOW == 0 and lim.cpu_seconds is not None:
            if sum(map(_cpu, procs)) > lim.cpu_seconds:
                return LimitHit("cpu", lim.cpu_seconds)
        return None

    def _cgroup_hit(self):
        """The limit the kernel enforced in the sandbox's cgroup (an OOM kill, a refused
        fork), or None."""
        if self.cgroups is None:
            return None
        if self.limits.memory_bytes is not None and self.cgroups.oom_kills():
            return LimitHit("memory", self.limits.memory_bytes, "cgroup")
        if self.limits.processes is not None and self.cgroups.refused_forks():
            return LimitHit("processes", self.limits.processes, "cgroup")
        return None

    def kill(self):
        """Kill everything in the sandbox: the death of its init ends its PID namespace."""
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
        self.proc.kill()  # bwrap outside; does nothing once it has been waited for

    def wait(self, timeout=None):
        """Poll until the sandbox ends or breaks a limit (``timeout`` overrides the wall
        limit); kill whatever is left in it; return the ``Outcome``."""
        self.timeout = self.timeout if timeout is None else timeout
        try:
            while self.proc.poll() is None and not self.hit:
                self.hit = self.poll()
                try:
                    self.proc.wait(INTERVAL)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self.kill()
            returncode = self.proc.wait()
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None
            self.pump.join(timeout=10)
            self.stdout.close()
            if self.forked is not None:  # its status, not the waiter's
                status = self.forked.poll()
                returncode = returncode if status is None else status
                self.forked.close()
            if self.cgroups is not None:  # an OOM kill may have ended the run between polls
                self.hit = self.hit or self._cgroup_hit()
                self.peak_memory = max(self.peak_memory, self.cgroups.peak_memory())
                self.cgroups.remove()
        seconds = time.monotonic() - self.started
        return Outcome(
            returncode, self.hit, seconds, bytes(self.output), self.output_total,
            self.output_capped, self.peak_memory, self.peak_tasks, self.isolation,
        )  # fmt: skip


@functools.cache
def _problem():
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux, not {sys.platform}. {REMEDY}"
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            return f"`{tool}` (Debian package {package}) is not installed. {REMEDY}"
    if seccomp.problem():
        return seccomp.problem()
    with tempfile.TemporaryDirectory(prefix="lrpkit-probe-") as folder:
        try:
            outcome = Sandbox(folder).run([sys.executable, "-S", "-c", "pass"], timeout=60)
        except (OSError, SandboxUnavailable, ValueError) as error:
            return f"bubblewrap did not run: {error}"
    if outcome.returncode != 0:
        said = outcome.output.decode(errors="replace").strip()[-300:]
        return f"bubblewrap failed here ({said or outcome.reason}). {REMEDY}"
    return None


def probe():
    """Run a sandbox once (the answer is cached); raise SandboxUnavailable if it fails."""
    if _problem():
        raise SandboxUnavailable(_problem())


def available():
    """Whether sandboxes run here (``probe`` without the exception)."""
    return _problem() is None
