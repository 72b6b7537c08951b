"""Reading files from outside (lrpkit.grading.intake.files, jsondepth): no link followed, no file
type trusted, bounded size, depth and count; remove_tree for any depth and any file."""

import json
import os
import random
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from lrpkit.grading.intake import files, jsondepth
from lrpkit.grading.intake.files import Refused

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def zoo(tmp_path):
    """A folder with one entry of every kind, and a file outside it the links point to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ipynb").write_text("the solution")
    box = tmp_path / "box"
    box.mkdir()
    (box / "file.ipynb").write_bytes(b"0123456789")
    (box / "folder").mkdir()
    (box / "link.ipynb").symlink_to(outside / "secret.ipynb")
    (box / "dangling.ipynb").symlink_to(tmp_path / "nowhere.ipynb")
    (box / "zero.ipynb").symlink_to("/dev/zero")
    (box / "linked-folder").symlink_to(outside)
    os.mkfifo(box / "fifo.ipynb")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(box / "socket.ipynb"))
    yield box
    server.close()


KINDS = {
    "dangling.ipynb": "symlink",
    "fifo.ipynb": "fifo",
    "file.ipynb": "file",
    "folder": "dir",
    "link.ipynb": "symlink",
    "linked-folder": "symlink",
    "socket.ipynb": "socket",
    "zero.ipynb": "symlink",
}


def test_scan_lists_every_kind_without_following_links(zoo):
    entries = files.scan(zoo)
    assert [(e.name, e.kind) for e in entries] == sorted(KINDS.items())
    assert next(e.size for e in entries if e.name == "file.ipynb") == 10


@pytest.mark.parametrize(
    "name, words",
    [
        ("link.ipynb", "link.ipynb is a symbolic link: hand in the file itself"),
        ("dangling.ipynb", "dangling.ipynb is a symbolic link: hand in the file itself"),
        ("zero.ipynb", "zero.ipynb is a symbolic link: hand in the file itself"),
        ("fifo.ipynb", "fifo.ipynb is a FIFO (named pipe), not a regular file"),
        ("socket.ipynb", "socket.ipynb is a socket, not a regular file"),
        ("folder", "folder is a folder, not a file"),
        ("linked-folder", "linked-folder is a symbolic link"),
    ],
)
def test_read_file_refuses_what_is_not_a_regular_file(zoo, name, words):
    with pytest.raises(Refused) as refused:
        files.read_file(zoo / name, 100)
    assert str(refused.value).startswith(words), str(refused.value)
    assert refused.value.kind == KINDS[name] and refused.value.name == name
    fd = files.open_folder(zoo)  # the same through the folder's descriptor
    try:
        with pytest.raises(Refused, match="^" + re.escape(words)):
            files.read_file(name, 100, dir_fd=fd)
    finally:
        os.close(fd)


def test_a_device_is_refused_by_its_kind():
    with pytest.raises(Refused, match="null is a character device, not a regular file"):
        files.read_file("/dev/null", 100)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_node_handed_in_is_named(tmp_path):
    os.mknod(tmp_path / "x.ipynb", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's
    assert files.scan(tmp_path)[0].kind == "device"
    with pytest.raises(Refused, match="x.ipynb is a character device"):
        files.read_file(tmp_path / "x.ipynb", 100)


def test_a_fifo_never_blocks(zoo):
    """No writer ever opens the FIFO: reading it must be refused at once, not wait."""
    outcome = []

    def read():
        try:
            files.read_file(zoo / "fifo.ipynb", 100)
        except Refused as error:
            outcome.append(error.kind)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert outcome == ["fifo"]


def test_size_limit(zoo):
    assert files.read_file(zoo / "file.ipynb", 10) == b"0123456789"
    with pytest.raises(Refused, match="file.ipynb is 10 bytes, more than the 9 bytes allowed"):
        files.read_file(zoo / "file.ipynb", 9)
    big = zoo / "big.ipynb"
    with open(big, "wb") as f:
        f.truncate(300 * 2**20)  # sparse: 300 MiB that take no disk
    with pytest.raises(Refused, match="big.ipynb is 300 MiB, more than the 50 MiB allowed") as e:
        files.read_file(big, 50 * 2**20)
    assert e.value.kind == "too big" and "clear its outputs" in str(e.value)


def test_a_file_that_lies_about_its_size_is_read_up_to_the_limit_only():
    """/proc files say size 0 and hold more: what is read stops at limit + 1 bytes."""
    with pytest.raises(Refused, match="^environ holds more than the 16 bytes allowed"):
        files.read_file("/proc/self/environ", 16)


def test_read_tail(zoo):
    assert files.read_tail(zoo / "file.ipynb", 4) == b"6789"
    assert files.read_tail(zoo / "file.ipynb", 100) == b"0123456789"
    with pytest.raises(Refused, match="symbolic link"):
        files.read_tail(zoo / "zero.ipynb", 4)


def test_read_bounded_follows_the_path_as_given_and_raises_the_callers_error(zoo, tmp_path):
    """An instructor's file: a link is followed, the size bounded, the caller's error raised."""

    class Mine(ValueError):
        pass

    link = tmp_path / "link.csv"
    link.symlink_to(zoo / "file.ipynb")
    assert files.read_bounded(link, 10, Mine, "too large") == b"0123456789"
    with pytest.raises(Mine, match="^too large$"):
        files.read_bounded(link, 9, Mine, "too large")
    with pytest.raises(Mine, match="^too large$"):  # /proc says size 0 and holds more
        files.read_bounded("/proc/self/environ", 16, Mine, "too large")
    with pytest.raises(Mine, match=f"^{re.escape(str(tmp_path / 'gone.csv'))}: No such file"):
        files.read_bounded(tmp_path / "gone.csv", 10, Mine, "too large")


def test_open_folder_and_scan_never_enter_a_linked_folder(zoo):
    with pytest.raises(Refused, match="linked-folder is a symbolic link: hand in the folder"):
        files.scan(zoo / "linked-folder")
    with pytest.raises(Refused, match="file.ipynb is a file, not a folder"):
        files.open_folder(zoo / "file.ipynb")
    with pytest.raises(Refused, match="fifo.ipynb is a FIFO"):
        files.open_folder(zoo / "fifo.ipynb")


def nest(base, depth, name="d"):
    """depth folders nested in base (deeper than PATH_MAX as a path); the deepest one's fd
    is never needed: every step is relative to its parent's descriptor."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("bottom.txt", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
    finally:
        os.close(fd)


