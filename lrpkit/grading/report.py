"""Feedback files, and writing any output atomically (instructors; students read the feedback).

``feedback/<name>.md`` gives one student every check's verdict and hint, the errors in their
own cells and any late penalty. Whatever comes from the student's code or files (exception
texts, printed output, file names, ids) is shown as a markdown code span (``literal``), so it
is never read as markup or HTML. Each student's file name is their own (``feedback_name``);
grades.csv's ``feedback`` column says whose is which.
"""

import hashlib
import os
import re
import tempfile
from pathlib import Path

FEEDBACK = "feedback"  # the folder of feedback files in an output folder
#: an id that is its own file name on every file system (lowercase: case-insensitive ones)
PLAIN = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,99}")


def safe_name(student):
    """A file name for a student id (ids come from file names, but never trust them)."""
    name = re.sub(r"[^A-Za-z0-9._@+-]", "_", student).lstrip(".")
    return name or "unnamed"


def feedback_name(student):
    """The feedback file's name of a student: ``<id>.md`` where the id is a plain lowercase
    file name, else its safe form and a hash of the id (``Ann~3f2a9c01b7d4.md``): two ids never
    share a file, on case-insensitive file systems neither, whichever students a run has."""
    if PLAIN.fullmatch(student):
        return f"{student}.md"
    digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{safe_name(student)[:80]}~{digest}.md"


def literal(text):
    """Text from a student's code or files as one markdown code span: shown as it is, never
    as markup, HTML or a new line of the feedback."""
    text = " ".join(str(text).split())
    if not text:
        return "``"
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def number(value):
    """Points as the outputs show them: rounded to 2 decimals, without trailing zeros."""
    text = f"{round(float(value), 2) + 0.0:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def feedback(result, course):
    """The feedback file's text (markdown) for one student's result."""
    maxima = {}
    for check in course.checks:
        maxima[check.exercise] = maxima.get(check.exercise, 0.0) + check.points
    points = result.points or {}
    maximum = sum(p for e, p in maxima.items() if e not in course.bonus)
    parts = [
        f"{course.title(e).split(':')[0]}{' (bonus)' * (e in course.bonus)}: "
        f"{number(points.get(e, 0))}/{number(maxima[e])}"
        for e in course.exercises
    ]
    raw = result.raw or 0.0
    lines = [f"# Feedback for {literal(result.student)}", ""]
    lines += [" | ".join([*parts, f"Total: {number(raw)}/{number(maximum)}"]), ""]
    if result.late.late:
        lines += [f"Late: {result.late.text}", ""]
        if result.late.percent:
            after = number(result.late.apply(raw))
            lines += [f"Total after the late penalty: {after}/{number(maximum)}", ""]
    status = f"Status: {result.status}"
    if result.status != "graded":
        status += f" ({literal(result.reason)})"
    lines.append(status)
    for exercise in course.exercises:
        mine = [v for v in result.verdicts if v.check.exercise == exercise]
        if mine:
            lines += ["", f"## {course.title(exercise)}", ""]
            for v in mine:
                verdict = "PASS" if v.passed else "FAIL"
                share = number(v.check.points)
                lines.append(f"- {v.check.name} ({share} P): {verdict} -- {literal(v.text)}")
    if result.notes:
        lines += ["", "## Errors in your own code cells", ""]
        lines += [f"- {literal(note)}" for note in result.notes[:20]]
    return "\n".join(lines) + "\n"


def write_atomic(path, text):
    """Replace a file's whole content at once: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_feedback(out, result, course):
    """Write one student's feedback file; returns its path relative to ``out``."""
    relative = f"{FEEDBACK}/{feedback_name(result.student)}"
    write_atomic(Path(out) / relative, feedback(result, course))
    return relative
