"""Reading files that come from outside, for the grader: submissions now, LMS downloads and zips.

What arrives from outside is data. Everything here keeps to three rules:

- **No link is followed** in the last component of a path it is given, nor any link it finds
  in a folder: a link is reported (``Entry.kind == "symlink"``) or refused, never entered or
  read. A caller that trusts a link in its own path (an instructor's command-line argument)
  resolves it first (``os.path.realpath``).
- **Only regular files are read.** A FIFO, device, socket, folder or link is refused with a
  ``Refused`` whose text names what it is, before it is opened (a FIFO never blocks, a
  device is never opened); what is read is bounded by ``limit``.
- **Folders are walked without recursion** (any depth), one descriptor open at a time: a
  folder is entered by name relative to its parent's descriptor with ``O_NOFOLLOW`` (a
  linked folder is never entered, at any depth) and left through ``..``, checked against
  the folder it came from. No path is ever longer than one name, so depth beyond
  ``PATH_MAX`` is fine.

JSON from outside is parsed with its nesting bounded by jsondepth.py (``load_json``).

``read_bounded`` is the one exception, for the instructor's own files (a course file, the
grader's tables and outputs): it reads a path as given (links followed), bounded by a limit,
and raises the caller's own error.

Interface (submissions.py reads through it; branch h19 builds LMS downloads and zips on it):
``Refused``, ``Entry``, ``read_file``, ``read_tail``, ``read_bounded``, ``open_folder``,
``scan``, ``walk``, ``remove_tree``.
"""

import errno
import os
import stat
from dataclasses import dataclass

MAX_ENTRIES = 100_000  # walk's default bound on what one folder tree may hold
KINDS = ("file", "dir", "symlink", "fifo", "device", "socket", "other")
_CHUNK = 1 << 20
_SAFE = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
_FILE = os.O_RDONLY | _SAFE
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | _SAFE
_PATH = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(ValueError):
    """A file from outside that is not read; its text says what it is and what to do, e.g.
    "ex4_lrp.ipynb is a symbolic link: hand in the file itself".

    ``name``: the file as the text names it; ``kind``: what it is (one of ``KINDS``) or why
    it was refused ("too big", "too deep", "too many", "not utf-8", "not json")."""

    def __init__(self, reason, name="", kind=""):
        super().__init__(reason)
        self.name = name
        self.kind = kind


@dataclass(frozen=True)
class Entry:
    """One entry of a folder, as the folder lists it (links not followed)."""

    name: str  # scan: its name; walk: its path below the walked folder ("a/b.ipynb")
    kind: str  # one of KINDS
    size: int  # bytes (of a link: the length of the path it holds, which is not followed)


