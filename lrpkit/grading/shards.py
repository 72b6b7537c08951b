"""Grading on several machines: ``--shard K/N`` grades one part, ``merge`` joins the parts.

A submission belongs to shard ``1 + sha256(student id) mod N``: every node computes the same
split from the same submissions folder, whatever order it lists them in. Each shard's output
folder gets a ``shard.json`` naming its part and its students; ``merge`` checks that the parts
are one split, complete and without overlap, and writes the grades.csv one run would have
written (rows sorted by student id) and all feedback files.
"""

import csv
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from lrpkit.grading.report import COLUMNS, TAIL, csv_text, write_atomic

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
        if not 1 <= index <= count:
            raise ShardError(f"--shard {text}: K must be between 1 and N")
        return cls(index, count)

    def owns(self, student):
        digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def select(self, subs):
        return [sub for sub in subs if self.owns(sub.student)]

    def write_marker(self, out, students):
        marker = {"shard": self.index, "of": self.count, "students": sorted(students)}
        write_atomic(Path(out) / MARKER, json.dumps(marker, indent=1) + "\n")


def _read_shard(folder):
    folder = Path(folder)
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        rows = list(csv.DictReader((folder / "grades.csv").open(encoding="utf-8", newline="")))
    except (OSError, ValueError) as error:
        raise ShardError(f"{folder} is not a finished shard ({error})") from None
    if rows and (tuple(rows[0])[:1] != COLUMNS[:1] or tuple(rows[0])[-len(TAIL) :] != TAIL):
        raise ShardError(f"{folder}/grades.csv has other columns than this grader writes")
    if sorted(row["student"] for row in rows) != marker["students"]:
        raise ShardError(f"{folder}: grades.csv does not hold exactly the shard's students")
    if any(row["status"] in ("pending", "") for row in rows):
        raise ShardError(f"{folder}: grading of this shard did not finish")
    return marker, rows


def merge(folders, out):
    """Join the shard folders' grades and feedback into ``out``; returns the number of rows."""
    parts = [(Path(f), *_read_shard(f)) for f in folders]
    counts = {marker["of"] for _, marker, _ in parts}
    if len(counts) != 1:
        raise ShardError(f"the shards come from different splits (N = {sorted(counts)})")
    (count,) = counts
    have = sorted(marker["shard"] for _, marker, _ in parts)
    if have != list(range(1, count + 1)):
        raise ShardError(f"need shards 1..{count} once each; got {have}")
    rows, seen = [], set()
    for _folder, _, part in parts:
        for row in part:
            if row["student"] in seen:
                raise ShardError(f"{row['student']} is graded in two shards")
            seen.add(row["student"])
            rows.append(row)
    headers = {tuple(part[0]) for _, _, part in parts if part}
    if len(headers) > 1:
        raise ShardError("the shards graded different exercises (--bonus in some only?)")
    out = Path(out)
    fields = next(iter(headers), COLUMNS)
    text = csv_text(sorted(rows, key=lambda row: row["student"]), fields)
    write_atomic(out / "grades.csv", text)
    for folder, _, _ in parts:
        for path in sorted((folder / "feedback").glob("*.md")):
            (out / "feedback").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / "feedback" / path.name)
    return len(rows)
