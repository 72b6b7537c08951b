"""``--roster FILE``: the LMS's own export of the class, for names, SIS ids and sections.

Read as data (bounded, no formulas evaluated, no column trusted beyond its text):

- Canvas's gradebook export (Grades, Export, CSV): ``Student, ID, SIS User ID, SIS Login ID,
  [Integration ID,] Section, <assignments>...``; its ``Points Possible`` row (no ID) and the
  course's test student (``Student, Test``) are skipped. ``ID`` is the Canvas user id in the
  download's file names.
- Moodle's grading worksheet (Assignment, Download grading worksheet): ``Identifier`` holds
  ``Participant <id>``, the id in the download's folder names; ``Full name``, ``Email address``,
  and ``ID number``, ``Username``, ``Group(s)`` where the course shows them.
- Moodle's participants export (Participants, Download table data as CSV): ``First name``,
  ``Last name``, ``ID number``, ``Email address``, ``Groups``; it has no participant id, so its
  people are found by full name (unique names only).
"""

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field

from lrpkit.grading.course import GradingError
from lrpkit.grading.intake.files import read_file
from lrpkit.grading.intake.submissions import Submission

NO_SUBMISSION = "no submission"  # the reason in the row of a roster student without one
MAX_ROSTER_BYTES = 32 * 2**20
TEST_STUDENTS = {"student, test", "test student"}


class RosterError(GradingError):
    """A roster that cannot be read; says which export to give instead."""


@dataclass(frozen=True)
class Person:
    """One student of the roster."""

    key: str  # the LMS's id that submissions are keyed by ("" when the export has none)
    name: str
    login: str = ""
    sis_id: str = ""
    section: str = ""
    email: str = ""


def simple_name(name):
    """A name compared without case, accents' spacing or "Last, First" order."""
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    return " ".join(name.casefold().split())


@dataclass
class Roster:
    """The people of a roster file and what it skipped ([str])."""

    people: list
    kind: str  # canvas, moodle, moodle-participants
    skipped: list = field(default_factory=list)

    def __post_init__(self):
        self._by_key = {p.key: p for p in self.people if p.key}
        self._by_other = {}
        for person in self.people:
            for value in {person.sis_id, person.login, person.email} - {""}:
                self._by_other.setdefault(value.casefold(), []).append(person)
        self._by_name = {}
        for person in self.people:
            self._by_name.setdefault(simple_name(person.name), []).append(person)

    def find(self, key, name="", login="", email=""):
        """The person a submission is: by the LMS id, else by an SIS id, login or email
        equal to its key, login or email, else by its full name; None when none or several."""
        if key in self._by_key:
            return self._by_key[key]
        for value in (key, login, email):
            found = self._by_other.get(value.casefold(), []) if value else []
            if len(found) == 1:
                return found[0]
        found = self._by_name.get(simple_name(name), []) if name else []
        return found[0] if len(found) == 1 else None


