"""Scoring: points, status, reason and per-check verdicts from a run's cell records.

A check earns its points when nbval found its output equal to the stored PASS line (or the
grader judged its observation right) and the guard before it ran cleanly. Every other
outcome gets a hint a student can act on (not defined, still a stub, an endless loop, a dead
kernel...). An exercise whose notebook was empty, unreadable or missing (``lost``) earns 0
with that reason, and the other exercises are graded as usual.
"""

import re
from dataclasses import dataclass, field

from lrpkit.grading.course import ALL_EXERCISES, BONUS, EXERCISES, Check
from lrpkit.grading.intake.parts import missing
from lrpkit.grading.late import Late
from lrpkit.grading.run.hidden import handles
from lrpkit.grading.sandbox.limits import limit_from_error

LEFT_RUNNING = "ThreadLeftRunning"  # the guard's error for a thread the student left running


@dataclass(frozen=True)
class Verdict:
    """One check's outcome for one student, with the line shown in the feedback."""

    check: Check
    passed: bool
    text: str
    missing: bool = False  # the check's cell found a name undefined (nothing handed in?)


@dataclass(frozen=True)
class Note:
    """A problem in one of the student's own cells: the cell's label (notebook and code cell
    number), its first lines (how the student finds it), and what went wrong."""

    cell: str
    excerpt: str
    text: str

    def __str__(self):
        return f"{self.cell}: {self.text}"


def _zero(exercises=EXERCISES):
    return {exercise: 0.0 for exercise in exercises}


@dataclass
class Result:
    """One student's grade: points per exercise and per check, status, reason, feedback
    details and the late penalty. ``points`` is None where nothing was graded (pending, the
    grader's own failure): such a row has empty points, never zeros."""

    student: str
    points: dict | None  # {exercise: points earned}; None: not graded
    status: str  # graded, invalid, timeout, limit, tampered, error, pending
    reason: str
    verdicts: list = field(default_factory=list)  # [Verdict]
    notes: list = field(default_factory=list)  # [Note]: problems in the student's own cells
    seconds: float = 0.0
    sandbox: str = ""  # how the run was isolated: "bubblewrap, seccomp[, cgroup v1]", "none..."
    config: str = ""  # the hidden configuration's JSON: all a re-grade needs
    checks: dict = field(default_factory=dict)  # {check key: points earned}
    late: Late = field(default_factory=Late)  # when handed in, how late, the penalty

    @classmethod
    def rejected(cls, sub, status="invalid"):
        """A submission that cannot be graded: no points, its problem as the reason."""
        return cls(sub.student, _zero(), status, sub.problem)

    @classmethod
    def pending(cls, sub):
        """A submission waiting for its run."""
        return cls(sub.student, None, "pending", "not graded yet")

    @classmethod
    def interrupted(cls, sub):
        """A submission whose run never ended because grading was stopped: still pending."""
        reason = "grading stopped before it was graded: run the same command with --resume"
        return cls(sub.student, None, "pending", reason)

    @classmethod
    def grader_error(cls, sub, error):
        """The grader's own trouble with a submission: its row says so (no points: it was
        not graded, which is not the student's 0)."""
        reason = f"the grader failed on this submission ({type(error).__name__}: {error})"
        return cls(sub.student, None, "error", reason[:400])

    @classmethod
    def tampered(cls, scored, changed):
        """A run that changed files it must not touch: no points, the feedback kept."""
        reason = "the submission changed files it must not touch: " + ", ".join(changed[:8])
        verdicts, notes = scored.verdicts, scored.notes
        return cls(
            scored.student, _zero(), "tampered", reason, verdicts, notes, scored.seconds,
            scored.sandbox, scored.config,
        )  # fmt: skip

    @property
    def raw(self):
        """The points earned before any late penalty (None: not graded)."""
        return None if self.points is None else sum(self.points.values())

    @property
    def total(self):
        """The points after the late penalty (None: not graded)."""
        return None if self.points is None else self.late.apply(self.raw)


