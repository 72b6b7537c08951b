"""The class report (instructors): ``report.html`` and ``similarity.csv`` from an output folder.

Every grading run (and ``merge``) ends by writing them; ``python -m lrpkit.grading report
DIR`` writes them again from the folder alone: grades.csv (the points and statuses),
results.jsonl (per check the diagnosis and hint, seconds, limits hit) and code.jsonl (the
code the similarity check compares; lrpkit.grading.results.details). report.html is one
self-contained page (pages.py; plots as inline SVG, svgplots.py) with

- totals: a histogram, mean and median of the points, the count per status;
- per check: its pass rate and its most frequent diagnoses, each with its count and three
  example students (numbers in diagnoses are masked, so one mistake is one diagnosis);
- time: seconds per submission, the slowest ten, the limits hit;
- similarity: the pairs above ``similarity.REPORT`` with their shared lines side by side
  (similarity.csv has every pair above ``similarity.LISTED``);
- every student's row, linked to their feedback page.

Every number comes from those files, so the report agrees with grades.csv; every text from
a submission is escaped.
"""

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lrpkit.grading.intake.submissions import CodeCell
from lrpkit.grading.results import details, similarity
from lrpkit.grading.results.details import CODE, RESULTS
from lrpkit.grading.results.feedback import FEEDBACK, number, page_name, write_atomic
from lrpkit.grading.results.gradebook import STATUSES, Layout, graded
from lrpkit.grading.results.outputs import GRADES
from lrpkit.grading.results.pages import esc, href, page, table
from lrpkit.grading.results.tables import TableError, read_csv
from lrpkit.layout import EXERCISES, ROOT

REPORT = "report.html"
SIMILARITY = "similarity.csv"
DIAGNOSES = 5  # the most frequent diagnoses shown per check
EXAMPLES = 3  # example students per diagnosis
SLOWEST = 10
#: a number in a diagnosis that differs from student to student: with a decimal point or an
#: exponent, or of two digits or more (not a digit inside a name such as VGG-16 or float64,
#: and not a single digit such as the 0 of max(0, w))
NUMBER = re.compile(
    r"(?<![\w.\-])[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE])|\d{2,})(?:[eE][-+]?\d+)?(?![\w.])"
)


class ReportError(ValueError):
    """An output folder a report cannot be made from (no grades.csv, unreadable files)."""


@dataclass(frozen=True)
class ClassData:
    """What a report is made from: grades.csv's layout and student rows, results.jsonl's
    records and code.jsonl's cells, of the students grades.csv has."""

    layout: Layout
    rows: list  # [grades.csv row], sorted by student
    results: dict  # {student: results.jsonl record}
    code: dict  # {student: [(label, source)]}
    out: Path


def read_folder(out):
    """The ClassData of an output folder; ReportError says why it cannot be read."""
    out = Path(out)
    try:
        layout, rows = Layout.read(*read_csv(out / GRADES), str(out / GRADES))
        results = details.read_results(out / RESULTS)
        code = details.read_code(out / CODE)
    except (TableError, details.DetailsError) as error:
        raise ReportError(f"{error} (is {out} a grading run's output folder?)") from None
    students = {row["student"] for row in rows}
    return ClassData(
        layout,
        sorted(rows, key=lambda row: row["student"]),
        {s: r for s, r in results.items() if s in students},
        {s: c for s, c in code.items() if s in students},
        out,
    )


def template_folder(root=ROOT):
    """The exercise notebooks students started from: the course's, else the kit's."""
    folder = Path(root) / "notebooks" / "exercises"
    return folder if any(folder.glob("*.ipynb")) else EXERCISES


def similar_pairs(data, root=ROOT):
    """similarity.compare over the students' stored code (the given lines left out)."""
    try:
        template = similarity.load_template(template_folder(root))
    except FileNotFoundError:
        template = frozenset()
    submitted = {
        student: [CodeCell(label, source) for label, source in cells]
        for student, cells in data.code.items()
    }
    return similarity.compare(submitted, template)


def write_report(out, root=ROOT):
    """Write report.html and similarity.csv into an output folder; returns report.html's path."""
    data = read_folder(out)
    pairs = similar_pairs(data, root)
    similarity.write_similarity_csv(data.out / SIMILARITY, pairs)
    path = data.out / REPORT
    write_atomic(path, report_html(data, pairs))
    return path


# -- the sections ------------------------------------------------------------------------


