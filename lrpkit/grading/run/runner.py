"""Running one submission: a private sandbox folder, pytest --nbval on its graded notebook.

``Grader.run`` prepares a fresh sandbox (read-only copies of the kit, HOME and TMPDIR inside
it), writes the graded notebook there, starts ``kernel_command`` (environment.py) in its own
session, reads the plugin's cell records from a pipe the kernel does not inherit
(resultpipe.py), kills every process the run started (by the token in their environment) and
reports which files the run changed. The stand-in weights its kernels share: standin.py.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from lrpkit.grading.intake.files import Refused, read_file, read_tail, remove_tree
from lrpkit.grading.run.environment import (
    CELL_TIMEOUT,
    FORKED_NAME,
    TOKEN,
    RunFolders,
    kernel_command,
    kernel_environment,
)
from lrpkit.grading.run.forked import Forked
from lrpkit.grading.run.notebook import graded_notebook, kit_modules
from lrpkit.grading.run.resultpipe import ResultPipe
from lrpkit.grading.run.standin import float64_path, make_standin_cache, prepared
from lrpkit.grading.sandbox import cgroups
from lrpkit.grading.sandbox.bwrap import Sandbox, probe
from lrpkit.grading.sandbox.limits import LimitHit, Limits
from lrpkit.grading.sandbox.watchdog import Watchdog
from lrpkit.grading.sandbox.zygote import ENV as KERNEL_FD
from lrpkit.grading.sandbox.zygote import KERNEL, KERNEL_RUN, PRELOAD, PYTEST, PYTEST_RUN, Zygote
from lrpkit.layout import ROOT

ZYGOTE_TIMEOUT = 120  # seconds the first run waits for the zygote (then: kernels start alone)
TIMEOUT = 600  # seconds per submission, everything included
PLUGIN = Path(__file__).with_name("plugin.py")
FORKED = Path(__file__).with_name("forked.py")  # the plugin's handle on a forked kernel


@dataclass
class Run:
    """What one run of a submission's graded notebook gave."""

    records: dict  # graded-notebook cell number -> the plugin's record
    roles: list  # [notebook.Role] of the graded notebook's cells
    changes: list = field(default_factory=list)  # names of files the run changed
    timed_out: bool = False
    limit: LimitHit | None = None  # the sandbox limit the run was stopped for, if any
    seconds: float = 0.0
    log: str = ""  # the end of pytest's output
    started: float = 0.0  # wall-clock times, to find runs that overlapped a change
    ended: float = 0.0
    sandbox: str = ""  # how it was isolated, recorded with its grade ("bubblewrap, seccomp...")
    limits: Limits | None = None  # the sandbox's limits (None: unconfined)
    config: object = (
        None  # the hidden configuration it was graded on (lrpkit.selfcheck.config.Config)
    )


def kill_token(token, prefix=False):
    """Kill every process whose environment carries this run's token (kernels included)."""
    import psutil

    me = os.getpid()
    victims = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            mark = proc.environ().get(TOKEN, "")
            if mark == token or prefix and mark.startswith(token):
                victims.append(proc)
        except (psutil.Error, OSError):
            continue
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=5)
    return len(victims)


#: the old name of files.remove_tree (any depth, any file, links not followed)
force_rmtree = remove_tree


def same(path, data):
    """Whether a file holds exactly these bytes (False when it cannot be read, is a link or
    not a regular file: never read beyond len(data) + 1 bytes)."""
    try:
        return read_file(path, len(data)) == data
    except (OSError, Refused):
        return False


def isolation(sandboxed=True):
    """What grades.csv's sandbox column says of a run here: "bubblewrap, seccomp", with the
    cgroup version where sandboxes get cgroups, or "none (--no-sandbox)"."""
    if not sandboxed:
        return "none (--no-sandbox)"
    return ", ".join(["bubblewrap", "seccomp", *filter(None, [cgroups.support()])])


