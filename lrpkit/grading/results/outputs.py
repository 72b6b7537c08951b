"""The output folder, updated in place: grades.csv, configs.jsonl, canvas.csv, moodle.csv, feedback.

Grading into a folder that holds an earlier run updates it rather than replacing it: a
student graded now gets their new row once their result is in (until then, and when the run
is interrupted, their earlier row stays), every other row stays byte for byte, and so do
their lines of configs.jsonl, results.jsonl and code.jsonl (lrpkit.grading.results.details) and
their
feedback files (``feedback/<name>.md`` and the page ``feedback/<name>.html``). Feedback files
that belong to no row are removed. The earlier run must have the same columns and points
possible (the same course settings); otherwise grading refuses to start, so that no folder
ever mixes two scales.

``configs.jsonl`` holds one JSON object per line, ``{"student": id, "config": {...}}``: the
hidden configuration each student was graded on, which ``--configs`` and ``--only`` re-grade
with. canvas.csv and moodle.csv (lrpkit.grading.results.lms) are made from grades.csv's rows each
time it is written. Every file is written atomically.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from lrpkit.grading.intake.files import read_bounded
from lrpkit.grading.results import details, lms
from lrpkit.grading.results.details import CODE, RESULTS, DetailsError
from lrpkit.grading.results.feedback import (
    FEEDBACK,
    feedback,
    feedback_name,
    page_name,
    write_atomic,
)
from lrpkit.grading.results.feedbackpage import feedback_page
from lrpkit.grading.results.gradebook import Layout
from lrpkit.grading.results.tables import TableError, read_csv, write_csv

GRADES = "grades.csv"
CONFIGS = "configs.jsonl"
CANVAS = "canvas.csv"
MOODLE = "moodle.csv"
MAX_CONFIG_BYTES = 100 * 2**20


class OutputError(ValueError):
    """An output folder that cannot be updated (another course's run, unreadable files)."""


def configs_text(configs):
    """configs.jsonl's text for {student: Config JSON text}, sorted by student."""
    lines = [
        json.dumps({"student": student, "config": json.loads(configs[student])}, sort_keys=True)
        for student in sorted(configs)
        if configs[student]
    ]
    return "".join(line + "\n" for line in lines)


def read_configs(path):
    """{student: Config JSON text} of a configs.jsonl, or of a grades.csv of an earlier kit
    version (its ``config`` column). OutputError says why it cannot be read."""
    path = Path(path)
    too_large = f"{path} is larger than any file of configurations"
    data = read_bounded(path, MAX_CONFIG_BYTES, OutputError, too_large)
    text = data.decode("utf-8", "replace")
    if not text.lstrip().startswith("{") and text.strip():
        try:
            fields, rows = read_csv(path)
        except TableError as error:
            raise OutputError(str(error)) from None
        if "config" not in fields:
            raise OutputError(f"{path} has no config column (give configs.jsonl instead)")
        return {row["student"]: row["config"] for row in rows if row.get("config")}
    configs = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            student, config = item["student"], item["config"]
        except (ValueError, KeyError, TypeError):
            raise OutputError(f"{path}, line {number}: not a line of configs.jsonl") from None
        if not isinstance(student, str) or not isinstance(config, dict):
            raise OutputError(f"{path}, line {number}: not a line of configs.jsonl")
        configs[student] = json.dumps(config, sort_keys=True)  # as Config.to_json writes it
    return configs


@dataclass
class Earlier:
    """What an output folder held before this run."""

    rows: dict = field(default_factory=dict)  # {student: grades.csv row}
    configs: dict = field(default_factory=dict)  # {student: Config JSON text}
    results: dict = field(default_factory=dict)  # {student: results.jsonl line}
    code: dict = field(default_factory=dict)  # {student: code.jsonl line}


@dataclass
class Summary:
    """What a run did to its output folder, for the command line to print."""

    new: int = 0  # rows of students the folder did not have
    updated: int = 0  # earlier rows replaced
    kept: int = 0  # earlier rows untouched
    removed: list = field(default_factory=list)  # feedback files of no row, removed
    moodle_left_out: int = 0  # rows without a Moodle participant id

    def lines(self, out):
        lines = []
        if self.updated or self.kept:
            lines.append(
                f"{out} held an earlier run; rows updated: {self.updated}, added: {self.new}, "
                f"kept as they were: {self.kept}"
            )
        if self.removed:
            shown = ", ".join(self.removed[:5]) + (" ..." if len(self.removed) > 5 else "")
            lines.append(f"removed {len(self.removed)} feedback files of no row: {shown}")
        if self.moodle_left_out:
            lines.append(
                f"moodle.csv: {self.moodle_left_out} rows left out (no Moodle participant id: "
                "their submissions did not come from a Moodle download)"
            )
        return lines


class OutputFolder:
    """One output folder: read what an earlier run left, then ``save`` this run's rows."""

    def __init__(self, out, layout, canvas_column):
        self.out = Path(out)
        self.layout = layout
        self.canvas_column = canvas_column
        self.earlier = self.read_earlier()
        self.summary = Summary()

    def read_earlier(self):
        if self.out.exists() and not self.out.is_dir():
            raise OutputError(f"{self.out} is a file, not a folder: give another --out")
        grades = self.out / GRADES
        if not grades.exists():
            return Earlier()
        try:
            fields, rows = read_csv(grades)
            layout, rows = Layout.read(fields, rows, str(grades))
        except TableError as error:
            raise OutputError(
                f"{error}: grade into another --out folder (or move this one away)"
            ) from None
        if layout != self.layout:
            differs = "columns" if layout.fields != self.layout.fields else "points possible"
            raise OutputError(
                f"{grades} holds a run with other {differs} (another course file, --bonus, or "
                "an older version of the kit): grade into another --out folder (or move this "
                "one away), so that no grades.csv mixes two scales"
            )
        configs = read_configs(self.out / CONFIGS) if (self.out / CONFIGS).exists() else {}
        try:
            results = details.read_lines(self.out / RESULTS)
            code = details.read_lines(self.out / CODE)
        except DetailsError as error:
            raise OutputError(f"{error}: grade into another --out folder") from None
        return Earlier({row["student"]: row for row in rows}, configs, results, code)

    def combined(self, rows):
        """{student: row}: the earlier rows, with this run's where they hold a result (a
        student still pending now keeps an earlier row)."""
        combined = dict(self.earlier.rows)
        for student, row in rows.items():
            if row["status"] != "pending" or student not in combined:
                combined[student] = row
        return combined

    def save(self, rows, configs, results=None):
        """Write grades.csv, configs.jsonl, results.jsonl, canvas.csv and moodle.csv for this
        run's {student: row}, {student: Config JSON text} and {student: results.jsonl line},
        with the earlier run's kept."""
        combined = self.combined(rows)
        ordered = [combined[student] for student in sorted(combined)]
        write_csv(self.out / GRADES, self.layout.fields, [self.layout.possible, *ordered])
        everyone = {**self.earlier.configs, **{s: c for s, c in configs.items() if c}}
        write_atomic(self.out / CONFIGS, configs_text(everyone))
        now = {s for s, row in rows.items() if combined[s] is row}
        results = results or {}
        lines = {**self.earlier.results, **{s: results[s] for s in now if s in results}}
        lines = {s: line for s, line in lines.items() if s in combined}
        write_atomic(self.out / RESULTS, details.jsonl_text(lines))
        write_csv(
            self.out / CANVAS, *lms.canvas_table(ordered, self.layout.maximum, self.canvas_column)
        )
        fields, table, left_out = lms.moodle_table(ordered)
        write_csv(self.out / MOODLE, fields, table)
        self.summary.new = len(now - set(self.earlier.rows))
        self.summary.updated = len(now & set(self.earlier.rows))
        self.summary.kept = len(set(self.earlier.rows) - now)
        self.summary.moodle_left_out = left_out
        return combined

    def save_code(self, code):
        """Write code.jsonl: this run's {student: code.jsonl line, or None for a submission
        without code}, the earlier lines of everyone else kept."""
        lines = {s: line for s, line in self.earlier.code.items() if s not in code}
        lines.update({s: line for s, line in code.items() if line is not None})
        write_atomic(self.out / CODE, details.jsonl_text(lines))

    def remove_stale_feedback(self, combined):
        """Remove the feedback files and pages that no row names (students no longer in the
        folder, or names of an older kit version)."""
        wanted = {row["feedback"] for row in combined.values() if row["feedback"]}
        wanted |= {page_name(name) for name in wanted}
        folder = self.out / FEEDBACK
        if not folder.is_dir():
            return []
        removed = []
        for path in sorted(folder.iterdir()):
            name = f"{FEEDBACK}/{path.name}"
            if path.suffix in (".md", ".html") and name not in wanted and not path.is_dir():
                path.unlink()
                removed.append(path.name)
        self.summary.removed = removed
        return removed


def write_feedback(out, result, course):
    """Write one student's feedback file and page; returns the file's path relative to
    ``out`` (the page has the same name, ending in .html: report.page_name)."""
    relative = f"{FEEDBACK}/{feedback_name(result.student)}"
    write_atomic(Path(out) / relative, feedback(result, course))
    write_atomic(Path(out) / page_name(relative), feedback_page(result, course))
    return relative
