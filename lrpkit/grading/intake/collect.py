"""Intake: whatever the LMS downloads, read safely into one ``Submission`` per student.

``collect(path, pattern=None, roster=None)`` takes a folder or a ``.zip`` and recognises, entry
by entry, without configuration (layouts.py has the names):

- Canvas's "Download submissions" (zip or extracted): flat files
  ``<login>[_LATE]_<user id>_<submission id>_<file>``; keyed by the user id, login kept,
  ``LATE`` sets ``late``;
- Moodle's "Download all submissions" (zip or extracted): ``<Full Name>_<participant id>_
  assignsubmission_file_/`` folders (or flat files); keyed by the participant id, name kept;
- ``<id>.zip``, ``<id>/`` and ``<id>.ipynb`` per student; nbgrader's ``submitted/<student>/
  <assignment>/`` (its ``timestamp.txt`` is the hand-in time);
- with ``pattern`` (layouts.Pattern), only that: every notebook's path is matched against it.

A zip (the download, a student's zip, a zip in a student's folder) is read in memory, never
extracted (zips.py); links and special files are never followed. Each notebook is matched to
its exercise by its cells (matching.py). When one student has two notebooks of one exercise,
the newer wins: by Canvas's submission id (then its ``-N`` suffix), else by the files' times;
when nothing tells them apart, both are unusable and named. ``Intake.unmatched`` names every
file left out (refused, or no student found) with its reason; such a file also has a row:
its student's (a ``NotebookFile`` with a ``problem``, which parse records in
``Submission.problems``, or the submission's ``problem``), or one of its own (origin
``unmatched``). ``roster`` (roster.py) fills names, SIS ids and sections,
re-keys submissions to the roster's LMS id, and adds a row ``no submission`` for each student
without one. The records it returns, ``Intake`` and ``Unmatched``, are in result.py.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

from lrpkit.grading.course import ALL_EXERCISES, GradingError
from lrpkit.grading.intake import layouts
from lrpkit.grading.intake.files import Refused
from lrpkit.grading.intake.matching import Exercises
from lrpkit.grading.intake.result import Intake, Unmatched
from lrpkit.grading.intake.roster import join
from lrpkit.grading.intake.submissions import MAX_NOTEBOOK_BYTES, NotebookFile, Submission
from lrpkit.grading.intake.tree import open_zip, root
from lrpkit.grading.intake.zips import LIMITS, Budget

SKIPPED = ("__MACOSX", ".ipynb_checkpoints", "__pycache__")
MAX_DEPTH = 6  # folder levels within one student's submission
MAX_NODES = 200_000  # files and folders in one download


@dataclass
class Candidate:
    """One notebook found for a student, before it is read."""

    node: object  # tree.Node
    file: str  # the student's own file name
    order: tuple = ()  # the LMS's upload order (newer sorts higher)
    submitted: datetime | None = None  # hand-in time the LMS recorded
    late: bool = False
    problem: str = ""  # refused before reading


@dataclass
class Draft:
    """A student's submission while the download is walked."""

    student: str
    origin: str
    entry: str  # the download's entry it came from
    name: str = ""
    login: str = ""
    candidates: list = field(default_factory=list)
    problem: str = ""
    refusals: list = field(default_factory=list)  # [str]: what was refused in it


def _hidden(name):
    return name.startswith(".") or name in SKIPPED


def _notebook(name):
    return name.lower().endswith(".ipynb")


def _zip(name):
    return name.lower().endswith(".zip")


def _stem(name):
    return re.sub(r"\.(ipynb|zip)$", "", name, flags=re.IGNORECASE)


