"""Reading zip archives from outside (LMS downloads, students' zips) in memory, safely.

Nothing is ever extracted to disk: ``Archive`` lists an archive held in memory and reads its
members into memory with bounded reads, so no member name can put anything anywhere. A
member is refused, and named with the reason, when its name is absolute or climbs out with
``..``, holds control characters or appears twice, when it is a link or other special file
(the Unix mode in its external attributes), when it is encrypted, or when its declared or
real size, or its compression ratio, goes beyond the limits; a whole archive is refused when
it declares too many members or too big a central directory, when it is not a zip, or when it
is nested deeper than ``ZipLimits.depth``. All archives read from one download share one
budget of decompressed bytes (``Budget``): zip bombs of many small members, of overlapping
members, or of nested zips all run out of it.
"""

import io
import stat
import struct
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone

from lrpkit.grading.intake.files import Refused

MiB = 2**20


@dataclass(frozen=True)
class ZipLimits:
    """What an archive may hold (per archive, and for everything read from one download)."""

    members: int = 20_000  # entries in one archive
    member_bytes: int = 100 * MiB  # one member, decompressed
    total_bytes: int = 2048 * MiB  # all members read from one download, nested ones included
    ratio: float = 200.0  # decompressed / compressed size of a member ...
    ratio_from: int = 1 * MiB  # ... checked for members bigger than this
    depth: int = 2  # zips inside zips: the download (1), a student's zip in it (2)


LIMITS = ZipLimits()


def size(n):
    """A size in words: "120 MiB", "12 KiB", "800 bytes"."""
    if n >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} bytes"


class Budget:
    """Decompressed bytes still allowed for one download (shared by nested archives)."""

    def __init__(self, limits):
        self.limits = limits
        self.left = limits.total_bytes

    def take(self, count, name):
        """Count ``count`` bytes of ``name`` against the budget; Refused beyond it."""
        if count > self.left:
            raise Refused(
                f"{name}: the archive unpacks to more than {size(self.limits.total_bytes)} in all "
                "(a zip bomb?); hand in the notebooks themselves"
            )
        self.left -= count


@dataclass(frozen=True)
class Member:
    """One regular file of an archive: its path inside it, declared size and time."""

    path: str  # "/"-separated, normalised, relative
    size: int
    mtime: datetime | None  # tz-aware, from the archive (see ``member_time``)
    info: zipfile.ZipInfo

    @property
    def name(self):
        return self.path.rsplit("/", 1)[-1]


