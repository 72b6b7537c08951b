"""results.jsonl and code.jsonl: what the class report reads beside grades.csv (instructors).

Both hold one JSON object per line and student, sorted by student, and are updated like
configs.jsonl (lrpkit.grading.results.outputs: the lines of students not graded now stay byte for
byte):

- ``results.jsonl``: ``{"student", "status", "seconds", "limits", "checks", "notes"}``: the
  seconds the run took, the sandbox limits it ran into (texts), per check key
  ``{"passed", "what", "hint"}`` (the verdict's diagnosis and hint, as the feedback shows
  them) and the errors in the student's own cells ``{"cell", "excerpt", "text"}``;
- ``code.jsonl``: ``{"student", "cells": [[label, source], ...]}``: the code cells the grader
  ran (the student's check cells left out), which the similarity check compares. It is
  written once per run, before any submission runs, so a report can always be made from
  the output folder alone (``python -m lrpkit.grading report DIR``).

Whatever these files hold came from students: the report escapes it.
"""

import json
import re
from pathlib import Path

from lrpkit.grading.intake.files import read_bounded
from lrpkit.grading.results.feedback import diagnosis
from lrpkit.grading.sandbox.limits import LimitHit, Limits

RESULTS = "results.jsonl"
CODE = "code.jsonl"
MAX_BYTES = 500 * 2**20  # code of thousands of submissions; anything larger is not ours
#: a sandbox limit as LimitHit.text words it ("memory limit 4 GiB exceeded")
_KINDS = sorted({LimitHit(key, 1).text.split(" limit ")[0] for key in Limits.KEYS}, key=len)
LIMIT = re.compile(
    rf"\b((?:{'|'.join(map(re.escape, reversed(_KINDS)))}) limit [0-9.]+(?: [A-Za-z]+)? exceeded)"
)
CELL_TIME = re.compile(r"took longer than ([0-9.]+ s) and was stopped")


class DetailsError(ValueError):
    """A results.jsonl or code.jsonl that is not one the grader wrote."""


def limits_hit(result):
    """The limits a run ran into, as texts: the per-submission time limit, the sandbox's
    (memory, processes, output ...) and the time limit per cell."""
    found = []
    if result.status == "timeout":
        found.append(result.reason)
    texts = [result.reason, *(note.text for note in result.notes)]
    texts += [v.text for v in result.verdicts]
    for text in texts:
        found += LIMIT.findall(text)
        found += [f"cell time limit {seconds} exceeded" for seconds in CELL_TIME.findall(text)]
    return list(dict.fromkeys(found))


def result_line(result):
    """results.jsonl's line (without its newline) of one scoring.Result."""
    checks = {}
    for v in result.verdicts:
        what, hint = diagnosis(v.text)
        checks[v.check.key] = {"passed": v.passed, "what": what, "hint": hint}
    notes = [{"cell": n.cell, "excerpt": n.excerpt, "text": n.text} for n in result.notes]
    record = {
        "student": result.student,
        "status": result.status,
        "seconds": round(result.seconds, 3),
        "limits": limits_hit(result),
        "checks": checks,
        "notes": notes,
    }
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def code_line(student, cells):
    """code.jsonl's line of one student's cells ([CodeCell])."""
    record = {"student": student, "cells": [[cell.label, cell.source] for cell in cells]}
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def jsonl_text(lines):
    """The file's text for {student: line}, sorted by student."""
    return "".join(lines[student] + "\n" for student in sorted(lines))


def read_lines(path):
    """{student: line} of a results.jsonl or code.jsonl ({} when there is none);
    DetailsError says why it cannot be read."""
    path = Path(path)
    if not path.exists():
        return {}
    too_large = f"{path} is larger than any file the grader writes"
    data = read_bounded(path, MAX_BYTES, DetailsError, too_large)
    lines = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            student = json.loads(line)["student"]
        except (ValueError, KeyError, TypeError):
            raise DetailsError(f"{path}, line {number}: not a line the grader wrote") from None
        if not isinstance(student, str):
            raise DetailsError(f"{path}, line {number}: not a line the grader wrote")
        lines[student] = line
    return lines


def read_results(path):
    """{student: results.jsonl record (dict)}."""
    return {student: json.loads(line) for student, line in read_lines(path).items()}


def read_code(path):
    """{student: [(label, source)]} of a code.jsonl; cells that are not text are left out."""
    found = {}
    for student, line in read_lines(path).items():
        cells = json.loads(line).get("cells")
        if isinstance(cells, list):
            found[student] = [
                (str(c[0]), c[1])
                for c in cells
                if isinstance(c, list) and len(c) == 2 and isinstance(c[1], str)
            ]
    return found
