"""Run one submission's processes in a bubblewrap sandbox (instructors, grading).

``Sandbox(writable, readonly, limits).start(argv)`` runs argv under ``bwrap`` with no network,
its own PID namespace (all of it dies when argv exits, on a breach and with the grader), the
system and the Python installation (venv, base interpreter: nothing else of the repository)
read-only, private /tmp and /dev/shm, ``writable`` the only writable host folder and nothing
else of the machine visible (the grader's home, the repository, other submissions), as an
unprivileged user without capabilities, under a seccomp filter (lrpkit.grading.sandbox.seccomp: no
new namespaces, no mount, ptrace, bpf, keyrings, kernel modules...; ``--disable-userns`` too
where bwrap makes a user namespace). This module builds that command line and probes whether
bubblewrap runs here (``probe``, ``available``).

Limits (lrpkit.grading.sandbox.limits): ``prlimit`` sets ``Limits.rlimits()``: RLIMIT_FSIZE,
RLIMIT_CPU, RLIMIT_NPROC and RLIMIT_DATA (memory + 1 GiB per process; torch maps ~3 GiB it
never touches, so not RLIMIT_AS) right before argv; where the grader may make cgroups
(lrpkit.grading.sandbox.cgroups), each sandbox gets its own, with the memory limit (memfds,
tmpfs and page cache included) and the process limit; the watchdog
(lrpkit.grading.sandbox.watchdog) that ``start`` returns polls the rest, kills the sandbox on
a breach and names the limit ("memory limit 4 GiB exceeded (cgroup)").

``start(argv, zygote=...)`` forks argv from a zygote (lrpkit.grading.sandbox.zygote) into the
sandbox instead, once it is complete; bwrap then runs only a waiter that ends with argv.
"""

import functools
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from lrpkit.grading.sandbox import seccomp
from lrpkit.grading.sandbox.limits import Limits

UID = 1000  # the sandbox's uid (and gid) inside its user namespace
FIRST_UID = 1 << 28  # a root grader's sandboxes run as fresh uids above this one
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
        # here, not at the top: the watchdog raises this module's SandboxUnavailable
        from lrpkit.grading.sandbox.watchdog import ForkRefused, Watchdog

        if zygote is not None:
            try:
                return Watchdog(self, argv, cwd, output, pass_fds, timeout, zygote)
            except ForkRefused:
                pass
        return Watchdog(self, argv, cwd, output, pass_fds, timeout)

    def run(self, argv, **options):
        """``start(argv, **options).wait()``: the ``Outcome`` of a whole run."""
        return self.start(argv, **options).wait()


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