def _table(data, path):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterError(f"{path} is not UTF-8 text: export the roster as CSV (UTF-8)") from None
    if text.startswith("PK\x03\x04") or "\x00" in text:
        raise RosterError(f"{path} is not a CSV file: export the roster as CSV, not a workbook")
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as error:
        raise RosterError(f"{path}: not a CSV file ({error})") from None
    rows = [[cell.strip() for cell in row] for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise RosterError(f"{path} is empty")
    return rows[0], rows[1:]


def _column(header, *names):
    """The index of the first column called one of names (any case), or None."""
    lowered = [h.casefold() for h in header]
    for name in names:
        if name.casefold() in lowered:
            return lowered.index(name.casefold())
    return None


def _value(row, index):
    return row[index] if index is not None and index < len(row) else ""


def _canvas(header, rows):
    at = {
        key: _column(header, *names)
        for key, names in {
            "name": ("Student",),
            "key": ("ID",),
            "sis": ("SIS User ID",),
            "login": ("SIS Login ID",),
            "section": ("Section",),
        }.items()
    }
    people, skipped = [], []
    for row in rows:
        name, key = _value(row, at["name"]), _value(row, at["key"])
        if not key:
            skipped.append(f"a row without an ID ({name or 'empty'}: points possible?)")
        elif name.casefold() in TEST_STUDENTS:
            skipped.append(f"Canvas's test student ({key})")
        else:
            people.append(
                Person(
                    key,
                    name,
                    _value(row, at["login"]),
                    _value(row, at["sis"]),
                    _value(row, at["section"]),
                )
            )
    return people, skipped


def _moodle(header, rows):
    at = {
        key: _column(header, *names)
        for key, names in {
            "key": ("Identifier",),
            "name": ("Full name",),
            "email": ("Email address", "Email"),
            "sis": ("ID number",),
            "login": ("Username",),
            "section": ("Groups", "Group"),
        }.items()
    }
    people, skipped = [], []
    for row in rows:
        identifier = _value(row, at["key"])
        found = re.fullmatch(r"\D*?([0-9]+)", identifier)
        if not found:
            skipped.append(f"a row whose Identifier is not 'Participant <id>' ({identifier!r})")
            continue
        email = _value(row, at["email"])
        people.append(
            Person(
                found[1],
                _value(row, at["name"]),
                _value(row, at["login"]) or email,
                _value(row, at["sis"]),
                _value(row, at["section"]),
                email,
            )
        )
    return people, skipped


def _participants(header, rows):
    first, last = _column(header, "First name"), _column(header, "Last name")
    email, sis = _column(header, "Email address", "Email"), _column(header, "ID number")
    section = _column(header, "Groups", "Group")
    people = [
        Person(
            "",
            f"{_value(row, first)} {_value(row, last)}".strip(),
            _value(row, email),
            _value(row, sis),
            _value(row, section),
            _value(row, email),
        )
        for row in rows
    ]
    return people, []


def read_roster(path):
    """The ``Roster`` of an LMS export (format recognised by its columns); RosterError says
    which columns were expected."""
    try:
        data = read_file(path, MAX_ROSTER_BYTES)
    except (OSError, ValueError) as error:
        raise RosterError(f"--roster {path}: {error}") from None
    header, rows = _table(data, path)
    if _column(header, "Student") is not None and _column(header, "ID") is not None:
        kind, (people, skipped) = "canvas", _canvas(header, rows)
    elif _column(header, "Identifier") is not None:
        kind, (people, skipped) = "moodle", _moodle(header, rows)
    elif _column(header, "First name") is not None and _column(header, "Last name") is not None:
        kind, (people, skipped) = "moodle-participants", _participants(header, rows)
    else:
        raise RosterError(
            f"{path}: not a gradebook export this grader knows; give Canvas's gradebook CSV "
            "(columns Student, ID, SIS User ID, SIS Login ID, Section), Moodle's grading "
            "worksheet (Identifier, Full name, Email address) or Moodle's participants export "
            f"(First name, Last name, Email address); its columns: {', '.join(header[:8])}"
        )
    counts = Counter(p.key for p in people if p.key)
    twice = sorted(key for key, n in counts.items() if n > 1)
    if twice:
        raise RosterError(f"{path}: the id {twice[0]} is on more than one row")
    return Roster(people, kind, skipped)


def join(subs, roster):
    """Fill names, SIS ids and sections from the roster, re-key to its ids; the roster's
    students without a submission get a row (problem ``NO_SUBMISSION``, origin ``roster``);
    a second submission of one person becomes a row of its own (origin ``unmatched``).
    Returns (subs, missing keys, unknown keys, [(key, reason, student)] of second ones)."""
    found, unknown, twice = [], [], []
    seen = {}  # id(person) -> the submission keyed to them
    for sub in subs:
        person = (
            None if sub.origin == "unmatched" else roster.find(sub.student, sub.name, sub.login)
        )
        if person is None:
            unknown += [] if sub.origin == "unmatched" else [sub.student]
        elif id(person) in seen:
            first = seen[id(person)].student
            sub.problem = f"a second submission for {first} (the roster's {person.name})"
            twice.append((sub.student, sub.problem, first))
            sub.student, sub.origin = f"{sub.student} (second for {first})", "unmatched"
        else:
            seen[id(person)] = sub
            sub.student = person.key or sub.student
            sub.name = person.name or sub.name
            sub.login = person.login or sub.login
            sub.sis_id, sub.section = person.sis_id, person.section
        found.append(sub)
    missing = []
    for person in roster.people:
        if id(person) in seen:
            continue
        key = person.key or person.sis_id or person.login or person.name
        missing.append(key)
        found.append(
            Submission(
                key,
                [],
                problem=NO_SUBMISSION,
                name=person.name,
                login=person.login,
                sis_id=person.sis_id,
                section=person.section,
                origin="roster",
            )
        )
    return found, missing, unknown, twice
