"""Reading zips from outside in memory (lrpkit.grading.intake.zips): what is refused, and why."""

import io
import struct
import zipfile
from datetime import datetime, timezone

import pytest

from lrpkit.grading.intake.files import Refused
from lrpkit.grading.intake.zips import Archive, Budget, ZipLimits, member_time

SMALL = ZipLimits(members=5, member_bytes=4096, total_bytes=10_000, ratio=50, ratio_from=1024)


def zip_bytes(members, compression=zipfile.ZIP_DEFLATED):
    """A zip of [(ZipInfo or name, bytes)]."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for info, data in members:
            if isinstance(info, str):
                info = zipfile.ZipInfo(info, (2024, 5, 1, 12, 0, 0))
            info.compress_type = compression
            archive.writestr(info, data)
    return buffer.getvalue()


def patch_central(data, name, offset, fmt, value):
    """The zip with one field of a member's central directory entry changed."""
    data = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        (length,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46 : at + 46 + length] == name.encode():
            struct.pack_into(fmt, data, at + offset, value)
            return bytes(data)
        at = data.find(b"PK\x01\x02", at + 46)
    raise AssertionError(f"{name} is not in the zip")


def unix(name, mode):
    info = zipfile.ZipInfo(name, (2024, 5, 1, 12, 0, 0))
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def refused(archive):
    return dict(archive.refused)


def test_regular_members_are_read_into_memory():
    data = zip_bytes([("a/ex3.ipynb", b"{}"), ("a/", b""), ("b.txt", b"x" * 100)])
    archive = Archive(data, "s.zip", SMALL)
    assert [m.path for m in archive.members] == ["a/ex3.ipynb", "b.txt"]
    assert archive.read(archive.members[0]) == b"{}"
    assert archive.refused == []


@pytest.mark.parametrize(
    "name, words",
    [
        ("/etc/passwd", "absolute path"),
        ("C:\\Users\\x.ipynb", "absolute path"),
        ("../escape.ipynb", "climbs out"),
        ("a/../../escape.ipynb", "climbs out"),
        ("a\\..\\..\\escape.ipynb", "climbs out"),
        ("bell\x07.ipynb", "control characters"),
    ],
)
def test_names_that_leave_the_archive_are_refused(name, words):
    archive = Archive(zip_bytes([(name, b"{}"), ("ok.ipynb", b"{}")]), "s.zip", SMALL)
    assert [m.path for m in archive.members] == ["ok.ipynb"]
    [(path, reason)] = archive.refused
    assert path == name and words in reason


def test_links_special_files_encrypted_and_twice_named_members_are_refused():
    members = [
        (unix("link.ipynb", 0o120777), b"/etc/passwd"),
        (unix("fifo.ipynb", 0o010644), b""),
        ("secret.ipynb", b"{}"),
        (unix("ok.ipynb", 0o100644), b"{}"),
        ("./ok.ipynb", b"{}"),
    ]
    data = patch_central(zip_bytes(members, zipfile.ZIP_STORED), "secret.ipynb", 8, "<H", 1)
    archive = Archive(data, "s.zip", SMALL)  # the general purpose flag 1: encrypted
    assert [m.path for m in archive.members] == ["ok.ipynb"]
    reasons = refused(archive)
    assert "symbolic link" in reasons["link.ipynb"]
    assert "not a regular file" in reasons["fifo.ipynb"]
    assert "encrypted" in reasons["secret.ipynb"]
    assert "appears twice" in reasons["./ok.ipynb"]


def test_bombs_by_declared_size_and_by_ratio_are_refused():
    members = [("big.ipynb", b"\0" * 5000), ("dense.ipynb", b"\0" * 3000), ("ok.ipynb", b"{}")]
    archive = Archive(zip_bytes(members), "s.zip", SMALL)
    reasons = refused(archive)
    assert "unpacks to" in reasons["big.ipynb"] and "zip bomb" in reasons["big.ipynb"]
    assert "compressed" in reasons["dense.ipynb"] and "to 1" in reasons["dense.ipynb"]
    assert [m.path for m in archive.members] == ["ok.ipynb"]


def test_a_member_bigger_than_it_declares_is_refused():
    data = zip_bytes([("liar.ipynb", b"a" * 1000)], zipfile.ZIP_STORED)
    archive = Archive(patch_central(data, "liar.ipynb", 24, "<I", 10), "s.zip", SMALL)
    [member] = archive.members
    with pytest.raises(Refused, match="liar.ipynb"):
        archive.read(member)


def test_too_many_members_refuse_the_whole_archive():
    data = zip_bytes([(f"{n}.ipynb", b"{}") for n in range(6)])
    with pytest.raises(Refused, match="6 entries"):
        Archive(data, "many.zip", SMALL)


def test_the_budget_of_a_download_is_shared_by_nested_archives():
    inner = zip_bytes([("ex3.ipynb", b"x" * 4000)], zipfile.ZIP_STORED)
    outer = zip_bytes([(f"{n}.zip", inner) for n in range(3)], zipfile.ZIP_STORED)
    limits = ZipLimits(member_bytes=8000, total_bytes=20_000)
    archive = Archive(outer, "download.zip", limits, budget=Budget(limits))
    read = 0
    with pytest.raises(Refused, match="more than 20 KiB in all"):
        for member in archive.members:
            nested = archive.nested(member)
            read += len(nested.read(nested.members[0]))
    assert read == 8000  # two nested zips read; the third ran out of the budget


def test_zips_nested_too_deep_are_refused():
    deepest = zip_bytes([("ex3.ipynb", b"{}")])
    middle = zip_bytes([("inner.zip", deepest)])
    archive = Archive(zip_bytes([("middle.zip", middle)]), "d.zip", ZipLimits(depth=2))
    nested = archive.nested(archive.members[0])
    with pytest.raises(Refused, match="nested more than 2 deep"):
        nested.nested(nested.members[0])


def test_what_is_not_a_zip_is_refused():
    with pytest.raises(Refused, match="not a readable zip"):
        Archive(b"PK\x03\x04 not really", "fake.zip")


def test_member_times_prefer_the_utc_extra_field():
    info = zipfile.ZipInfo("ex3.ipynb", (2024, 5, 1, 12, 0, 0))
    stamp = datetime(2024, 5, 1, 10, 30, tzinfo=timezone.utc)
    info.extra = struct.pack("<HHBi", 0x5455, 5, 1, int(stamp.timestamp()))
    assert member_time(info) == stamp
    local = zipfile.ZipInfo("ex3.ipynb", (2024, 5, 1, 12, 0, 0))
    assert member_time(local) == datetime(2024, 5, 1, 12, 0).astimezone(timezone.utc)
    assert member_time(zipfile.ZipInfo("ex3.ipynb")) is None  # the MS-DOS epoch: no time