def _control(text):
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def member_path(info):
    """The member's normalised relative path, or Refused saying why it cannot be one."""
    raw = info.orig_filename
    if "\x00" in raw or _control(raw):
        raise Refused(f"{raw!r}: the name holds control characters")
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise Refused(f"{raw}: an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Refused(f"{raw}: a path that climbs out of the archive with '..'")
    if not parts:
        raise Refused(f"{raw!r}: an empty name")
    return "/".join(parts)


def _unix_mode(info):
    return info.external_attr >> 16 if info.create_system == 3 else 0


def _extended_mtime(extra):
    """The UTC modification time of an 'UT' extra field (0x5455), or None."""
    offset = 0
    while offset + 4 <= len(extra):
        kind, size = struct.unpack_from("<HH", extra, offset)
        data = extra[offset + 4 : offset + 4 + size]
        if kind == 0x5455 and len(data) >= 5 and data[0] & 1:
            seconds = struct.unpack_from("<i", data, 1)[0]
            return datetime.fromtimestamp(seconds, timezone.utc)
        offset += 4 + size
    return None


def member_time(info):
    """When the member was last modified, as the archive says: the UTC time of an 'UT' extra
    field where the zip has one (Info-ZIP and most Unix tools write it), else its MS-DOS
    date and time taken as this machine's local time (as ``unzip`` does; 2 s resolution).
    None for the MS-DOS epoch (no time recorded)."""
    try:
        found = _extended_mtime(info.extra)
    except (struct.error, ValueError, OverflowError, OSError):
        found = None
    if found is not None:
        return found
    if tuple(info.date_time[:3]) <= (1980, 1, 1):
        return None
    try:
        return datetime(*info.date_time).astimezone(timezone.utc)
    except ValueError:
        return None


def _directory_record(data):
    """(entries, central directory bytes) the archive declares, or None when it has no
    end-of-central-directory record (zipfile then says it is no zip)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    entries, size = struct.unpack_from("<HI", data, at + 10)
    locator = at - 20
    if (entries == 0xFFFF or size == 0xFFFFFFFF) and data[locator : locator + 4] == b"PK\x06\x07":
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if data[offset : offset + 4] == b"PK\x06\x06" and offset + 56 <= len(data):
            entries, size = struct.unpack_from("<QQ", data, offset + 32)
    return entries, size


class Archive:
    """A zip archive held in memory: its ``members`` (regular files it may read) and what it
    ``refused`` ([(path in the archive, reason)]). ``read`` returns one member's bytes."""

    def __init__(self, data, name, limits=LIMITS, depth=1, budget=None):
        self.name = name  # shown in reasons: the archive's path in the download
        self.limits = limits
        self.depth = depth
        self.budget = budget or Budget(limits)
        if depth > limits.depth:
            raise Refused(
                f"{name}: a zip inside a zip nested more than {limits.depth} deep; "
                "hand in the notebooks themselves"
            )
        declared = _directory_record(data)
        if declared is not None:
            entries, size = declared
            if entries > limits.members or size > limits.members * 1024:
                raise Refused(
                    f"{name}: the archive declares {entries} entries in {size} bytes "
                    f"(at most {limits.members} allowed)"
                )
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
            raise Refused(f"{name} is not a readable zip archive ({error})") from None
        if len(infos) > limits.members:
            raise Refused(f"{name}: {len(infos)} entries (at most {limits.members} allowed)")
        self.members, self.refused = [], []
        seen = set()
        for info in infos:
            try:
                member = self._member(info, seen)
            except Refused as refused:
                self.refused.append((info.orig_filename, str(refused)))
                continue
            if member is not None:
                self.members.append(member)

    def _member(self, info, seen):
        """A Member, None for a directory entry, or Refused."""
        path = member_path(info)
        mode = _unix_mode(info)
        if info.is_dir() or stat.S_ISDIR(mode):
            return None
        if path in seen:
            raise Refused(f"{path}: the name appears twice in the archive")
        seen.add(path)
        if stat.S_ISLNK(mode):
            raise Refused(f"{path} is a symbolic link in the archive: hand in the file itself")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise Refused(f"{path} is not a regular file in the archive")
        if info.flag_bits & 0x1:
            raise Refused(f"{path} is encrypted: hand it in without a password")
        limit = self.limits.member_bytes
        if info.file_size > limit:
            raise Refused(
                f"{path} unpacks to {size(info.file_size)} (at most {size(limit)}; a zip bomb?)"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > self.limits.ratio_from and ratio > self.limits.ratio:
            raise Refused(
                f"{path} is compressed {ratio:.0f} to 1 (at most {self.limits.ratio:.0f}; "
                "a zip bomb?)"
            )
        return Member(path, info.file_size, member_time(info), info)

    def read(self, member):
        """The member's bytes: at most its declared size and the member limit, read into
        memory, counted against the download's budget; Refused when that cannot be."""
        limit = min(member.size, self.limits.member_bytes)
        self.budget.take(member.size, f"{self.name}/{member.path}")
        try:
            with self.zip.open(member.info) as stream:
                data = stream.read(limit + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as error:
            raise Refused(f"{member.path} cannot be read from the archive ({error})") from None
        except Exception as error:  # zlib, lzma and bz2 errors of a corrupt member
            raise Refused(f"{member.path} is corrupt in the archive ({error})") from None
        if len(data) > limit:
            raise Refused(f"{member.path} unpacks to more than its declared size (a zip bomb?)")
        return data

    def nested(self, member):
        """The archive a member holds (a zip in a zip), one level deeper; Refused when it
        cannot be read or goes too deep."""
        inner = f"{self.name}/{member.path}"
        if self.depth + 1 > self.limits.depth:
            raise Refused(
                f"{inner}: a zip inside a zip nested more than {self.limits.depth} deep; "
                "hand in the notebooks themselves"
            )
        return Archive(self.read(member), inner, self.limits, self.depth + 1, self.budget)