def hint(ename, evalue, message, cell_timeout):
    """What a student should know about a failed cell: its error or nbval's message."""
    if "Timeout" in message or ename == "KeyboardInterrupt":
        return f"took longer than {cell_timeout:g} s and was stopped (an endless loop?)"
    if "Kernel died" in message:
        return "the kernel stopped while this cell ran (did your code exit, kill or crash it?)"
    if "Kernel dead" in message or "kernel" in message.lower() and not ename:
        return "the kernel had stopped before this check (did your code exit or crash it?)"
    if ename == "NameError":
        match = re.search(r"name '(\w+)' is not defined", evalue)
        if match:
            return (
                f"`{match[1]}` is not defined: define it in your notebook with exactly this "
                "name (renamed, missing, or its cell failed?)"
            )
    if ename == "MemoryError":
        return "ran out of memory (MemoryError): the grading sandbox's memory limit"
    if ename == "NotImplementedError":
        return f"still raises NotImplementedError ({evalue}): replace the stub by your code"
    if ename:
        return f"{ename}: {evalue}"[:500]
    return message[:500] or "did not run"


def _first_line(text, prefix):
    return next((line for line in text.splitlines() if line.startswith(prefix)), "")


def _record_hint(record, cell_timeout, limits=None):
    ename, evalue = record["error"]
    hit = limit_from_error(ename, evalue, limits) if limits is not None else None
    if hit is not None:  # a limit the kernel enforces ends in an exception
        return f"{hit.text} ({ename}: {evalue})"[:500]
    return hint(ename, evalue, record.get("message", ""), cell_timeout)


def verdict(check, guard, record, cell_timeout, hidden=None, config=None):
    """The verdict on one check from its cell's record and that of the guard before it;
    with ``hidden`` (lrpkit.grading.run.hidden) the cell's observation is judged here."""
    guard_ok = bool(guard) and guard["outcome"] == "passed"
    passed = bool(record) and record["outcome"] == "passed" and guard_ok
    stdout = (record or {}).get("stdout", "")
    if passed and hidden is not None and handles(check.source):
        passed, text = hidden.verdict(check.source, stdout, config)
        return Verdict(check, passed, text)
    if passed:
        text = _first_line(stdout, "PASS") or stdout.strip()
    elif record is None:
        text = "not run: the submission was stopped before this check"
    elif not guard_ok and guard and not guard.get("error") and guard.get("message"):
        text = hint("", "", guard["message"], cell_timeout)  # kernel dead, timeout
    elif not guard_ok and guard and (guard.get("error") or [""])[0] == LEFT_RUNNING:
        text = f"not graded: {guard['error'][1]}"[:500]  # the guard's own words
    elif not guard_ok:
        text = "not graded: the grader could not reset the kernel before this check"
    elif record.get("error"):
        text = _record_hint(record, cell_timeout)
        return Verdict(check, passed, text, missing=record["error"][0] == "NameError")
    elif "Timeout" in record.get("message", ""):
        text = hint("", "", record["message"], cell_timeout)
    else:
        fail = _first_line(stdout, "FAIL")
        text = fail or ("output differs from the expected verdict: " + stdout.strip()[:300])
    return Verdict(check, passed, text)


def not_handed_in(verdicts):
    """The bonus exercises none of whose checks found the names they check defined."""
    bonus = {v.check.exercise for v in verdicts if v.check.exercise in BONUS}
    return {e for e in bonus if all(v.missing for v in verdicts if v.check.exercise == e)}


def _running(run):
    """The cell a stopped run was in: the first one without a record."""
    for number, role in enumerate(run.roles):
        if number not in run.records:
            if role.kind == "student":
                return role.label
            if role.check is not None:
                return role.check.name
            return "the grader's setup"
    return "the end of the run"


