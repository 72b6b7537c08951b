"""The course file (instructors): points per check, the bonus, due date, late policy, the LMS.

``course.toml`` beside the submissions folder (in its parent folder), or ``--course FILE``;
without one, today's defaults: 25 points per exercise shared equally by its checks, no bonus,
no due date. Every key is optional::

    bonus = false                      # also grade Exercise 5 (as --bonus does)

    [lms]
    assignment = "Sheet 12: Explaining VGG-16"   # the gradebook column's name
    canvas_id = 4711                   # Canvas's assignment id: the column "<name> (4711)"

    [late]
    due = 2025-06-30T23:59:00+02:00    # a TOML date-time (no offset: the machine's local time)
    policy = "10%/day,max=3d"          # as --late takes it (lrpkit.grading.late)

    [exercises.ex3]
    title = "Gradient x Input"         # shown in the feedback
    points = 25                        # the exercise's points (default 25)

    [exercises.ex4.checks]             # points of single checks, by check function name;
    check_conv = 10                    # the others share what is left of the exercise's
    check_lrpmodel = 5
    check_relevance = 10

A check is named by its exercise and the check function its cell calls (``ex4.check_conv``),
the column grades.csv gives it. TOML is read by ``tomllib`` (Python 3.11+) or ``tomli``
(3.10, the same parser as a package; requirements.txt installs it there only).
"""

import sys
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path

from lrpkit.grading.intake.files import read_bounded
from lrpkit.grading.late import LateError, Policy, Rule, aware, parse_time

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

NAME = "course.toml"
MAX_BYTES = 1 * 2**20
DEFAULT_ASSIGNMENT = "Exercise sheet 12"
KEYS = {"bonus", "lms", "late", "exercises"}
LMS_KEYS = {"assignment", "canvas_id"}
LATE_KEYS = {"due", "policy"}
EXERCISE_KEYS = {"title", "points", "checks"}


class CourseFileError(ValueError):
    """A course file that cannot be read; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Exercise:
    """One exercise's settings: its title, points (None: the default) and {check: points}."""

    title: str = ""
    points: float | None = None
    checks: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """What the course file says (or the defaults, without one)."""

    path: Path | None = None
    bonus: bool = False
    exercises: dict = field(default_factory=dict)  # "ex3" -> Exercise
    assignment: str = DEFAULT_ASSIGNMENT
    canvas_id: str = ""
    due: datetime | None = None
    policy: Policy = Policy()

    @property
    def canvas_column(self):
        """The gradebook column Canvas matches to the assignment: "Name (id)" or "Name"."""
        return f"{self.assignment} ({self.canvas_id})" if self.canvas_id else self.assignment

    @property
    def rule(self):
        """The late.Rule, or None without a due date."""
        return Rule(self.due, self.policy) if self.due is not None else None

    def overridden(self, bonus=None, due=None, policy=None):
        """These settings with the command line's options (None: keep the file's)."""
        changes = {"bonus": self.bonus or bool(bonus)}
        if due is not None:
            changes["due"] = due
        if policy is not None:
            changes["policy"] = policy
        settings = replace(self, **changes)
        if settings.policy.percent and settings.due is None:
            raise CourseFileError("a late policy needs a due date: give --due (or [late] due)")
        return settings


def find(submissions):
    """The course file beside a submissions folder (course.toml in its parent), or None."""
    path = Path(submissions).resolve().parent / NAME
    return path if path.is_file() else None


def _fail(path, message):
    raise CourseFileError(f"{path}: {message}")


def _table(path, value, key, allowed):
    if not isinstance(value, dict):
        _fail(path, f"{key} must be a table ([{key}])")
    unknown = sorted(set(value) - allowed)
    if unknown:
        _fail(path, f"[{key}] has no key {unknown[0]!r} (keys: {', '.join(sorted(allowed))})")
    return value


def _points(path, value, key):
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        _fail(path, f"{key} must be a number of points, 0 or more (got {value!r})")
    return float(value)


def _due(path, value):
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        _fail(path, f"[late] due = {value}: give the time too, e.g. {value}T23:59:00+01:00")
    if isinstance(value, time):
        _fail(path, "[late] due needs a date and a time")
    try:
        return parse_time(value, "[late] due")
    except LateError as error:
        _fail(path, str(error))


def _exercise(path, name, value):
    value = _table(path, value, f"exercises.{name}", EXERCISE_KEYS)
    checks = value.get("checks", {})
    checks = _table(path, checks, f"exercises.{name}.checks", set(checks))
    return Exercise(
        title=str(value.get("title", "")),
        points=_points(path, value["points"], f"exercises.{name}.points")
        if "points" in value
        else None,
        checks={
            str(check): _points(path, points, f"exercises.{name}.checks.{check}")
            for check, points in checks.items()
        },
    )


def parse(text, path="course.toml", exercises=("ex3", "ex4", "ex5")):
    """Settings from a course file's text; ``exercises``: the names it may configure."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        _fail(path, f"not valid TOML ({error})")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        _fail(path, f"no setting {unknown[0]!r} (settings: {', '.join(sorted(KEYS))})")
    bonus = data.get("bonus", False)
    if not isinstance(bonus, bool):
        _fail(path, f"bonus must be true or false (got {bonus!r})")
    lms = _table(path, data.get("lms", {}), "lms", LMS_KEYS)
    late = _table(path, data.get("late", {}), "late", LATE_KEYS)
    known = _table(path, data.get("exercises", {}), "exercises", set(exercises))
    try:
        policy = Policy.parse(late["policy"]) if "policy" in late else Policy()
    except LateError as error:
        _fail(path, f"[late] policy: {error}")
    assignment = str(lms.get("assignment", DEFAULT_ASSIGNMENT)).strip()
    if not assignment:
        _fail(path, "[lms] assignment must not be empty")
    canvas_id = lms.get("canvas_id", "")
    if canvas_id != "" and (isinstance(canvas_id, bool) or not str(canvas_id).isdigit()):
        _fail(path, f"[lms] canvas_id must be Canvas's numeric assignment id (got {canvas_id!r})")
    settings = Settings(
        path=Path(path),
        bonus=bonus,
        exercises={name: _exercise(path, name, value) for name, value in known.items()},
        assignment=assignment,
        canvas_id=str(canvas_id),
        due=_due(path, late["due"]) if "due" in late else None,
        policy=policy,
    )
    if settings.policy.percent and settings.due is None:
        _fail(path, "[late] policy needs [late] due")
    return settings


def read(path, exercises=("ex3", "ex4", "ex5")):
    """Settings from a course file; CourseFileError names what is wrong."""
    path = Path(path)
    too_large = f"{path}: larger than 1 MiB: not a course file"
    data = read_bounded(path, MAX_BYTES, CourseFileError, too_large)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _fail(path, "not UTF-8 text")
    return parse(text, path, exercises)