def feedback_link(data, row, text=None):
    """A student's id (or ``text``) linked to their feedback page (the markdown file where the
    folder has no page), or plain when grades.csv names no file of the feedback folder."""
    label = esc(row["student"] if text is None else text)
    name = row.get("feedback", "")
    plain = name.startswith(f"{FEEDBACK}/") and "/" not in name[len(FEEDBACK) + 1 :]
    if not plain or name[len(FEEDBACK) + 1 :].startswith(".") or not name.endswith(".md"):
        return label
    target = page_name(name) if (data.out / page_name(name)).is_file() else name
    return f'<a href="{href(target)}">{label}</a>'


def _with_points(data):
    return [row for row in data.rows if graded(row)]


def _stats_table(pairs, ident):
    rows = "".join(
        f'<tr><td>{esc(label)}</td><td class="num" id="{esc(key)}">{esc(value)}</td></tr>'
        for key, label, value in pairs
    )
    return f'<table class="stats" id="{esc(ident)}"><tbody>{rows}</tbody></table>'


def totals(data):
    scored = _with_points(data)
    values = [float(row["total"]) for row in scored]
    maximum = float(data.layout.maximum or 0)
    stats = [
        ("submissions", "Submissions", str(len(data.rows))),
        ("with-points", "With points", str(len(scored))),
        ("mean", "Mean", number(statistics.fmean(values)) if values else "-"),
        ("median", "Median", number(statistics.median(values)) if values else "-"),
        ("possible", "Points possible", number(maximum)),
    ]
    counts = Counter(row["status"] for row in data.rows)
    order = [s for s in STATUSES if counts[s]] + sorted(set(counts) - set(STATUSES))
    statuses = table(
        ["Status", "Count"], [[esc(s), str(counts[s])] for s in order], "statuses", numeric=(1,)
    )
    plot = ""
    if values:
        top = max(maximum, *values)
        plot = svgplots().histogram(values, "totals", "points", bins=20, low=0.0, high=top)
    return (
        '<section id="totals"><h2>Totals</h2><div class="figures">'
        f"<div>{_stats_table(stats, 'summary')}{statuses}</div><div>{plot}</div></div></section>"
    )


def mask(text):
    """A diagnosis with its numbers masked: the same mistake with other numbers is one."""
    return NUMBER.sub("…", text)


def _diagnoses(data, key):
    """[(count, what, hint, [students])] of a check's failed verdicts, most frequent first."""
    found = {}
    for student, record in data.results.items():
        verdict = (record.get("checks") or {}).get(key)
        if not isinstance(verdict, dict) or verdict.get("passed"):
            continue
        what, hint = mask(str(verdict.get("what", ""))), str(verdict.get("hint", ""))
        found.setdefault((what, hint), []).append(student)
    ranked = sorted(found.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(len(students), what, hint, sorted(students)) for (what, hint), students in ranked]


def _passed(data, key, row):
    possible = float(data.layout.possible.get(key) or 0)
    if possible > 0:
        return float(row[key]) >= possible - 1e-9
    verdict = (data.results.get(row["student"], {}).get("checks") or {}).get(key) or {}
    return bool(verdict.get("passed"))


def checks(data):
    scored = _with_points(data)
    rows, shares, parts = [], [], []
    by_student = {row["student"]: row for row in data.rows}
    for key in data.layout.checks:
        passed = sum(_passed(data, key, row) for row in scored)
        share = passed / len(scored) if scored else 0.0
        shares.append(share)
        rate = f"{share:.0%}" if scored else "-"
        cells = [f"<code>{esc(key)}</code>", esc(data.layout.possible.get(key, ""))]
        rows.append([*cells, str(passed), str(len(scored)), rate])
        found = _diagnoses(data, key)
        if not found:
            continue
        items = []
        for count, what, hint, students in found[:DIAGNOSES]:
            examples = ", ".join(feedback_link(data, by_student[s]) for s in students[:EXAMPLES])
            more = f" and {count - EXAMPLES} more" if count > EXAMPLES else ""
            hint_html = f' <span class="hint">Hint: {esc(hint)}</span>' if hint else ""
            items.append(
                f'<li class="diagnosis"><strong class="count">{count}</strong> &times; '
                f'<span class="what">{esc(what)}</span>.{hint_html}'
                f'<br><span class="examples muted">e.g. {examples}{more}</span></li>'
            )
        other = len(found) - DIAGNOSES
        tail = f'<p class="muted">... and {other} other diagnoses.</p>' if other > 0 else ""
        parts.append(
            f'<div class="check-diagnoses" data-check="{esc(key)}"><h3><code>{esc(key)}</code>: '
            f"what went wrong</h3>"
            f'<ol class="diagnoses">{"".join(items)}</ol>{tail}</div>'
        )
    headers = ["Check", "Points", "Passed", "Of", "Pass rate"]
    rates = table(headers, rows, "pass-rates", numeric=(1, 2, 3, 4))
    plot = svgplots().bars(list(data.layout.checks), shares, "checks") if data.layout.checks else ""
    return (
        '<section id="checks"><h2>Per check</h2>'
        '<p class="lead">Passed: the check earned its points, of the submissions with points. '
        "The most frequent diagnoses of the failed ones follow (numbers that differ from "
        "student to student masked as …).</p>"
        f'<div class="figures"><div>{rates}</div><div>{plot}</div></div>{"".join(parts)}</section>'
    )