def _status(run, failed, notes=(), lost=None):
    """Status and reason of a run from its outcome, its failed verdicts and the errors and
    time-outs in the student's own cells (shown first: they often explain the rest), after
    the exercises whose notebooks could not be used."""
    if run.limit is not None:
        status = "limit"
        reason = f"{run.limit.text} in {_running(run)}"
    elif run.timed_out:
        status = "timeout"
        reason = f"stopped after the per-submission limit of {run.seconds:.0f} s"
    elif not run.records:
        status = "error"
        reason = "the notebook did not run: " + (run.log.strip().splitlines() or ["no output"])[-1]
    elif len(run.records) < len(run.roles):  # pytest itself ended (killed, crashed) early
        status = "error"
        reason = f"the run ended early, in {_running(run)} (did the code kill its parent?)"
    else:
        status = "graded"
        reason = "all checks passed" if not failed and not lost else ""
    if lost:
        parts = "; ".join(f"{why} ({exercise}: 0 points)" for exercise, why in lost.items())
        reason = f"{parts}; {reason}" if reason else parts
    if notes:
        more = f" (and {len(notes) - 1} more cells)" if len(notes) > 1 else ""
        cells = f"error in own cell {notes[0]}{more}"
        reason = f"{reason}; {cells}" if reason else cells
    if failed:
        details = "; ".join(f"{v.check.name}: {v.text}" for v in failed)
        reason = f"{reason}; {details}" if reason else details
    reason = " ".join(reason.split())
    if len(reason) > 400:
        reason = reason[:397] + "..."
    return status, reason


def score(student, run, cell_timeout, hidden=None, lost=None, checks=None):
    """Points, status, reason and feedback from the plugin's per-cell records of a run.
    ``lost``: {exercise: why its notebook could not be used}; its ``checks`` (the course's,
    of which the run left out those of lost exercises) earn 0 with that reason."""
    lost = dict(lost or {})
    graded = {role.check.exercise for role in run.roles if role.check is not None}
    graded |= {check.exercise for check in checks or ()}
    points = _zero(e for e in ALL_EXERCISES if e in graded or e in EXERCISES)
    verdicts, notes = [], []
    guard = None  # the record of the guard cell before the current check
    for number, role in enumerate(run.roles):
        record = run.records.get(number)
        if role.kind == "student" and record and record.get("error"):
            text = _record_hint(record, cell_timeout, run.limits)
            notes.append(Note(role.label, role.excerpt, text))
        elif role.kind == "student" and record and record.get("outcome") == "failed":
            # no error output: nbval stopped the cell (time-out) or lost the kernel
            text = hint("", "", record.get("message", ""), cell_timeout)
            notes.append(Note(role.label, role.excerpt, text))
        elif role.kind == "guard":
            guard = record
        elif role.kind == "check":
            verdicts.append(verdict(role.check, guard, record, cell_timeout, hidden, run.config))
            if verdicts[-1].passed:
                points[role.check.exercise] += role.check.points
    failed = [v for v in verdicts if not v.passed]
    if lost:
        skipped = [c for c in checks or () if c.exercise in lost]
        verdicts += [
            Verdict(c, False, f"not graded: {lost[c.exercise]}", missing(lost[c.exercise]))
            for c in skipped
        ]
        if checks:
            order = {check.key: number for number, check in enumerate(checks)}
            verdicts.sort(key=lambda v: order.get(v.check.key, len(order)))
    unsent = not_handed_in(verdicts)  # a bonus left out: no failure, said in the reason
    failed = [v for v in failed if v.check.exercise not in unsent]
    lost = {exercise: why for exercise, why in lost.items() if exercise not in unsent}
    status, reason = _status(run, failed, notes, lost)
    if unsent:
        reason = f"{reason}; bonus: not handed in" if reason else "bonus: not handed in"
    points = {exercise: round(value, 6) for exercise, value in points.items()}
    earned = {v.check.key: v.check.points if v.passed else 0.0 for v in verdicts}
    config = run.config.to_json() if run.config is not None else ""
    return Result(
        student, points, status, reason, verdicts, notes, run.seconds, run.sandbox, config,
        earned,
    )  # fmt: skip
