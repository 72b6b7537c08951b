"""Protecting files no submission may change: snapshot them, notice changes, restore them.

``Watch`` keeps a snapshot of the protected files (``protected_paths``: the kit, the
references, the solutions and every submission); ``verify`` restores each changed file and
keeps the changed version in a quarantine folder for the instructor to look at.
"""

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lrpkit.grading.course import GradingError
from lrpkit.grading.intake import files

MAX_SUBMISSION_ENTRIES = 1_000_000  # files and folders a submissions folder may hold
#: files of a course root no submission may change
PROTECTED = (
    "*.py",
    "lrpkit/**/*.py",
    "notebooks/solutions/*.ipynb",
    "data/reference/**/*",
    "data/castle.jpg",
    "*.toml",
    "*.txt",
    "*.yml",
    "Makefile",
)


def protected_paths(root, submissions, course_root=None):
    """Files no submission may change: the kit, references, solutions, and all submissions."""
    paths = []
    for base in {Path(root), Path(course_root or root)}:
        for pattern in PROTECTED:
            paths += [p for p in base.glob(pattern) if p.is_file()]
    paths += submission_files(submissions)
    return sorted(set(paths))


def submission_files(submissions):
    """The regular files in the submissions folder at any depth (links are not followed, a
    folder that cannot be listed is left out: it cannot be graded either), or the zip."""
    base = os.path.realpath(submissions)
    if os.path.isfile(base):
        return [Path(submissions)]  # the LMS's zip download
    try:
        found = files.walk(base, MAX_SUBMISSION_ENTRIES, on_error=lambda path, error: None)
    except files.Refused as error:
        raise GradingError(f"{submissions}: {error}") from None
    return [Path(submissions, entry.name) for entry in found if entry.kind == "file"]


@dataclass(frozen=True)
class Stamp:
    """What the file system says about a file; a write always changes ctime."""

    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    mode: int

    @classmethod
    def of(cls, path):
        st = path.stat()
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


@dataclass(frozen=True)
class Snapshot:
    """A protected file as it must stay: its stamp, and its bytes when it is small."""

    stamp: Stamp
    data: bytes | None  # None for a big file (restored by Watch.restore_big)


class Watch:
    """Snapshot of protected files; ``verify`` restores changed ones and says which changed.

    Small files are compared by content; big ones (the stand-in cache) by inode, size and
    modification and change times -- a write always updates ctime, which no program can set.
    """

    BIG = 16 * 2**20

    def __init__(self, paths, restore_big=None, quarantine=None):
        self.items = {}  # path -> Snapshot
        self.restore_big = restore_big  # remakes a big file at a path
        self.quarantine = Path(quarantine) if quarantine else None
        for path in paths:
            path = Path(path)
            if path.is_file():
                self.add(path)

    def add(self, path):
        """Protect one more file, as it is now."""
        stamp = Stamp.of(path)
        data = path.read_bytes() if stamp.size <= self.BIG else None
        self.items[path] = Snapshot(stamp, data)

    def verify(self):
        """Restore every protected file that changed; returns their paths."""
        changed = []
        for path, snapshot in self.items.items():
            if not self._changed(path, snapshot):
                continue
            changed.append(path)
            self.restore(path, snapshot.data)
        return changed

    def _changed(self, path, snapshot):
        try:
            now = Stamp.of(path)
        except OSError:
            return True
        if now == snapshot.stamp:
            return False
        if snapshot.data is not None and now.size == snapshot.stamp.size:
            try:
                if path.read_bytes() == snapshot.data:
                    self.items[path] = Snapshot(now, snapshot.data)  # touched or chmod-ed
                    return False
            except OSError:
                pass
        return True

    def restore(self, path, data):
        """Put the original back; a changed small file is kept in the quarantine folder."""
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                if self.quarantine and data is not None and path.is_file():
                    self._quarantine(path)
                path.chmod(0o644)
                path.unlink()
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        elif self.restore_big is not None:
            self.restore_big(path)
        self.add(path)

    def _quarantine(self, path):
        """Keep a copy of a changed file for the instructor to look at."""
        self.quarantine.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, self.quarantine / f"{time.time_ns()}-{path.name}")