class Collector:
    """Walks one download; ``drafts`` per student key, what it left out and noted."""

    def __init__(self, exercises, pattern=None, limits=LIMITS):
        self.exercises = exercises
        self.pattern = pattern
        self.limits = limits
        self.budget = Budget(limits)
        self.drafts = {}
        self.rows = []  # [Submission] of entries no student could be found for
        self.unmatched, self.notes = [], []
        self.nodes = 0

    # -- what is left out ---------------------------------------------------------------

    def leave(self, path, reason, draft=None):
        """A file left out: named in the summary, and in its student's row where known,
        else in a row of its own."""
        self.unmatched.append(Unmatched(path, reason, draft.student if draft else ""))
        if draft is not None:
            draft.refusals.append(reason)
        else:
            key = path if "/" in path else _stem(path)  # today's rows: the file's stem
            key = key if key not in self.drafts else f"{path} (unmatched)"
            self.rows.append(Submission(key, [], problem=reason, origin="unmatched"))

    def note(self, path, reason, student=""):
        self.notes.append(Unmatched(path, reason, student))

    def children(self, node, draft=None):
        """A folder's children, counted against the download's bound; [] when refused."""
        try:
            found = node.children()
        except Refused as refused:
            self.leave(node.path, str(refused), draft)
            return []
        self.nodes += len(found)
        if self.nodes > MAX_NODES:
            raise GradingError(f"the download holds more than {MAX_NODES} files and folders")
        return [child for child in found if not _hidden(child.name)]

    def archive(self, node, draft=None):
        """The folder node of a zip; None when the zip is refused (left out). Its refused
        members are left out too: ``draft``'s, or those of the students their names say."""
        try:
            folder = open_zip(node, self.limits, self.budget)
        except Refused as refused:
            self.leave(node.path, str(refused), draft)
            return None
        for path, reason in folder.refused:
            self.leave(path, reason, draft or self.owner(path.rsplit("/", 1)[-1]))
        return folder

    def owner(self, name):
        """The draft of the student an LMS name points at, or None."""
        named = layouts.canvas(name) or layouts.moodle(name)
        return self.draft(named.student, named.origin, name, named) if named else None

    # -- students ----------------------------------------------------------------------

    def draft(self, student, origin, entry, named=None):
        """The draft of a student, or None when another entry of the download already
        holds a submission of theirs (this one is then left out)."""
        found = self.drafts.get(student)
        if found is None:
            found = self.drafts[student] = Draft(student, origin, entry)
        elif found.entry != entry and not (found.origin == origin and named is not None):
            self.leave(entry, f"a second submission for {student} (beside {found.entry})", found)
            return None
        if named is not None:
            found.name = found.name or named.name
            found.login = found.login or named.login
        return found

    def notebooks(self, node, draft, depth=0, lms_time=False, **lms):
        """Add every notebook below a node (through folders and zips) to a draft. ``lms``:
        the Candidate fields the LMS gave the whole entry (file, order, late, submitted);
        ``lms_time``: the files' own times are the LMS's record of the upload (Moodle)."""
        if lms_time and node.kind == "file":
            lms = {**lms, "submitted": node.mtime}
        if depth > MAX_DEPTH:
            self.leave(node.path, f"folders nested more than {MAX_DEPTH} deep", draft)
        elif node.kind == "dir":
            children = self.children(node, draft)
            stamp = next((c for c in children if c.name == "timestamp.txt"), None)
            if stamp is not None and draft.origin in ("folder", "nbgrader"):
                draft.origin, lms = "nbgrader", {**lms, "submitted": self.timestamp(stamp)}
            for child in children:
                self.notebooks(child, draft, depth + 1, lms_time, **lms)
        elif node.kind != "file":
            reason = _refusal(node)
            self.leave(node.path, reason, draft)
            if _notebook(node.name):
                draft.candidates.append(Candidate(node, node.name, problem=reason))
        elif _notebook(node.name):
            draft.candidates.append(Candidate(node, lms.pop("file", node.name), **lms))
        elif _zip(node.name):
            folder = self.archive(node, draft)
            if folder is not None:
                lms.pop("file", None)
                self.notebooks(folder, draft, depth + 1, **lms)
        elif node.name != "timestamp.txt":
            self.note(node.path, "not a notebook: not graded", draft.student)

    def timestamp(self, node):
        """nbgrader's hand-in time in a timestamp.txt, or None."""
        try:
            return layouts.parse_time(node.read(4096).decode("utf-8", "replace"))
        except (Refused, ValueError) as error:
            self.note(node.path, f"not a time: {error}")
            return None

    # -- the download's entries --------------------------------------------------------

    def entry(self, node, level=0, lms_only=False):
        """One entry of the download (or of a download inside it: ``lms_only`` for the
        entries of a Canvas or Moodle download, where only its names are students)."""
        named = None
        if node.kind == "file":
            named = layouts.canvas(node.name)
        if node.kind in ("file", "dir"):
            named = named or layouts.moodle(node.name)
        if named is not None:
            self.lms(node, named)
        elif lms_only:
            self.leave(
                node.path, "not a name Canvas or Moodle gives a submission: no student found"
            )
        elif node.kind not in ("file", "dir"):
            self.refused(node, _refusal(node))
        elif node.kind == "dir" and level < 2 and node.name == "submitted":
            for child in self.children(node):  # nbgrader's submitted/<student>/
                self.entry(child, level + 1)
        elif node.kind == "dir" and level < 2 and self.container(node):
            for child in self.children(node):
                self.entry(child, level + 1, lms_only=True)
        elif node.kind == "dir":
            self.student(node, "folder")
        elif _zip(node.name):
            try:
                folder = open_zip(node, self.limits, self.budget)
            except Refused as refused:
                self.refused(node, str(refused))
                return
            if level < 2 and self.container(folder):
                for path, reason in folder.refused:
                    self.leave(path, reason, self.owner(path.rsplit("/", 1)[-1]))
                for child in self.children(folder):
                    self.entry(child, level + 1, lms_only=True)
            else:
                self.student(node, "zip", folder)
        elif _notebook(node.name):
            self.student(node, "folder")
        else:
            self.note(node.path, "not a notebook, zip or folder of a student: not graded")

    def refused(self, node, reason):
        """An entry that cannot be read at all: its student's row says so where its name
        is an id, else a row of its own."""
        key = layouts.student_id(_stem(node.name))
        draft = self.draft(key, "zip" if _zip(node.name) else "folder", node.path) if key else None
        self.leave(node.path, reason, draft)
        if draft is not None:
            draft.problem = draft.problem or reason

    def container(self, folder):
        """Whether a folder (or zip) is a download itself: most entries LMS-named."""
        names = [c.name for c in self.children(folder)]
        lms = [n for n in names if layouts.canvas(n) or layouts.moodle(n)]
        return bool(lms) and 2 * len(lms) > len(names)

    def lms(self, node, named):
        """An entry named by Canvas or Moodle."""
        if named.origin == "moodle" and named.plugin != "file":
            self.note(node.path, f"Moodle's {named.plugin} submission: not graded", named.student)
            return
        draft = self.draft(named.student, named.origin, node.path, named)
        if draft is None:
            return
        lms = {"order": named.order, "late": named.late}
        if node.kind == "file":
            lms["file"] = named.file
            if not (_notebook(named.file) or _zip(named.file)):
                self.note(node.path, "not a notebook: not graded", draft.student)
                return
        self.notebooks(node, draft, lms_time=named.origin == "moodle", **lms)

    def student(self, node, origin, folder=None):
        """``<id>/``, ``<id>.zip`` or ``<id>.ipynb``."""
        key = layouts.student_id(_stem(node.name))
        if key is None:
            self.leave(node.path, "the file name is not a student id (letters, digits, . _ @ + -)")
            return
        draft = self.draft(key, origin, node.path)
        if draft is None:
            return
        if folder is not None:
            for path, reason in folder.refused:
                self.leave(path, reason, draft)
        self.notebooks(folder or node, draft)

    def by_pattern(self, node, depth=0):
        """--pattern: every notebook below the download's folder, by its path."""
        if depth > MAX_DEPTH + 2:
            self.leave(node.path, f"folders nested more than {MAX_DEPTH} deep")
        elif node.kind == "dir":
            for child in self.children(node):
                self.by_pattern(child, depth + 1)
        elif node.kind != "file":
            self.leave(node.path, _refusal(node))
        elif _zip(node.name):
            folder = self.archive(node)
            if folder is not None:
                self.by_pattern(folder, depth + 1)
        elif not _notebook(node.name):
            self.note(node.path, "not a notebook: not graded")
        else:
            self.matched(node)

    def matched(self, node):
        """A notebook found under --pattern: its student and time from its path."""
        try:
            named = self.pattern.match(node.path)
        except ValueError as error:
            self.leave(node.path, f"--pattern matched, but {error}")
            return
        if named is None:
            self.leave(node.path, f"its path does not match --pattern {self.pattern.text}")
            return
        draft = self.draft(named.student, "pattern", node.path, named)
        order = named.order or ((node.mtime,) if node.mtime else ())
        file = named.file if _notebook(named.file) else node.name
        draft.candidates.append(Candidate(node, file, order, named.submitted))

    # -- the submissions ---------------------------------------------------------------

    def submission(self, draft):
        """The Submission of a draft: notebooks read, matched, duplicates resolved."""
        sub = Submission(draft.student, [], problem=draft.problem, origin=draft.origin)
        if not draft.candidates and not sub.problem:
            what = {"zip": "zip", "folder": "folder"}.get(draft.origin, "submission")
            sub.problem = f"the {what} holds no .ipynb notebook"
            if draft.refusals:
                sub.problem = f"no notebook could be read from the {what}: " + "; ".join(
                    draft.refusals[:3]
                )
        sub.name, sub.login = draft.name, draft.login
        files = []
        for candidate in draft.candidates:
            data, problem = b"", candidate.problem
            if not problem:
                try:
                    data = candidate.node.read(MAX_NOTEBOOK_BYTES)
                except Refused as refused:
                    problem = str(refused)
                    self.leave(candidate.node.path, problem, draft)
            match = self.exercises.match(candidate.file, data)
            if not match.how and not problem:
                self.note(
                    candidate.node.path,
                    "matches no exercise by its cells or its name: graded as a whole",
                    draft.student,
                )
            exercise = match.exercise or "+".join(sorted(match.held))  # several: "ex3+ex4"
            files.append((candidate, NotebookFile(candidate.file, data, exercise, problem)))
        files = self.newest(draft, files)
        used = [c for c, f in files if not f.problem]
        sub.late = any(c.late for c in used)
        times = [c.submitted for c in used if c.submitted is not None]
        sub.submitted = max(times) if times else None
        names = set()
        for _, notebook in sorted(files, key=lambda cf: _position(cf[1])):
            sub.files.append(_unique(notebook, names))
        return sub

    def newest(self, draft, files):
        """Two notebooks of one exercise: the newer wins (the LMS's order, else the files'
        times); when nothing tells them apart, both are named and neither is used."""
        for exercise in sorted({f.exercise for _, f in files if f.exercise and not f.problem}):
            same = [c for c, f in files if f.exercise == exercise and not f.problem]
            if len(same) < 2:
                continue
            newest = _newest(same)
            if newest is not None:
                for c in same:
                    if c is not newest:
                        self.note(c.node.path, f"superseded by {newest.node.path}", draft.student)
                files = [(c, f) for c, f in files if c is newest or all(c is not s for s in same)]
                continue
            names = ", ".join(c.node.path for c in same)
            reason = f"two notebooks for {exercise} ({names}) and nothing says which is newer"
            for c in same:
                self.leave(c.node.path, reason + ": hand in one", draft)
            files = [
                (c, _with(f, problem=reason) if any(c is s for s in same) else f) for c, f in files
            ]
        return files


