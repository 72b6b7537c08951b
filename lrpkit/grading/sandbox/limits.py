"""What a grading sandbox may use, and how a breach is named (instructors, grading).

``Limits`` holds the limits of one sandbox (memory, processes, file size, disk, files, /tmp
and /dev/shm, output, CPU, wall and cell time; None switches one off), parsed from the
command line (``Limits.parse("memory=2G,cpu=10m")``), and the rlimits its processes get
(``Limits.rlimits()``: set by prlimit in lrpkit.grading.sandbox.bwrap, by a forked process
itself in lrpkit.grading.sandbox.zygote). ``LimitHit`` names a limit a run ran into ("memory
limit 4 GiB exceeded (cgroup)"), as the watchdog (lrpkit.grading.sandbox.watchdog) reports it
and ``limit_from_error`` reads it from an exception a cell raised.
"""

from dataclasses import dataclass, replace

GiB, MiB, KiB = 1 << 30, 1 << 20, 1 << 10
DATA_HEADROOM = GiB  # RLIMIT_DATA is the memory limit plus this


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