def _ran(data):
    """{student: seconds} of the submissions that ran (not refused, not pending)."""
    found = {}
    for row in data.rows:
        record = data.results.get(row["student"])
        if record and row["status"] not in ("invalid", "pending"):
            seconds = record.get("seconds")
            if isinstance(seconds, int | float) and not isinstance(seconds, bool):
                found[row["student"]] = float(seconds)
    return found


def timing(data):
    seconds = _ran(data)
    by_student = {row["student"]: row for row in data.rows}
    values = list(seconds.values())
    stats = [
        ("ran", "Submissions run", str(len(values))),
        ("seconds-mean", "Mean seconds", f"{statistics.fmean(values):.1f}" if values else "-"),
        ("seconds-median", "Median", f"{statistics.median(values):.1f}" if values else "-"),
        ("seconds-max", "Slowest", f"{max(values):.1f}" if values else "-"),
        ("seconds-total", "All together", f"{sum(values):.0f}" if values else "-"),
    ]
    slowest = sorted(seconds.items(), key=lambda item: (-item[1], item[0]))[:SLOWEST]
    slow_rows = [
        [feedback_link(data, by_student[s]), f"{v:.1f}", esc(by_student[s]["status"])]
        for s, v in slowest
    ]
    hit = []
    for row in data.rows:
        limits = (data.results.get(row["student"]) or {}).get("limits") or []
        for text in limits:
            hit.append([feedback_link(data, row), esc(row["status"]), esc(text)])
    limits_html = (
        table(["Student", "Status", "Limit hit"], hit, "limits")
        if hit
        else '<p id="limits">No submission ran into a limit.</p>'
    )
    plot = svgplots().histogram(values, "seconds", "seconds per submission") if values else ""
    return (
        '<section id="time"><h2>Time</h2><div class="figures">'
        f"<div>{_stats_table(stats, 'time-summary')}</div><div>{plot}</div></div>"
        f"<h3>The slowest {len(slow_rows)}</h3>"
        + table(["Student", "Seconds", "Status"], slow_rows, "slowest", numeric=(1,))
        + f"<h3>Limits hit</h3>{limits_html}</section>"
    )


def similar(data, pairs):
    listed = len(pairs)
    fragment = similarity.pairs_html(similarity.flagged(pairs))
    compared = len(data.code)
    return (
        f'<section id="similar">{fragment}<p class="muted">{compared} submissions compared; '
        f"{SIMILARITY} lists all {listed} pairs with a score of at least "
        f"{similarity.LISTED:.0%}.</p></section>"
    )


def students(data):
    exercises = data.layout.exercises
    names = any(row.get("name") for row in data.rows)  # from an LMS's download or a roster
    rows = []
    for row in data.rows:
        cells = [
            feedback_link(data, row),
            *([esc(row.get("name", ""))] if names else []),
            esc(row["total"]),
            *(esc(row[e]) for e in exercises),
            esc(row["status"]),
            f'<span class="reason">{esc(row["reason"])}</span>',
        ]
        rows.append(cells)
    headers = ["Student", *(["Name"] if names else []), "Total", *exercises, "Status", "Reason"]
    first = 1 + names
    numeric = tuple(range(first, first + 1 + len(exercises)))
    return (
        '<section id="everyone"><h2>Students</h2>'
        '<p class="lead">Each id opens the student\'s feedback page.</p>'
        + table(headers, rows, "students", numeric=numeric)
        + "</section>"
    )


def report_html(data, pairs):
    """report.html's text for a ClassData and its similar pairs (similarity.compare)."""
    lead = (
        f'<p class="lead">{len(data.rows)} submissions, from {esc(GRADES)}, {esc(RESULTS)} and '
        f"{esc(CODE)} beside this page.</p>"
    )
    body = [
        "<h1>Class report</h1>",
        lead,
        totals(data),
        checks(data),
        timing(data),
        similar(data, pairs),
        students(data),
    ]
    return page("Class report", "\n".join(body))


def svgplots():
    """The plotting module, imported on first use (matplotlib takes a moment to import)."""
    from lrpkit.grading.results import svgplots as plots

    return plots