def kind_of(mode):
    """The kind (one of KINDS) of a file with this st_mode."""
    for test, kind in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISCHR, "device"),
        (stat.S_ISBLK, "device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return kind
    return "other"


def describe(mode):
    """What a file of this st_mode is, in words ("a FIFO (named pipe)")."""
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return {
        "file": "a file",
        "dir": "a folder",
        "symlink": "a symbolic link",
        "fifo": "a FIFO (named pipe)",
        "socket": "a socket",
    }.get(kind_of(mode), "not a regular file")


def _shown(path, dir_fd):
    """How a message names a path: as given inside a folder's descriptor, else its last part
    (a grader's absolute path says nothing to a student)."""
    path = os.fspath(path)
    return path if dir_fd is not None else os.path.basename(path.rstrip("/")) or path


def _size(n):
    if n >= 2**20:
        return f"{n / 2**20:.0f} MiB"
    if n >= 2**10:
        return f"{n / 2**10:.0f} KiB"
    return f"{n} bytes"


def _regular(st, name):
    """Refuse anything but a regular file, naming what it is."""
    if stat.S_ISREG(st.st_mode):
        return
    kind = kind_of(st.st_mode)
    if kind == "symlink":
        raise Refused(f"{name} is a symbolic link: hand in the file itself", name, kind)
    if kind == "dir":
        raise Refused(f"{name} is a folder, not a file: hand in the file itself", name, kind)
    what = describe(st.st_mode)
    raise Refused(f"{name} is {what}, not a regular file: hand in the file itself", name, kind)


def _too_big(size, limit, name, known=True):
    amount = f"is {_size(size)}, more" if known else "holds more"
    return Refused(
        f"{name} {amount} than the {_size(limit)} allowed: make it smaller "
        "(a notebook: clear its outputs) and hand it in again",
        name,
        "too big",
    )


def _open_regular(path, dir_fd):
    """(descriptor, fstat, name) of a regular file, never through a link in its last
    component; anything else is refused before it is opened."""
    name = _shown(path, dir_fd)
    before = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    _regular(before, name)
    try:
        fd = os.open(path, _FILE, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:  # swapped for a link since the lstat
            reason = f"{name} is a symbolic link: hand in the file itself"
            raise Refused(reason, name, "symlink") from None
        raise
    try:
        st = os.fstat(fd)
        _regular(st, name)
        if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            raise Refused(f"{name} changed while it was read: hand it in again", name, "other")
    except BaseException:
        os.close(fd)
        raise
    return fd, st, name


def _read_up_to(fd, most):
    chunks, left = [], most
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_file(path, limit, dir_fd=None):
    """The bytes of a regular file of at most ``limit`` bytes.

    ``path`` is relative to the folder descriptor ``dir_fd`` when given (then only its last
    component is safe from links: pass a plain name). Refused: a symbolic link (never
    followed, dangling or not), FIFO, device, socket or folder (named in the text, never
    opened), and a file over ``limit`` (never read beyond ``limit`` + 1 bytes, so a file
    that grows or lies about its size is caught too). OSError: the file cannot be read."""
    fd, st, name = _open_regular(path, dir_fd)
    try:
        if st.st_size > limit:
            raise _too_big(st.st_size, limit, name)
        data = _read_up_to(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _too_big(len(data), limit, name, known=False)
    return data


def read_bounded(path, limit, error, too_large):
    """The bytes of an instructor's file (the path as given, links followed) of at most
    ``limit`` bytes; never more than ``limit`` + 1 bytes are read. ``error``: the caller's
    exception class, raised as ``error("<path>: <why>")`` when the file cannot be read and
    as ``error(too_large)`` when it holds more than ``limit`` bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as problem:
        raise error(f"{path}: {problem.strerror or problem}") from None
    if len(data) > limit:
        raise error(too_large)
    return data


def read_tail(path, limit, dir_fd=None):
    """The last ``limit`` bytes of a regular file (a log), refused as ``read_file`` refuses."""
    fd, st, _ = _open_regular(path, dir_fd)
    try:
        os.lseek(fd, max(0, st.st_size - limit), os.SEEK_SET)
        return _read_up_to(fd, limit)
    finally:
        os.close(fd)


def open_folder(path, dir_fd=None):
    """A descriptor of a folder (close it with os.close), never through a link in the last
    component. Refused: a link (never entered), a file or anything else (never opened)."""
    name = _shown(path, dir_fd)
    try:
        return os.open(path, _FOLDER, dir_fd=dir_fd)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
    st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    kind = kind_of(st.st_mode)
    if kind == "symlink":
        raise Refused(f"{name} is a symbolic link: hand in the folder itself", name, kind)
    raise Refused(f"{name} is {describe(st.st_mode)}, not a folder", name, kind)


def _entries(fd, sort=True):
    """[Entry] of the open folder fd (links not followed); entries gone meanwhile left out."""
    found = []
    with os.scandir(fd) as listing:  # scandir duplicates fd and reads it from the start
        for entry in listing:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found.append(Entry(entry.name, kind_of(st.st_mode), st.st_size))
    return sorted(found, key=lambda e: e.name) if sort else found


def scan(folder, dir_fd=None):
    """[Entry] of a folder's entries, sorted by name, each with its kind; no link is
    followed, nothing is opened. ``folder``: a path (see ``open_folder``) or an open folder
    descriptor (left open)."""
    if isinstance(folder, int):
        return _entries(folder)
    fd = open_folder(folder, dir_fd)
    try:
        return _entries(fd)
    finally:
        os.close(fd)


def _open_sub(name, dir_fd, enterable=False):
    """A descriptor of the subfolder ``name`` of dir_fd (O_NOFOLLOW); ``enterable``: one
    whose permissions a student took away (0o000, no x) is given 0o700 first."""
    try:
        return os.open(name, _FOLDER, dir_fd=dir_fd)
    except PermissionError:
        if not enterable:
            raise
    fd = os.open(name, _PATH, dir_fd=dir_fd)  # needs no permission; never a link
    try:
        os.chmod(f"/proc/self/fd/{fd}", 0o700)  # an O_PATH descriptor: chmod through /proc
    except FileNotFoundError:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.chmod(name, 0o700, dir_fd=dir_fd)
    finally:
        os.close(fd)
    return os.open(name, _FOLDER, dir_fd=dir_fd)


class _Descent:
    """A depth-first descent from a folder (its descriptor, now owned here) holding one
    folder open at a time: ``down`` enters a subfolder by name (O_NOFOLLOW, on the same file
    system only), ``up`` returns through ``..`` and checks it is the folder it came from (a
    folder moved meanwhile stops the descent)."""

    def __init__(self, fd, enterable=False):
        self.fd, self.enterable = fd, enterable
        st = os.fstat(fd)
        self.device = st.st_dev
        self.trail = [(st.st_dev, st.st_ino)]

    def down(self, name):
        fd = _open_sub(name, self.fd, self.enterable)
        st = os.fstat(fd)
        if st.st_dev != self.device:
            os.close(fd)
            raise OSError(errno.EXDEV, "another file system is mounted here", name)
        os.close(self.fd)
        self.fd = fd
        self.trail.append((st.st_dev, st.st_ino))

    def up(self):
        fd = os.open("..", _FOLDER, dir_fd=self.fd)
        st = os.fstat(fd)
        self.trail.pop()
        if (st.st_dev, st.st_ino) != self.trail[-1]:
            os.close(fd)
            raise OSError(errno.ESTALE, "a folder was moved while it was walked")
        os.close(self.fd)
        self.fd = fd

    def close(self):
        os.close(self.fd)


def walk(folder, max_entries=MAX_ENTRIES, dir_fd=None, on_error=None):
    """[Entry] of everything below a folder, at any depth, sorted by path (``Entry.name``:
    "a/b/c.ipynb"); folders are listed and entered, links listed and never followed.

    Refused: more than ``max_entries`` entries. A subfolder that cannot be entered or listed
    (no permission, another file system mounted there) raises its OSError, or with
    ``on_error`` is passed to ``on_error(path, error)`` and its contents left out."""
    descent = _Descent(open_folder(folder, dir_fd))
    name = _shown(folder, dir_fd)
    found = []

    def listing(prefix):
        entries = _entries(descent.fd, sort=False)
        found.extend(Entry(prefix + e.name, e.kind, e.size) for e in entries)
        if len(found) > max_entries:
            raise Refused(f"{name} holds more than {max_entries:,} entries", name, "too many")
        return sorted((e.name for e in entries if e.kind == "dir"), reverse=True)

    try:
        frames = [listing("")]  # per folder entered: its subfolders still to enter
        prefixes = [""]
        while frames:
            if not frames[-1]:
                frames.pop()
                prefixes.pop()
                if frames:
                    descent.up()
                continue
            path = prefixes[-1] + frames[-1].pop()
            try:
                descent.down(path.rsplit("/", 1)[-1])
            except OSError as error:
                if on_error is None:
                    raise
                on_error(path, error)
                continue
            frames.append([])
            prefixes.append(path + "/")
            try:
                frames[-1] = listing(path + "/")
            except OSError as error:
                if on_error is None:
                    raise
                on_error(path, error)
    finally:
        descent.close()
    return sorted(found, key=lambda e: e.name)


def remove_tree(path):
    """Remove a file or folder of any depth and any kind of file in it, never following a
    link (a link is removed, not what it points to), making folders without permissions
    (0o000, read-only) writable first; nothing on another file system mounted inside is
    touched. A missing path is fine. OSError after removing all it could: what is left."""
    path = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    parent, name = os.path.split(path)
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        problems = _empty(parent_fd, name)
        try:
            os.rmdir(name, dir_fd=parent_fd)
        except FileNotFoundError:
            pass
        except OSError as error:
            problems.append(error)
    finally:
        os.close(parent_fd)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise OSError(f"could not remove all of {path}: {problems[0]}{more}")


def _writable(fd):
    """Let the folder fd's owner list, enter and change it (a student may have taken that
    away)."""
    try:
        if os.fstat(fd).st_mode & 0o700 != 0o700:
            os.fchmod(fd, 0o700)
    except OSError:
        pass


def _empty(parent_fd, name):
    """Remove everything in the folder ``name`` of parent_fd, deepest first; the OSErrors
    of what could not be removed."""
    problems = []
    try:
        descent = _Descent(_open_sub(name, parent_fd, enterable=True), enterable=True)
    except OSError as error:
        return [error]

    def clear():
        """Unlink every non-folder here; the subfolders, to empty next."""
        _writable(descent.fd)
        subs = []
        for entry in _entries(descent.fd, sort=False):
            if entry.kind == "dir":
                subs.append(entry.name)
                continue
            try:
                os.unlink(entry.name, dir_fd=descent.fd)
            except FileNotFoundError:
                pass
            except OSError as error:
                problems.append(error)
        return subs

    def listed():
        try:
            return clear()
        except OSError as error:  # cannot list it: what is in it stays (and is reported)
            problems.append(error)
            return []

    try:
        frames = [listed()]  # per folder entered: its subfolders still to empty
        names = [name]
        while frames:
            if frames[-1]:
                sub = frames[-1].pop()
                try:
                    descent.down(sub)
                except FileNotFoundError:
                    continue
                except OSError as error:
                    problems.append(error)
                    continue
                names.append(sub)
                frames.append(listed())
                continue
            frames.pop()
            here = names.pop()
            if frames:
                descent.up()
                try:
                    os.rmdir(here, dir_fd=descent.fd)
                except FileNotFoundError:
                    pass
                except OSError as error:
                    problems.append(error)
    except OSError as error:  # a folder moved under us: stop rather than guess
        problems.append(error)
    finally:
        descent.close()
    return problems
