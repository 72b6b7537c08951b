"""What the names in an LMS's download say: whose file, which file, when (instructors).

Pure functions over names, no files touched (intake.py walks the download):

- Canvas ("Download submissions"): flat files ``<login>[_LATE]_<user id>_<submission id>_<name>``,
  where ``<name>`` is the student's file name, with ``-1``, ``-2`` before the extension when the
  student handed in a file of the same name again (``canvas``).
- Moodle ("Download all submissions"): folders ``<Full Name>_<participant id>_assignsubmission_
  file_`` (or, without "download in folders", flat files with the file name after that prefix)
  (``moodle``).
- today's layouts: ``<student id>.ipynb``, ``<student id>/`` and ``<student id>.zip``
  (``student_id``), nbgrader's ``submitted/<student>/<assignment>/`` with its ``timestamp.txt``
  (``parse_time``).
- any other LMS: ``Pattern``, a regular expression with named groups in the way of nbgrader's
  FileNameCollectorPlugin (``student_id`` or ``student``; ``file_id`` or ``file``;
  optionally ``timestamp``, ``first_name``, ``last_name``, ``email``), matched from the start of
  a notebook's path relative to the download.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from lrpkit.grading.course import GradingError

#: today's student ids: file and folder names
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")
CANVAS = re.compile(
    r"(?P<login>[^/]+?)(?P<late>_LATE)?_(?P<user>[0-9]+)_(?P<submission>[0-9]+)_(?P<file>[^/]+)"
)
MOODLE = re.compile(
    r"(?P<name>[^/]+?)_(?P<participant>[0-9]+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>[^/]*)"
)
#: Canvas's mark of a file handed in again under the same name: ``ex3-2.ipynb``
RESUBMITTED = re.compile(r"(?P<stem>.+)-(?P<number>[0-9]{1,3})(?P<ext>\.[A-Za-z0-9]+)?")


@dataclass(frozen=True)
class Named:
    """What a file's or folder's name says about a submission."""

    student: str  # the key: the LMS's id of the student
    file: str  # the student's own file name ("" for a folder)
    origin: str  # canvas, moodle, pattern
    name: str = ""  # full name
    login: str = ""
    email: str = ""
    late: bool = False  # the LMS marked it late
    order: tuple = ()  # a later upload sorts higher (Canvas: submission id, then -N)
    submitted: datetime | None = None  # the hand-in time the name gives (tz-aware)
    plugin: str = "file"  # Moodle's submission plugin (file, onlinetext, ...)


def resubmission(file):
    """(file name without Canvas's ``-N``, N): ``("ex3.ipynb", 2)`` for ``ex3-2.ipynb``."""
    found = RESUBMITTED.fullmatch(file)
    if not found:
        return file, 0
    return found["stem"] + (found["ext"] or ""), int(found["number"])


def canvas(name):
    """``Named`` for a Canvas download's file name, or None when it is not one."""
    found = CANVAS.fullmatch(name)
    if not found:
        return None
    _, number = resubmission(found["file"])
    return Named(
        student=found["user"],
        file=found["file"],
        origin="canvas",
        login=found["login"],
        late=bool(found["late"]),
        order=(int(found["submission"]), number),
    )


def moodle(name):
    """``Named`` for a Moodle download's folder or file name, or None when it is not one.
    The folder's ``file`` is empty; a flat file's is the student's file name."""
    found = MOODLE.fullmatch(name)
    if not found:
        return None
    return Named(
        student=found["participant"],
        file=found["file"],
        origin="moodle",
        name=" ".join(found["name"].split()),
        plugin=found["plugin"],
    )


def student_id(name):
    """The student id today's layouts take from a name (``<id>``), or None."""
    return name if ID.fullmatch(name) else None


def parse_time(text):
    """A hand-in time from a name or nbgrader's timestamp.txt, as a tz-aware datetime:
    ISO 8601 (``2024-05-01T14:03:00+02:00``, ``...Z``, ``2024-05-01 14:03:00.123 UTC``) or
    digits with separators (``2024-05-01-14-03-00``, ``20240501140300``); without a zone
    it is UTC (as nbgrader takes it). ValueError says what it could not read."""
    clean = text.strip()
    clean = re.sub(r"\s*(UTC|GMT|Z)$", "+00:00", clean)
    try:
        found = datetime.fromisoformat(clean)
    except ValueError:
        found = None
    digits = re.sub(r"[-_.T: ]", "", clean)
    if found is None and re.fullmatch(r"[0-9]{12}([0-9]{2})?", digits):
        try:
            found = datetime.strptime(digits.ljust(14, "0"), "%Y%m%d%H%M%S")
        except ValueError:
            pass
    if found is None:
        raise ValueError(f"{text!r} is not a time (write it as 2024-05-01T14:03:00+02:00)")
    if found.tzinfo is None:
        found = found.replace(tzinfo=timezone.utc)
    return found.astimezone(timezone.utc)


class PatternError(GradingError):
    """A --pattern that cannot be used; says what to write instead."""


class Pattern:
    """``--pattern REGEX``: named groups take the student (``student_id`` or ``student``),
    optionally the file (``file_id`` or ``file``), the hand-in time (``timestamp``) and
    ``first_name``, ``last_name``, ``email``; matched (``re.match``) from the start of each
    notebook's path relative to the download, as nbgrader's FileNameCollectorPlugin does."""

    STUDENT = ("student_id", "student")
    FILE = ("file_id", "file")

    def __init__(self, text):
        try:
            self.regex = re.compile(text)
        except re.error as error:
            raise PatternError(f"--pattern {text!r} is not a regular expression: {error}") from None
        groups = set(self.regex.groupindex)
        if not groups & set(self.STUDENT):
            raise PatternError(
                f"--pattern {text!r} has no group (?P<student_id>...) (or (?P<student>...)) "
                "for the student, e.g. '(?P<student_id>[^_/]+)_(?P<file_id>[^/]+)'"
            )
        self.text = text

    def _group(self, found, names):
        return next((found[n] for n in names if n in self.regex.groupindex and found[n]), "")

    def match(self, path):
        """``Named`` for a notebook's path relative to the download, or None; ValueError
        for a match whose timestamp is no time."""
        found = self.regex.match(path)
        if not found:
            return None
        student = self._group(found, self.STUDENT)
        if not student:
            return None
        stamp = self._group(found, ("timestamp",))
        submitted = parse_time(stamp) if stamp else None
        name = " ".join(self._group(found, (n,)) for n in ("first_name", "last_name")).strip()
        return Named(
            student=student,
            file=self._group(found, self.FILE) or path.rsplit("/", 1)[-1],
            origin="pattern",
            name=name,
            email=self._group(found, ("email",)),
            order=(submitted,) if submitted else (),
            submitted=submitted,
        )