class Grader:
    """Runs submissions, each in a fresh sandbox under ``workdir`` (stand-in weights and
    matplotlib's font cache are made there once and shared)."""

    def __init__(
        self,
        course,
        workdir,
        cell_timeout=CELL_TIMEOUT,
        timeout=TIMEOUT,
        workers=1,
        standin_cache=None,
        keep=False,
        limits=None,
        sandbox=True,
        hidden=None,
        fork=True,
    ):
        """``sandbox``: run each submission in bubblewrap with ``limits`` (``probe`` raises
        SandboxUnavailable where it cannot run); False runs it unconfined (--no-sandbox).
        ``fork``: fork kernels from a zygote that imported torch once
        (lrpkit.grading.sandbox.zygote;
        the first run waits for it). Kernels start as ``python -m ipykernel_launcher`` where
        it cannot serve (a grader not root, in bubblewrap: a user namespace) or has failed."""
        self.limits = limits or Limits()
        self.hidden = hidden  # lrpkit.grading.run.hidden.HiddenChecks, or None
        self.sandboxed = bool(sandbox)
        if self.sandboxed:
            probe()
        self.course = course
        self.workdir = Path(workdir)
        self.cell_timeout = cell_timeout
        self.timeout = timeout
        self.workers = max(1, int(workers))
        self.keep = keep
        self.token_prefix = uuid.uuid4().hex
        self.lock = threading.Lock()
        self.jobs = 0  # runs started so far, numbering their folders and tokens
        self.cache = self.cache64 = None
        self.mpl = self.workdir / "mplconfig"
        if not self.mpl.is_dir():
            self._warm_matplotlib()
        self.zygote = self.pytest_zygote = None  # forking kernels, and pytest
        if fork and (not self.sandboxed or os.geteuid() == 0):
            env = kernel_environment(self.workdir / "zygote", self.token_prefix, self.threads)
            del env["PYTHONPATH"]
            env["MPLCONFIGDIR"] = str(self.mpl)  # the font cache it keeps in memory
            # The tiny courses of the tests import numpy only; the kit's, torch and more.
            preload = PRELOAD if course.standin else ("numpy", *KERNEL)
            log = self.workdir / "zygote.log"
            self.zygote = Zygote(env, KERNEL_RUN, preload, log)
            self.pytest_zygote = Zygote(env, PYTEST_RUN, PYTEST, log)
        if course.standin and standin_cache:
            self.cache = Path(standin_cache)
            if not (self.cache.is_file() and float64_path(self.cache).is_file()):
                make_standin_cache(self.cache, course)
        elif course.standin:  # the user's cache's, made there by the first run (standin.py);
            # unconfined runs could change them: those make their own
            self.cache = prepared(course, self.workdir, shared=self.sandboxed)[0]
        if self.cache is not None:
            self.cache64 = float64_path(self.cache)

    def close(self):
        """End the zygotes (and with them any run still going)."""
        zygotes = [z for z in (self.zygote, self.pytest_zygote) if z is not None]
        for zygote in zygotes:  # both told first: they exit (~0.7 s each) at the same time
            zygote.close(wait=False)
        for zygote in zygotes:
            zygote.join()

    @property
    def isolation(self):
        """How runs are isolated, as grades.csv records it (a sandboxed run's own Outcome
        says whether it had a cgroup)."""
        return isolation(self.sandboxed)

    @property
    def threads(self):
        """Threads per kernel: the CPUs shared by the workers."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    def _warm_matplotlib(self):
        """Build matplotlib's font cache once; every sandbox gets a copy (saves ~1 s each)."""
        self.mpl.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, MPLCONFIGDIR=str(self.mpl), MPLBACKEND="Agg")
        subprocess.run(
            [sys.executable, "-c", "import matplotlib.font_manager"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )

    def _next_job(self):
        with self.lock:
            self.jobs += 1
            return self.jobs

    def prepare(self, job):
        """A private sandbox with its own copies of the kit files, and a control folder."""
        base = self.workdir / "jobs" / f"{job}-{uuid.uuid4().hex[:12]}"
        folders = RunFolders(base / "box", base / "ctl")
        for name, data in self.course.files.items():
            path = folders.sandbox / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o444)
        for name in ("home", "tmp"):
            (folders.sandbox / name).mkdir(parents=True, exist_ok=True)
        if self.mpl.is_dir():
            shutil.copytree(self.mpl, folders.sandbox / "home" / ".matplotlib")
        folders.control.mkdir(parents=True)
        shutil.copyfile(PLUGIN, folders.plugin)
        shutil.copyfile(FORKED, folders.control / FORKED_NAME)
        folders.ini.write_text("[pytest]\n")
        return folders

    def run(self, sub, lost=()):
        """Run one parsed submission under nbval; the Run says what each cell gave. The checks
        of ``lost`` exercises (their notebook empty, unreadable or missing) are left out."""
        job = self._next_job()
        token = f"{self.token_prefix}-{job}"
        folders = self.prepare(job)
        course = self.course
        config = self.hidden.config(sub.student) if self.hidden is not None else None
        checks = [check for check in course.checks if check.exercise not in lost]
        graded = graded_notebook(
            sub, checks, folders.sandbox, self.cache, course.skip, config, self.cache64,
            kit_modules(course.files),
        )  # fmt: skip
        nbformat.write(graded.notebook, str(folders.notebook))
        written = {
            folders.notebook: folders.notebook.read_bytes(),
            folders.plugin: PLUGIN.read_bytes(),
            folders.control / FORKED_NAME: FORKED.read_bytes(),
        }
        pipe = ResultPipe()
        started, wall_started = time.monotonic(), time.time()
        proc = self._start(folders, token, pipe)
        pipe.start_reading()
        timed_out, limit, isolation = self._wait(proc, token)
        records = pipe.records()
        seconds = time.monotonic() - started
        log = self._log(folders)
        changes = self.sandbox_changes(folders.sandbox)
        changes += [path.name for path, data in written.items() if not same(path, data)]
        if not self.keep:
            self._clean(folders.sandbox.parent)
        return Run(
            records,
            graded.roles,
            changes,
            timed_out,
            limit,
            seconds,
            log,
            wall_started,
            time.time(),
            isolation,
            self.limits if self.sandboxed else None,
            config,
        )

    @staticmethod
    def _log(folders):
        """The end of pytest's log (the reason of a run that gave no records)."""
        try:
            return read_tail(folders.log, 4000).decode("utf-8", "replace")
        except (OSError, Refused) as error:  # no path of the grader's in a student's row
            return f"pytest's log could not be read ({getattr(error, 'strerror', '') or error})"

    @staticmethod
    def _clean(folder):
        """Remove a run's folders; a failure costs no result (what is left goes with the
        workdir, and is named on stderr)."""
        try:
            remove_tree(folder)
        except OSError as error:
            print(f"warning: {error}", file=sys.stderr)

    def _start(self, folders, token, pipe):
        """Start pytest in a session of its own, its output going to the control folder's log:
        forked from the pytest zygote where it runs, handed the socket it asks the kernel
        zygote on for its kernel (lrpkit.grading.sandbox.zygote)."""
        argv, env = kernel_command(folders, token, self.cell_timeout, self.threads)
        env.update(pipe.environment())
        ours = theirs = None
        if self._ready(self.zygote):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            env[KERNEL_FD] = str(theirs.fileno())
        fds = (*pipe.pass_fds, *([theirs.fileno()] if theirs else ()))
        forks = self.pytest_zygote if self._ready(self.pytest_zygote) else None
        try:
            if self.sandboxed:
                box = self._sandbox(folders, env)
                proc = box.start(
                    argv, cwd=folders.control, output=folders.log, pass_fds=fds, zygote=forks
                )
                if ours is not None and proc.pidfd is not None and box.uid is not None:
                    self.zygote.serve(ours, proc.pidfd, proc.confinement())
                return proc
            with open(folders.log, "wb") as log:
                proc = None
                if forks is not None:
                    null = os.open(os.devnull, os.O_RDONLY)
                    targets = {0: null, 1: log.fileno(), 2: log.fileno(), **{f: f for f in fds}}
                    proc = forks.spawn(argv, folders.control, env, targets)
                    os.close(null)
                if proc is None:
                    proc = subprocess.Popen(
                        argv,
                        cwd=folders.control,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        pass_fds=fds,
                    )
            if ours is not None:
                self.zygote.serve(ours)
            return proc
        finally:
            for end in (ours, theirs):
                if end is not None:
                    end.close()

    @staticmethod
    def _ready(zygote):
        return zygote is not None and zygote.wait_ready(ZYGOTE_TIMEOUT)

    def _sandbox(self, folders, env):
        """The bubblewrap sandbox of one run: only its sandbox folder writable; the kit copies,
        the graded notebook, the control folder and the stand-in weights read-only; nothing of
        the kit's own folder (solutions, reference LRP, course secret) or the grader's home."""
        kit = {name.split("/")[0] for name in self.course.files}  # utils.py, lrpkit, data
        readonly = [folders.control, folders.notebook, *(folders.sandbox / top for top in kit)]
        readonly += [self.cache, self.cache64] if self.cache else []
        return Sandbox(folders.sandbox, readonly, self.limits, env, hidden=[ROOT])

    def _wait(self, proc, token):
        """Wait for pytest up to the per-submission limit, then kill everything the run
        started; returns (whether the time limit was reached, the sandbox limit hit, how the
        run was isolated)."""
        if isinstance(proc, Watchdog):
            outcome = proc.wait(timeout=self.timeout)
            kill_token(token)
            hit = outcome.limit
            if hit is not None and hit.kind == "wall":
                return True, None, outcome.isolation
            return False, hit, outcome.isolation
        timed_out = False
        try:
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            kill_token(token)
            proc.wait()
            if isinstance(proc, Forked):
                proc.close()
        return timed_out, None, self.isolation

    def sandbox_changes(self, sandbox):
        """Kit files in the sandbox that differ from the originals after a run."""
        return [name for name, data in self.course.files.items() if not same(sandbox / name, data)]
