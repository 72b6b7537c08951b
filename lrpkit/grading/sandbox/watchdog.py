"""Start a bubblewrap sandbox's process and watch it until it ends or breaks a limit (grading).

``Watchdog(sandbox, argv, ...)`` (``Sandbox.start``, lrpkit.grading.sandbox.bwrap) runs the
sandbox's bwrap command line in the sandbox's cgroups (lrpkit.grading.sandbox.cgroups) where
it has them, keeps a pidfd of the sandbox's init (whose death ends its PID namespace: all of
it), copies its output up to ``output_bytes`` and polls every 50 ms: memory summed over the
processes in the sandbox's own /proc where there is no cgroup (a cgroup counts memfds, tmpfs
and page cache too), the cgroup's OOM kills and refused forks where there is one, processes
and threads, wall time, bytes, files and the largest file in ``writable``, /tmp and /dev/shm;
CPU time every 250 ms. On a breach it kills the sandbox and names the limit (``LimitHit``,
lrpkit.grading.sandbox.limits); ``wait()`` gives the ``Outcome``.

With a zygote (lrpkit.grading.sandbox.zygote), argv is forked from it into the sandbox once
the sandbox is complete; bwrap then runs only a waiter that ends with argv.
"""

import base64
import json
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lrpkit.grading.sandbox import cgroups, seccomp
from lrpkit.grading.sandbox.bwrap import REMEDY, SandboxUnavailable
from lrpkit.grading.sandbox.limits import KiB, LimitHit

INTERVAL, SLOW = 0.05, 5  # seconds between polls; CPU time every SLOW-th poll
#: what bwrap runs where a zygote forks the sandbox's process: it says "ready" once the
#: sandbox is complete, then waits for the end of its stdin (the zygote's keeper holds it)
WAITER = ["/bin/sh", "-c", "echo ready && exec cat"]
READY_SECONDS = 30


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
