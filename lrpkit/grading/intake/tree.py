"""A download as one tree: folders on disk and zip archives, read on demand (intake).

``Node`` is a file or folder of the download wherever it lives: ``DiskNode`` on disk (scanned
and read without following links, through files.py), ``ZipFolder``/``ZipMember`` inside an
archive held in memory (zips.py). ``open_zip`` turns a ``.zip`` file node into the folder
node of its members, so the intake walks a Canvas zip, its extracted folder, and a student's
zip inside either alike. Every node knows its ``path`` relative to the download, which is
what the summary and the rows show.
"""

import os
from datetime import datetime, timezone
from pathlib import Path

from lrpkit.grading.intake.files import Refused, read_file, scan
from lrpkit.grading.intake.zips import Archive, size

MAX_ARCHIVE_BYTES = 2048 * 2**20  # a zip read from disk into memory


def join(parent, name):
    return f"{parent}/{name}" if parent else name


class Node:
    """One file or folder of the download."""

    path = ""  # relative to the download, "/"-separated ("" for the download itself)
    name = ""
    kind = "file"  # file, dir, symlink, fifo, device, socket, other
    size = 0

    @property
    def mtime(self):
        """When it was last modified, as its folder or archive says (tz-aware), or None."""
        return None

    def children(self):
        """[Node] of a folder, sorted by name."""
        return []

    def read(self, limit):
        """A file's bytes (at most ``limit``); Refused when it cannot be read."""
        raise Refused(f"{self.path} is not a file")


class DiskNode(Node):
    """A file or folder on disk, below the download's folder."""

    def __init__(self, real, path, kind, size=0):
        self.real, self.path, self.kind, self.size = Path(real), path, kind, size
        self.name = self.real.name

    @property
    def mtime(self):
        try:
            seconds = os.stat(self.real, follow_symlinks=False).st_mtime
        except OSError:
            return None
        return datetime.fromtimestamp(seconds, timezone.utc)

    def children(self):
        try:
            entries = scan(self.real)
        except OSError as error:
            raise Refused(f"{self.name} cannot be listed ({error.strerror})") from None
        return [
            DiskNode(self.real / e.name, join(self.path, e.name), e.kind, e.size) for e in entries
        ]

    def read(self, limit):
        try:
            return read_file(self.real, limit)
        except OSError as error:
            raise Refused(f"{self.name} cannot be read ({error.strerror})") from None


class ZipMember(Node):
    """A regular file inside an archive."""

    def __init__(self, archive, member, path):
        self.archive, self.member, self.path = archive, member, path
        self.name, self.size = member.name, member.size

    @property
    def mtime(self):
        return self.member.mtime

    def read(self, limit):
        if self.member.size > limit:
            raise Refused(
                f"{self.path} is {size(self.member.size)} (at most {size(limit)}); "
                "clear its outputs and hand it in again"
            )
        return self.archive.read(self.member)


class ZipFolder(Node):
    """A folder inside an archive (its members below ``prefix``); the archive itself when
    ``prefix`` is empty. ``refused`` lists the archive's refused members below it."""

    kind = "dir"

    def __init__(self, archive, prefix, path):
        self.archive, self.prefix, self.path = archive, prefix, path
        self.name = path.rsplit("/", 1)[-1]

    @property
    def refused(self):
        """[(path in the download, reason)] of the members refused below this folder."""
        return [
            (join(self.path, inside[len(self.prefix) :]), reason)
            for inside, reason in self.archive.refused
            if inside.replace("\\", "/").startswith(self.prefix)
        ]

    def children(self):
        folders, files = set(), []
        for member in self.archive.members:
            if not member.path.startswith(self.prefix):
                continue
            rest = member.path[len(self.prefix) :]
            if "/" in rest:
                folders.add(rest.split("/", 1)[0])
            else:
                files.append(ZipMember(self.archive, member, join(self.path, rest)))
        found = files + [
            ZipFolder(self.archive, f"{self.prefix}{name}/", join(self.path, name))
            for name in folders
        ]
        return sorted(found, key=lambda node: node.name)


def open_zip(node, limits, budget):
    """The ``ZipFolder`` of a ``.zip`` file node's archive; Refused when it cannot be read
    (not a zip, too big, nested too deep, too many members)."""
    if isinstance(node, ZipMember):
        archive = node.archive.nested(node.member)
    else:
        data = node.read(MAX_ARCHIVE_BYTES)
        archive = Archive(data, node.path or node.name, limits, 1, budget)
    return ZipFolder(archive, "", node.path)


def root(path):
    """The download as a node: a folder (followed if the instructor's path is a link) or a
    ``.zip`` file; None when it is neither."""
    path = Path(path)
    if path.is_dir():
        return DiskNode(path.resolve(), "", "dir")
    if path.is_file() and path.suffix.lower() == ".zip":
        real = path.resolve()
        return DiskNode(real, "", "file", real.stat().st_size)
    return None
