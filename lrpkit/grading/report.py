"""Writing results: grades.csv and one feedback file per student, each written atomically.

``grades.csv`` has one row per submission (student, ex3, ex4, total, status, reason, the
sandbox it ran in and the hidden configuration it was graded on, as JSON);
``feedback/<student id>.md`` gives every check's verdict and hint and the errors in the
student's own cells.
"""

import csv
import io
import os
import re
import tempfile
from pathlib import Path

from lrpkit.grading.course import BONUS, EXERCISES, POINTS
from lrpkit.grading.scoring import exercises_of, not_handed_in

#: after the exercises' points: the total and what a row says about its run
TAIL = ("total", "status", "reason", "sandbox", "config")
COLUMNS = ("student", *EXERCISES, *TAIL)  # with --bonus, ex5 follows ex4


def columns(results):
    return ("student", *exercises_of(results), *TAIL)


def feedback(result):
    """The feedback file's text (markdown) for one student."""
    row = result.row()
    exercises = exercises_of([result])
    graded = [e for e in exercises if e not in BONUS]
    unsent = not_handed_in(result.verdicts)
    parts = [f"Exercise {e[2:]}: {row[e]}/{POINTS}" for e in graded]
    parts += [f"Exercise {e[2:]} (bonus): {row[e]}/{POINTS}" for e in BONUS if e in exercises]
    parts = [p for p in parts if not any(p.startswith(f"Exercise {e[2:]} ") for e in unsent)]
    parts.append(f"Total: {row['total']}/{POINTS * len(graded)}")  # a bonus adds, never lowers
    parts += ["bonus: not handed in"] if unsent else []
    lines = [
        f"# Feedback for {result.student}",
        "",
        " | ".join(parts),
        "",
        f"Status: {result.status}" + (f" ({result.reason})" if result.status != "graded" else ""),
    ]
    for exercise in (e for e in exercises if e not in unsent):
        mine = [v for v in result.verdicts if v.check.exercise == exercise]
        if mine:
            lines += ["", f"## Exercise {exercise[2:]}", ""]
            for v in mine:
                share = f"{round(v.check.points, 2):g}"
                lines.append(
                    f"- {v.check.name} ({share} P): {'PASS' if v.passed else 'FAIL'} -- {v.text}"
                )
    if result.notes:
        lines += ["", "## Errors in your own code cells", ""]
        lines += [f"- {note}" for note in result.notes[:20]]
    return "\n".join(lines) + "\n"


def safe_name(student):
    """A file name for a student id (ids come from file names, but never trust them)."""
    name = re.sub(r"[^A-Za-z0-9._@+-]", "_", student).lstrip(".")
    return name or "unnamed"


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


def csv_text(rows, fields):
    """grades.csv's text for rows (dicts) already in order; a missing exercise counts 0."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", restval="0")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def grades_csv(results):
    """grades.csv's text: one row per result, sorted by student id."""
    results = sorted(results, key=lambda r: r.student)
    return csv_text([result.row() for result in results], columns(results))


def write_grades(out, results):
    write_atomic(Path(out) / "grades.csv", grades_csv(results))


def write_feedback(out, results):
    for result in results:
        write_atomic(Path(out) / "feedback" / f"{safe_name(result.student)}.md", feedback(result))
