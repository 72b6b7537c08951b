"""A student's feedback page (students open it): ``feedback/<name>.html`` beside the markdown.

The same facts as the markdown file (lrpkit.grading.results.feedback.feedback), as one
self-contained
HTML page (pages.py): the points per exercise and the total, any late penalty, the status;
per exercise and check its points, PASS or FAIL, the diagnosis and the hint; the errors in
the student's own cells, each quoted with the cell's first lines. Nothing else of the run:
no hidden configuration, no expected values. Every text is escaped.
"""

from lrpkit.grading.results.feedback import (
    diagnosis,
    function_of,
    maxima,
    notebook_of,
    number,
    shown,
)
from lrpkit.grading.results.pages import badge, esc, page, table


def _summary(result, course):
    most, maximum = maxima(course)
    points = result.points or {}
    exercises, unsent = shown(result, course)
    rows = [
        [
            esc(course.title(e)) + (' <span class="muted">(bonus)</span>' * (e in course.bonus)),
            esc(number(points.get(e, 0))),
            esc(number(most[e])),
        ]
        for e in exercises
    ]
    raw = result.raw or 0.0
    rows.append(
        ["<strong>Total</strong>", f"<strong>{esc(number(raw))}</strong>", esc(number(maximum))]
    )
    if unsent:
        rows.append(['bonus: <span class="muted">not handed in</span>', "", ""])
    if result.late.late and result.late.percent:
        after = number(result.late.apply(raw))
        rows.append(["Total after the late penalty", esc(after), esc(number(maximum))])
    parts = [table(["", "Points", "of"], rows, "points", numeric=(1, 2))]
    if result.late.late:
        parts.append(f'<p class="late">Late: {esc(result.late.text)}</p>')
    status = f'<p class="status">Status: <strong>{esc(result.status)}</strong>'
    if result.status != "graded" or result.reason == "all checks passed":
        status += f" ({esc(result.reason)})" if result.reason else ""
    return "".join(parts) + status + "</p>"


def _checks(result, course, exercise):
    mine = [v for v in result.verdicts if v.check.exercise == exercise]
    if not mine:
        return ""
    rows = []
    for v in mine:
        what, hint = diagnosis(v.text)
        function = function_of(v.check)
        name = esc(v.check.name) + (f"<br><code>{esc(function)}</code>" if function else "")
        earned = v.check.points if v.passed else 0.0
        rows.append(
            [
                name,
                f"{esc(number(earned))} / {esc(number(v.check.points))}",
                badge(v.passed),
                f'<span class="diagnosis">{esc(what)}</span>',
                f'<span class="hint">{esc(hint)}</span>',
            ]
        )
    headers = ["Check", "Points", "Verdict", "Diagnosis", "Hint"]
    ident = f"checks-{exercise}"
    checks = table(headers, rows, ident, numeric=(1,), cls="checks")
    return f"<h2>{esc(course.title(exercise))}</h2>{checks}"


def _notes(result):
    if not result.notes:
        return ""
    items = []
    for note in result.notes[:20]:
        items.append(
            '<li class="note">'
            f"In <code>{esc(notebook_of(note))}</code>, the cell that begins with"
            f'<pre class="excerpt">{esc(note.excerpt)}</pre>'
            f'<span class="error">{esc(note.text)}</span></li>'
        )
    more = len(result.notes) - 20
    tail = f"<p>... and {more} more.</p>" if more > 0 else ""
    return (
        '<h2>Errors in your own code cells</h2><ul class="notes">' + "".join(items) + "</ul>" + tail
    )


def feedback_page(result, course):
    """The feedback page's HTML for one student's result."""
    body = [
        f"<h1>Feedback for <code>{esc(result.student)}</code></h1>",
        _summary(result, course),
        *(_checks(result, course, exercise) for exercise in shown(result, course)[0]),
        _notes(result),
    ]
    return page(f"Feedback for {result.student}", "\n".join(part for part in body if part))