def _with(notebook, **changes):
    fields = {k: getattr(notebook, k) for k in ("name", "data", "exercise", "problem")}
    return NotebookFile(**{**fields, **changes})


def _newest(candidates):
    """The newest of [Candidate], or None when nothing orders them: the LMS's order where
    every one has it, else the files' times."""
    for key in (lambda c: c.order, lambda c: c.node.mtime):
        values = [key(c) for c in candidates]
        if all(values) and len(set(values)) == len(values):
            return max(candidates, key=key)
    return None


def _position(notebook):
    order = ALL_EXERCISES
    rank = order.index(notebook.exercise) if notebook.exercise in order else len(order)
    return rank, notebook.name


def _unique(notebook, names):
    """The notebook under a name no other file of the submission has."""
    name, n = notebook.name, 1
    while name in names:
        n += 1
        name = re.sub(r"(\.ipynb)?$", f" ({n})\\1", notebook.name, count=1, flags=re.I)
    names.add(name)
    return notebook if name == notebook.name else _with(notebook, name=name)


def _refusal(node):
    """Why a node that is neither a regular file nor a folder is not read, in files.py's
    words (a link, a FIFO, a device...: never opened); a link without a notebook's or zip's
    name may stand for a folder."""
    if node.kind == "symlink" and not (_notebook(node.name) or _zip(node.name)):
        return f"{node.name} is a symbolic link: hand in the folder itself"
    try:
        node.read(0)
    except Refused as refused:
        return str(refused)
    return f"{node.name} is not a regular file"


