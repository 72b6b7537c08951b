"""Late submissions: the due date, the penalty policy, and the penalty of one submission.

A policy is written as the command line (``--late``) and the course file take it:

- ``10%/day`` -- 10 % of the points per started day after the due date (``%/hour`` likewise);
- ``...,grace=15m`` -- submissions up to 15 minutes late count as on time;
- ``...,max=3d`` -- more than 3 days late earns 0 points (not accepted);
- ``...,cap=30%`` -- the penalty never exceeds 30 %;
- ``zero`` -- any late submission earns 0; ``none`` -- lateness is shown, nothing deducted.

When a submission was handed in comes from the LMS's download (``Submission.submitted``) or
from ``--times FILE``, a CSV with the columns ``student`` and ``submitted`` (ISO 8601, e.g.
``2025-01-31T23:59:00+01:00``; without an offset the grading machine's local time). A
submission that the LMS only *marked* late (Canvas's ``LATE``), with no time known, gets the
penalty of one started unit and says so.
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

UNITS = {"d": 86400, "day": 86400, "days": 86400, "h": 3600, "hour": 3600, "hours": 3600}
DURATION_UNITS = {**UNITS, "m": 60, "min": 60, "minutes": 60, "s": 1}
POLICY_HELP = "e.g. 10%/day, 5%/hour,max=3d, 10%/day,grace=15m,cap=30%, zero or none"


class LateError(ValueError):
    """A due date, policy or times file that cannot be read; says what to write instead."""


def parse_time(text, what="a time"):
    """An ISO 8601 date and time as a timezone-aware datetime (no offset: local time)."""
    text = str(text).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise LateError(
            f"{what} {text!r} is not an ISO 8601 date and time (e.g. 2025-01-31T23:59:00+01:00)"
        ) from None
    return aware(when)


def aware(when):
    """A datetime with a timezone: a naive one is the grading machine's local time."""
    return when if when.tzinfo is not None else when.astimezone()


def parse_duration(text):
    """'3d', '12h', '15m', '1.5 days' -> timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", str(text).lower())
    if not match or match[2] not in DURATION_UNITS:
        raise LateError(f"{text!r} is not a duration (e.g. 3d, 12h or 15m)")
    return timedelta(seconds=float(match[1]) * DURATION_UNITS[match[2]])


def human(delta):
    """A positive timedelta as '2 d 3 h 5 min' (minutes rounded up)."""
    minutes = math.ceil(delta.total_seconds() / 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours)
    return " ".join(parts + [f"{minutes} min"] * bool(minutes or not parts))


@dataclass(frozen=True)
class Policy:
    """How much a late submission loses: ``percent`` per started ``unit`` (seconds); ``zero``:
    everything; nothing when ``percent`` is 0. ``grace``, ``limit`` (later: 0 points) and
    ``cap`` (the most it loses, in percent) as in the module's docstring."""

    percent: float = 0.0
    unit: float = 86400.0
    grace: timedelta = timedelta(0)
    limit: timedelta | None = None
    cap: float = 100.0
    zero: bool = False
    text: str = "none"

    @classmethod
    def parse(cls, text):
        text = str(text).strip()
        if text.lower() in ("none", ""):
            return cls()
        if text.lower() == "zero":
            return cls(percent=100.0, zero=True, text="zero")
        first, *options = (part.strip() for part in text.split(","))
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%\s*/\s*([a-z]+)", first.lower())
        if not match or match[2] not in UNITS:
            raise LateError(f"--late {text!r}: not a policy ({POLICY_HELP})")
        settings = {"percent": float(match[1]), "unit": float(UNITS[match[2]]), "text": text}
        for option in options:
            key, _, value = (part.strip() for part in option.partition("="))
            try:
                if key == "grace":
                    settings["grace"] = parse_duration(value)
                elif key == "max":
                    settings["limit"] = parse_duration(value)
                elif key == "cap" and re.fullmatch(r"\d+(?:\.\d+)?%", value):
                    settings["cap"] = min(100.0, float(value[:-1]))
                else:
                    raise LateError(f"{option!r} is not grace=, max= or cap= ({POLICY_HELP})")
            except LateError as error:
                raise LateError(f"--late {text!r}: {error}") from None
        if settings["percent"] > 100:
            raise LateError(f"--late {text!r}: more than 100 % per unit")
        return cls(**settings)

    def penalty(self, delay):
        """(percent lost, why) for a submission ``delay`` late (None: marked late, time unknown)."""
        if delay is not None and delay <= self.grace:
            return 0.0, ""
        if self.zero:
            return 100.0, "late: 0 points (policy: zero)"
        if self.limit is not None and delay is not None and delay > self.limit:
            return 100.0, f"more than {human(self.limit)} late: not accepted, 0 points"
        if delay is None:
            units = 1
        else:
            units = math.ceil((delay - self.grace).total_seconds() / self.unit - 1e-9)
        percent = min(self.cap, self.percent * units)
        unit = "day" if self.unit == 86400 else "hour"
        started = f"{units} started {unit}{'s' * (units != 1)}"
        return percent, f"-{percent:g}% ({started} x {self.percent:g}%)" if percent else ""


@dataclass(frozen=True)
class Rule:
    """A course's due date and policy."""

    due: datetime
    policy: Policy = Policy()

    def judge(self, submitted=None, marked=False):
        """The Late record of a submission handed in at ``submitted`` (or only ``marked``)."""
        if submitted is None:
            if not marked:
                return Late()
            percent, why = self.policy.penalty(None)
            note = "marked late by the LMS, time unknown (give --times for the exact time)"
            return Late(None, "late (time unknown)", percent, f"{note}; {why}" if why else note)
        delay = submitted - self.due
        if delay <= timedelta(0):
            return Late(submitted)
        percent, why = self.policy.penalty(delay)
        late = human(delay)
        return Late(submitted, late, percent, f"{late} late; {why}" if why else f"{late} late")


@dataclass(frozen=True)
class Late:
    """When a submission was handed in, how late, and the penalty in percent of its points."""

    submitted: datetime | None = None
    late: str = ""  # how late ("1 d 2 h 5 min", "late (time unknown)"); "" when on time
    percent: float = 0.0
    text: str = ""  # shown in the row's reason and the feedback

    def apply(self, points):
        return points * (1 - self.percent / 100)


def utc_text(when):
    """A time as grades.csv writes it: ISO 8601 in UTC, to the second ('' when unknown)."""
    if when is None:
        return ""
    return when.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def read_times(path):
    """{student: datetime} of a --times CSV (columns student and submitted)."""
    from lrpkit.grading.results.tables import TableError, read_csv

    try:
        fields, rows = read_csv(path)
    except TableError as error:
        raise LateError(f"--times {error}") from None
    if not {"student", "submitted"} <= set(fields):
        raise LateError(
            f"--times {path}: needs the columns student and submitted; it has {', '.join(fields)}"
        )
    times = {}
    for number, row in enumerate(rows, 2):
        student = row["student"].strip()
        if student in times:
            raise LateError(f"--times {path}, line {number}: {student} appears twice")
        times[student] = parse_time(row["submitted"], f"--times {path}, line {number}:")
    return times
