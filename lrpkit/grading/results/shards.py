"""Grading on several machines: ``--shard K/N`` grades one part, ``merge`` joins the parts.

A submission belongs to shard ``1 + sha256(student id) mod N``: every node computes the same
split from the same submissions folder, whatever order it lists them in. Each shard's output
folder gets a ``shard.json`` naming its part and its students; ``merge`` checks that the parts
are one split, complete and without overlap, and writes the grades.csv one run would have
written (rows sorted by student id), configs.jsonl, results.jsonl, code.jsonl, canvas.csv,
moodle.csv, all feedback files and pages, and the class report over all parts (report.html,
similarity.csv); into a folder with an earlier run, it updates that run as grading does.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lrpkit.grading.results import classreport, details
from lrpkit.grading.results.feedback import FEEDBACK, page_name, write_atomic
from lrpkit.grading.results.gradebook import Layout
from lrpkit.grading.results.outputs import (
    CANVAS,
    CONFIGS,
    GRADES,
    OutputError,
    OutputFolder,
    read_configs,
)
from lrpkit.grading.results.tables import read_csv

MARKER = "shard.json"


class ShardError(ValueError):
    """Shards that cannot be merged, or a --shard option that cannot be read."""


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text):
        """'2/3' -> Shard(2, 3)."""
        try:
            index, count = (int(part) for part in str(text).split("/"))
        except ValueError:
            raise ShardError(f"--shard takes K/N, e.g. 2/3; got {text!r}") from None
        if count < 1 or not 1 <= index <= count:
            raise ShardError(
                f"--shard {text}: there is no part {index} of {count} (K/N needs 1 <= K <= N)"
            )
        return cls(index, count)

    def owns(self, student):
        digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def select(self, subs):
        return [sub for sub in subs if self.owns(sub.student)]

    def write_marker(self, out, students):
        marker = {"shard": self.index, "of": self.count, "students": sorted(students)}
        write_atomic(Path(out) / MARKER, json.dumps(marker, indent=1) + "\n")


@dataclass
class Part:
    """One shard's output folder, read."""

    folder: Path
    marker: dict
    layout: Layout
    rows: list  # grades.csv's student rows
    canvas_column: str
    configs: dict
    results: dict  # {student: results.jsonl line}
    code: dict  # {student: code.jsonl line}


def _read_shard(folder):
    folder = Path(folder)
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        layout, rows = Layout.read(*read_csv(folder / GRADES), f"{folder / GRADES}")
        canvas = read_csv(folder / CANVAS)[0]
        configs = read_configs(folder / CONFIGS) if (folder / CONFIGS).exists() else {}
        results = details.read_lines(folder / details.RESULTS)
        code = details.read_lines(folder / details.CODE)
    except (OSError, ValueError) as error:
        raise ShardError(f"{folder} is not a finished shard ({error})") from None
    if sorted(row["student"] for row in rows) != marker.get("students"):
        raise ShardError(f"{folder}: grades.csv does not hold exactly the shard's students")
    if any(row["status"] in ("pending", "") for row in rows):
        raise ShardError(f"{folder}: grading of this shard did not finish")
    canvas = canvas[-1] if canvas else ""
    return Part(folder, marker, layout, rows, canvas, configs, results, code)


def _feedback_file(part, row):
    """The shard's feedback file of a row (only a plain name in the feedback folder)."""
    name = row["feedback"].removeprefix(f"{FEEDBACK}/")
    if not row["feedback"].startswith(f"{FEEDBACK}/") or "/" in name or name.startswith("."):
        raise ShardError(f"{part.folder}: {row['student']}'s feedback is not a feedback file")
    return part.folder / FEEDBACK / name


def merge(folders, out):
    """Join the shard folders' outputs into ``out``; returns the number of rows and what
    happened to the folder (outputs.Summary)."""
    parts = [_read_shard(f) for f in folders]
    counts = {part.marker["of"] for part in parts}
    if len(counts) != 1:
        raise ShardError(f"the shards come from different splits (N = {sorted(counts)})")
    (count,) = counts
    have = sorted(part.marker["shard"] for part in parts)
    if have != list(range(1, count + 1)):
        raise ShardError(f"need shards 1..{count} once each; got {have}")
    if any(part.layout != parts[0].layout for part in parts):
        raise ShardError(
            "the shards graded different exercises or points (--bonus or the course file in "
            "some only?)"
        )
    if len({part.canvas_column for part in parts}) > 1:
        raise ShardError("the shards name the LMS assignment differently (the course file?)")
    rows, configs, results, code, files = {}, {}, {}, {}, {}
    for part in parts:
        for row in part.rows:
            if row["student"] in rows:
                raise ShardError(f"{row['student']} is graded in two shards")
            rows[row["student"]] = row
            if row["feedback"]:
                files[row["feedback"]] = source = _feedback_file(part, row)
                if source.with_suffix(".html").is_file():
                    files[page_name(row["feedback"])] = source.with_suffix(".html")
            if row["student"] in part.results:
                results[row["student"]] = part.results[row["student"]]
            code[row["student"]] = part.code.get(row["student"])
        configs.update(part.configs)
    try:
        folder = OutputFolder(out, parts[0].layout, parts[0].canvas_column)
    except OutputError as error:
        raise ShardError(str(error)) from None
    for name, source in sorted(files.items()):
        write_atomic(Path(out) / name, source.read_text(encoding="utf-8"))
    folder.save_code(code)
    combined = folder.save(rows, configs, results)
    folder.remove_stale_feedback(combined)
    classreport.write_report(out)
    return len(rows), folder.summary