def collect(path, pattern=None, roster=None, exercises=None, limits=LIMITS):
    """The ``Intake`` of a download (a folder or a ``.zip``): one Submission per student,
    and what was left out. ``pattern``: a layouts.Pattern (or its text); ``roster``: a
    roster.Roster; ``exercises``: a matching.Exercises (default: the kit's solutions)."""
    top = root(path)
    if top is None:
        raise GradingError(f"{path} is not a folder of submissions or a .zip download")
    if isinstance(pattern, str):
        pattern = layouts.Pattern(pattern)
    collector = Collector(exercises or Exercises.from_solutions(), pattern, limits)
    if top.kind == "file":
        folder = collector.archive(top)
        if folder is None:
            raise GradingError(f"{path}: {collector.unmatched[-1].reason}")
        top = folder
    if pattern is not None:
        collector.by_pattern(top)
    else:
        lms_only = collector.container(top)
        for child in collector.children(top):
            collector.entry(child, 1 if lms_only else 0, lms_only)
    subs = [collector.submission(d) for d in collector.drafts.values()] + collector.rows
    missing, unknown = [], []
    if roster is not None:
        subs, missing, unknown, twice = join(subs, roster)
        collector.unmatched += [Unmatched(*item) for item in twice]
    subs.sort(key=lambda s: s.student)
    return Intake(subs, collector.unmatched, collector.notes, missing, unknown)
