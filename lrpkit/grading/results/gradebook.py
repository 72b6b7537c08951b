"""grades.csv: its columns, its rows, and reading it back (instructors; LMS imports derive from it).

The columns, in this order; a course with the bonus only appends columns, so every column
keeps its place and meaning:

- ``student``: the key (the LMS's user id where known, else the file or folder name);
  ``name``, ``sis_id``, ``login``, ``section``: from the LMS's download or the roster;
  ``origin``: where the submission came from (canvas, moodle, zip, nbgrader, folder, pattern);
- ``total``: the points, after any late penalty; ``maximum``: the points of full marks (a
  bonus exercise's points are extra credit, not in it); ``status``: graded, invalid, timeout,
  limit, tampered, error or pending; ``reason``: what went wrong, at a glance;
- ``before_penalty`` (the points before it), ``penalty`` (``20%``), ``submitted`` (ISO 8601,
  UTC), ``late`` (how late: ``1 d 2 h 5 min``);
- ``sandbox`` (how it ran), ``feedback`` (its feedback file, relative to the folder);
- per exercise, in the sheet's order: its points (``ex3``), then one column per check with
  the points it earned (``ex3.check_gradient_x_input``), named by exercise and check function.

The first row after the header is the points-possible row (``student`` is ``Points
Possible``): each exercise's and check's points, the maximum in ``total`` and ``maximum``.
Points are rounded to 2 decimals; a row that was not graded (``pending``, or the grader's own
failure) has empty points, never zeros. The hidden configurations are in ``configs.jsonl``
beside it (lrpkit.grading.results.outputs). Every cell goes through lrpkit.grading.results.tables.
"""

from dataclasses import dataclass

from lrpkit.grading.late import utc_text
from lrpkit.grading.results.feedback import number
from lrpkit.grading.results.tables import TableError

POSSIBLE = "Points Possible"
PEOPLE = ("student", "name", "sis_id", "login", "section", "origin")
FIXED = (
    *PEOPLE,
    "total",
    "maximum",
    "status",
    "reason",
    "before_penalty",
    "penalty",
    "submitted",
    "late",
    "sandbox",
    "feedback",
)
STATUSES = ("graded", "invalid", "timeout", "limit", "tampered", "error", "pending")


@dataclass(frozen=True)
class Layout:
    """grades.csv's columns and its points-possible row."""

    fields: tuple
    possible: dict

    @classmethod
    def of(cls, course):
        """The layout of a course (lrpkit.grading.course.Course)."""
        fields, possible = list(FIXED), {"student": POSSIBLE}
        maxima = {}
        for exercise in course.exercises:
            mine = [check for check in course.checks if check.exercise == exercise]
            maxima[exercise] = sum(check.points for check in mine)
            fields += [exercise, *(check.key for check in mine)]
            possible[exercise] = number(maxima[exercise])
            possible.update({check.key: number(check.points) for check in mine})
        maximum = number(sum(p for e, p in maxima.items() if e not in course.bonus))
        possible.update(total=maximum, maximum=maximum)
        return cls(tuple(fields), {field: possible.get(field, "") for field in fields})

    @classmethod
    def read(cls, fields, rows, name="grades.csv"):
        """(Layout, the student rows) of a grades.csv's header and rows (tables.read_csv)."""
        if tuple(fields[: len(FIXED)]) != FIXED:
            raise TableError(f"{name} does not have the columns this grader writes")
        if not rows or rows[0]["student"] != POSSIBLE:
            raise TableError(f"{name} has no {POSSIBLE} row after its header")
        return cls(tuple(fields), rows[0]), rows[1:]

    @property
    def exercises(self):
        return tuple(f for f in self.fields[len(FIXED) :] if "." not in f)

    @property
    def checks(self):
        return tuple(f for f in self.fields[len(FIXED) :] if "." in f)

    @property
    def maximum(self):
        return self.possible["maximum"]

    def row(self, result, sub, feedback=""):
        """The row of one result (scoring.Result) of a submission (submissions.Submission)."""
        graded = result.points is not None
        points = result.points or {}
        row = {
            "student": result.student,
            "name": sub.name,
            "sis_id": sub.sis_id,
            "login": sub.login,
            "section": sub.section,
            "origin": sub.origin,
            "total": number(result.total) if graded else "",
            "maximum": self.maximum,
            "status": result.status,
            "reason": result.reason,
            "before_penalty": number(result.raw) if graded else "",
            "penalty": f"{result.late.percent:g}%" if graded and result.late.percent else "",
            "submitted": utc_text(result.late.submitted or sub.submitted),
            "late": result.late.late,
            "sandbox": result.sandbox,
            "feedback": feedback,
        }
        row.update({e: number(points.get(e, 0.0)) if graded else "" for e in self.exercises})
        row.update({k: number(result.checks.get(k, 0.0)) if graded else "" for k in self.checks})
        return row


def graded(row):
    """Whether a grades.csv row holds points (not pending, not the grader's own failure)."""
    return row.get("total", "") != ""
