"""One cgroup per sandbox: memory and processes counted and limited by the kernel (instructors,
grading).

The watchdog (lrpkit.grading.sandbox.watchdog) sums what it sees in /proc; memory held in memfds,
tmpfs or the page cache is in no process's resident set. A cgroup counts all of it. Where the
grader may make cgroups -- cgroup v1 with the memory and pids controllers writable (root), or
cgroup v2 where the grader's parent folder delegates memory and pids (the root of the
hierarchy for root, or a folder named in LRPKIT_CGROUP, say a systemd unit's with
Delegate=yes) -- ``Cgroups.make`` gives each sandbox its own: memory.limit_in_bytes (v1) or
memory.max (v2) at the memory limit, no swap beyond it, pids.max at the process limit plus
the grader's own few processes in it (bwrap outside, the zygote's keepers). bwrap and the
keepers join it before anything of the run starts; the kernel kills within it when memory
runs out (``oom_kills``) and refuses forks past pids.max (``refused_forks``). ``remove``
kills what is left and removes it (and ``sweep`` those a killed grader left). ``support()``
says which version is usable here, or None: then the watchdog alone stands guard.
"""

import functools
import os
import signal
import time
import uuid
from pathlib import Path

ENV = "LRPKIT_CGROUP"  # a delegated cgroup v2 folder the grader makes its cgroups in
PIDS_SLACK = 8  # pids.max beyond the process limit: bwrap outside, keepers, the waiter
PREFIX = "lrpkit-"
STALE_SECONDS = 120  # an empty sandbox cgroup this old was left by a grader that was killed


def _mounts(mountinfo="/proc/self/mountinfo"):
    """{"v2": mount point} and {controller: mount point} of cgroup v1 hierarchies."""
    found = {}
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, kind = left.split(), right.split()
        if len(fields) < 5 or len(kind) < 3:
            continue
        point = fields[4]
        if kind[0] == "cgroup2":
            found.setdefault("v2", point)
        elif kind[0] == "cgroup":
            for option in kind[2].split(","):
                found.setdefault(option, point)
    return found


def _own(path="/proc/self/cgroup"):
    """{controller or "v2": this process's cgroup path} from /proc/self/cgroup."""
    found = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        number, controllers, where = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and not controllers:
            found["v2"] = where
        for controller in filter(None, controllers.split(",")):
            found[controller] = where
    return found


def _writable(folder):
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _parents(mounts=None, own=None, env=None):
    """("v1" or "v2", {controller: the folder sandbox cgroups are made in}), or None."""
    mounts = _mounts() if mounts is None else mounts
    own = _own() if own is None else own
    env = os.environ if env is None else env
    if "memory" in mounts and "pids" in mounts and "memory" in own and "pids" in own:
        folders = {c: Path(mounts[c]) / own[c].lstrip("/") for c in ("memory", "pids")}
        if all(_writable(f) for f in folders.values()):
            return "v1", folders
    if "v2" in mounts:
        if env.get(ENV):
            parent = Path(env[ENV])
        elif os.geteuid() == 0:
            parent = Path(mounts["v2"])
        else:
            return None
        try:
            delegated = set((parent / "cgroup.subtree_control").read_text().split())
        except OSError:
            return None
        if {"memory", "pids"} <= delegated and _writable(parent):
            return "v2", {"memory": parent, "pids": parent}
    return None


@functools.cache
def parents():
    """``_parents()`` of this process, found once (and the cgroups a killed grader left
    there removed: ``sweep``)."""
    found = _parents()
    if found is not None:
        sweep(found[1].values())
    return found


def sweep(folders, age=STALE_SECONDS):
    """Remove the empty sandbox cgroups in these folders made more than ``age`` seconds ago:
    a grader that was killed left them (a live sandbox's cgroup is never empty for long)."""
    now = time.time()
    for folder in dict.fromkeys(folders):
        try:
            stale = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and p.is_dir()]
        except OSError:
            continue
        for path in stale:
            try:
                if now - path.stat().st_mtime > age and not (path / "cgroup.procs").read_text():
                    path.rmdir()
            except OSError:
                continue


def support():
    """Which cgroups sandboxes get here ("cgroup v1", "cgroup v2"), or None."""
    found = parents()
    return f"cgroup {found[0]}" if found else None


def _read_counter(path, key):
    """The number after ``key`` in a flat keyed file (memory.events, pids.events...)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class Cgroups:
    """The cgroups of one sandbox (v1: one in the memory and one in the pids hierarchy; v2:
    one folder); ``procs`` are the files a process writes "0" to, to join them."""

    def __init__(self, version, folders):
        self.version, self.folders = version, folders

    @classmethod
    def make(cls, memory_bytes, processes, where=None):
        """New cgroups with these limits (None: no limit), or None where there are none;
        ``where``: what ``parents()`` would say."""
        found = where if where is not None else parents()
        if found is None:
            return None
        version, parent = found
        name = PREFIX + uuid.uuid4().hex[:16]
        folders = {c: parent[c] / name for c in ("memory", "pids")}
        made = cls(version, folders)
        try:
            for folder in dict.fromkeys(folders.values()):
                folder.mkdir()
            made._limit(memory_bytes, processes)
        except OSError:
            made.remove()
            return None
        return made

    def _write(self, controller, name, value):
        (self.folders[controller] / name).write_text(str(value))

    def _limit(self, memory_bytes, processes):
        memory = self.folders["memory"]
        if memory_bytes is not None:
            if self.version == "v1":
                self._write("memory", "memory.limit_in_bytes", memory_bytes)
                if (memory / "memory.memsw.limit_in_bytes").exists():  # swap accounting on
                    self._write("memory", "memory.memsw.limit_in_bytes", memory_bytes)
            else:
                self._write("memory", "memory.max", memory_bytes)
                if (memory / "memory.swap.max").exists():
                    self._write("memory", "memory.swap.max", 0)
        if processes is not None:
            self._write("pids", "pids.max", processes + PIDS_SLACK)

    @property
    def procs(self):
        """The cgroup.procs files to join (writing "0" moves the writer)."""
        return [str(folder / "cgroup.procs") for folder in dict.fromkeys(self.folders.values())]

    @property
    def name(self):
        return f"cgroup {self.version}"

    def oom_kills(self):
        """Processes the kernel killed here for want of memory."""
        memory = self.folders["memory"]
        if self.version == "v1":
            return _read_counter(memory / "memory.oom_control", "oom_kill")
        return _read_counter(memory / "memory.events", "oom_kill")

    def refused_forks(self):
        """Forks the kernel refused here at pids.max."""
        return _read_counter(self.folders["pids"] / "pids.events", "max")

    def peak_memory(self):
        """The most memory (bytes) it held, as the kernel counts it."""
        name = "memory.max_usage_in_bytes" if self.version == "v1" else "memory.peak"
        try:
            return int((self.folders["memory"] / name).read_text())
        except (OSError, ValueError):
            return 0

    def _pids(self):
        pids = set()
        for procs in self.procs:
            try:
                pids.update(int(p) for p in Path(procs).read_text().split())
            except (OSError, ValueError):
                pass
        return pids

    def remove(self, seconds=5):
        """Kill whatever is still in it, then remove it (waiting up to ``seconds``)."""
        deadline = time.monotonic() + seconds
        for folder in reversed(list(dict.fromkeys(self.folders.values()))):
            while folder.exists():
                try:
                    folder.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    for pid in self._pids():
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                    time.sleep(0.01)
