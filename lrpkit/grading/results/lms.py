"""Gradebook imports: canvas.csv and moodle.csv, made from grades.csv's rows (instructors).

**canvas.csv** is Canvas's gradebook import (Grades > Import): the columns ``Student``,
``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then the assignment's column, named
``<assignment> (<assignment id>)`` when the course file gives Canvas's id (Canvas then
matches it to that assignment; by its name alone otherwise, and an unknown name creates a new
assignment). A ``Points Possible`` row follows the header, as in Canvas's own export. Canvas
finds a student by ``ID`` (its user id: filled in for submissions from a Canvas download),
else by ``SIS User ID``, ``SIS Login ID``, else by name. An empty grade changes nothing.

**moodle.csv** is Moodle's offline grading worksheet (Assignment > View all submissions >
Grading action > Upload grading worksheet; the assignment's feedback types must include
"Offline grading worksheet"): ``Identifier`` (``Participant <id>``, the participant id of the
Moodle download's folder names), ``Full name``, ``Email address``, ``Status``, ``Grade``,
``Maximum Grade``, ``Grade can be changed``, ``Last modified (submission)``, ``Last modified
(grade)`` and ``Feedback comments``. Moodle needs ``Identifier``, ``Grade`` and ``Last modified
(grade)``; it skips a row whose grade is empty or above the assignment's maximum grade, and
one whose grade was changed in Moodle after ``Last modified (grade)`` (the time this file was
written) unless told to overwrite those. Only submissions from a Moodle download have a
participant id; the others are left out (and counted).
"""

import html
from datetime import datetime, timezone

from lrpkit.grading.late import utc_text
from lrpkit.grading.results.gradebook import POSSIBLE

CANVAS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE = (
    "Identifier",
    "Full name",
    "Email address",
    "Status",
    "Grade",
    "Maximum Grade",
    "Grade can be changed",
    "Last modified (submission)",
    "Last modified (grade)",
    "Feedback comments",
)
PARTICIPANT = "Participant "  # Moodle's prefix of the participant id (its 'hiddenuser' string)


def canvas_table(rows, maximum, column):
    """(fields, rows) of canvas.csv for grades.csv's student rows; ``column``: the assignment's
    column name (coursefile.Settings.canvas_column)."""
    table = [[f"    {POSSIBLE}", "", "", "", "", maximum]]
    for row in rows:
        table.append(
            [
                row["name"] or row["student"],
                row["student"] if row["origin"] == "canvas" else "",
                row["sis_id"],
                row["login"],
                row["section"],
                row["total"],
            ]
        )
    return (*CANVAS, column), table


def comment(row):
    """Moodle's feedback comment (HTML) for a row: the points and the reason, escaped."""
    text = f"{row['total']}/{row['maximum']} points ({row['status']})"
    if row["reason"]:
        text += f": {row['reason']}"
    if row["late"]:
        text += f" Late: {row['late']}, penalty {row['penalty'] or '0%'}."
    return html.escape(text)


def moodle_table(rows, now=None):
    """(fields, rows, left out) of moodle.csv for grades.csv's student rows: the rows from a
    Moodle download, and how many others had no participant id."""
    written = utc_text(now or datetime.now(timezone.utc))
    table, left_out = [], 0
    for row in rows:
        if row["origin"] != "moodle":
            left_out += 1
            continue
        table.append(
            [
                PARTICIPANT + row["student"],
                row["name"],
                "",
                row["status"],
                row["total"],
                row["maximum"],
                "Yes",
                row["submitted"],
                written,
                comment(row),
            ]
        )
    return MOODLE, table, left_out