def test_walk_reports_a_folder_it_cannot_enter(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x").write_text("x")
    seen = []
    with pytest.MonkeyPatch.context() as patch:
        real = files._open_sub

        def refuse(name, dir_fd, enterable=False):
            if name == "b":
                raise PermissionError(13, "Permission denied", name)
            return real(name, dir_fd, enterable)

        patch.setattr(files, "_open_sub", refuse)
        entries = files.walk(tmp_path, on_error=lambda path, error: seen.append(path))
        with pytest.raises(PermissionError):
            files.walk(tmp_path)
    assert [e.name for e in entries] == ["a", "a/b"] and seen == ["a/b"]


def hostile_tree(base, depth=2500):
    """depth nested folders with every kind of file, folders without permissions (0o000,
    read-only) along the way, and links out of the tree."""
    outside = base / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("must survive")
    tree = base / "tree"
    tree.mkdir()
    nest(tree, depth)
    (tree / "link-out").symlink_to(outside)
    (tree / "link-file").symlink_to(outside / "keep.txt")
    os.mkfifo(tree / "fifo")
    (tree / "ro").mkdir()
    (tree / "ro" / "file").write_text("x")
    os.chmod(tree / "ro" / "file", 0o444)
    os.chmod(tree / "ro", 0o555)
    # take the permissions away from the deepest first, so every chmod can still reach
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    chmods = []
    for level in range(depth):
        if level in (10, depth // 2, depth - 3):
            chmods.append((os.dup(fd), 0o000 if level != depth // 2 else 0o500))
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    for parent_fd, mode in reversed(chmods):
        os.chmod("d", mode, dir_fd=parent_fd)
        os.close(parent_fd)
    return tree, outside


@pytest.mark.slow
def test_walk_then_remove_tree_any_depth_and_kind_following_no_link(tmp_path):
    """2,500 nested folders (deeper than PATH_MAX as a path), 0o000 and read-only folders
    inside, a FIFO, links out of the tree: walk lists them all without entering a link;
    remove_tree removes them all and nothing the links point to."""
    tree, outside = hostile_tree(tmp_path)
    try:
        entries = files.walk(tree, on_error=lambda path, error: None)
        with pytest.raises(Refused, match="tree holds more than 10 entries"):
            files.walk(tree, max_entries=10, on_error=lambda path, error: None)
        files.remove_tree(tree)
    finally:
        if os.path.lexists(tree):  # pytest's own clean-up recurses: never leave it this tree
            subprocess.run(["rm", "-rf", str(tree)], check=False)
    assert not os.path.lexists(tree)
    assert (outside / "keep.txt").read_text() == "must survive"
    files.remove_tree(tree)  # gone already: fine
    names = [e.name for e in entries]
    assert names == sorted(names)
    kinds = {e.name: e.kind for e in entries}
    assert kinds["link-out"] == kinds["link-file"] == "symlink" and kinds["fifo"] == "fifo"
    assert not any("keep.txt" in name for name in names), "a linked folder was entered"
    deepest = "d/" * 2500 + "bottom.txt"
    assert len(deepest) > 4096
    if os.geteuid() == 0:  # root lists the folders without permissions too
        assert deepest in names and len(entries) == 2500 + 1 + 5
    else:
        assert len(entries) == 11 + 5  # down to the first 0o000 folder (d at level 11)


def test_remove_tree_removes_a_link_not_what_it_points_to(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "x").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    files.remove_tree(tmp_path / "link")
    assert not os.path.lexists(tmp_path / "link") and (tmp_path / "target" / "x").exists()
    files.remove_tree(tmp_path / "target" / "x")
    assert list((tmp_path / "target").iterdir()) == []


REMOVE_AS_NOBODY = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_grading_files import hostile_tree
from lrpkit.grading.intake import files
tree, outside = hostile_tree(Path(sys.argv[1]))
files.remove_tree(tree)
assert not os.path.lexists(tree) and (outside / "keep.txt").exists()
print("removed")
"""


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="as root only: the test itself runs unprivileged")
def test_remove_tree_as_an_unprivileged_owner():
    """Root may remove a 0o000 folder anyway; its unprivileged owner must make it writable
    first (a grader that is not root removes what its sandbox's student left)."""
    if not shutil.which("setpriv"):
        pytest.fail("setpriv (util-linux) is needed to run as another user")
    base = Path(tempfile.mkdtemp(prefix="lrpkit-files-"))
    try:
        base.chmod(0o777)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        argv += [sys.executable, "-c", REMOVE_AS_NOBODY, str(base), str(Path(__file__).parent)]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
        )
        assert done.stdout.strip() == "removed", done.stderr[-2000:]
    finally:
        files.remove_tree(base)


# ---------------------------------------------------------------------------
# JSON with bounded nesting
# ---------------------------------------------------------------------------


def literal_depth(value):
    """The nesting depth of parsed JSON, by plain recursion (the twin of json_depth)."""
    if isinstance(value, dict):
        return 1 + max(map(literal_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(literal_depth, value), default=0)
    return 0


def random_json(rng, depth):
    tricky = ["[", "]", '{"', "\\", '\\"', '"', "é[", "}", "\\\\", "x"]
    if depth == 0 or rng.random() < 0.2:
        return "".join(rng.choice(tricky) for _ in range(rng.randrange(6)))
    if rng.random() < 0.5:
        return [random_json(rng, depth - 1) for _ in range(rng.randrange(4))]
    keys = ("".join(rng.choice(tricky) for _ in range(3)) for _ in range(rng.randrange(4)))
    return {key: random_json(rng, depth - 1) for key in keys}


def test_json_depth_equals_a_literal_recursion_with_brackets_and_quotes_in_strings():
    rng = random.Random(17)
    for _ in range(300):
        value = random_json(rng, rng.randrange(12))
        for text in (json.dumps(value), json.dumps(value, indent=1, ensure_ascii=False)):
            assert jsondepth.json_depth(text.encode()) == literal_depth(value), text


def test_a_deeply_nested_array_is_refused_not_a_recursion_error():
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(Refused, match="deep.ipynb nests JSON 100,000 levels deep") as e:
        jsondepth.load_json(deep, "deep.ipynb", kind="notebook")
    assert e.value.kind == "too deep"
    assert jsondepth.load_json(b"[" * 100 + b"]" * 100, "ok.json") is not None
    with pytest.raises(Refused, match="101 levels"):
        jsondepth.load_json(b"[" * 101 + b"]" * 101, "x.json")


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"source": "[" * 100_000 + '\\"{' * 1000})
    assert jsondepth.load_json(text.encode(), "x.json") == json.loads(text)


@pytest.mark.parametrize(
    "data, words",
    [
        (bytes(range(256)), "x.ipynb is not UTF-8 text (not a notebook file?)"),
        (b'{"cells": [', "x.ipynb is not valid JSON (Expecting value at line 1, column 12)"),
        (b"[" + b"1" * 5000 + b"]", "x.ipynb is not valid JSON (Exceeds the limit"),
    ],
)
def test_load_json_says_why_it_is_unusable(data, words):
    with pytest.raises(Refused) as refused:
        jsondepth.load_json(data, "x.ipynb", kind="notebook")
    assert str(refused.value).startswith(words), str(refused.value)
