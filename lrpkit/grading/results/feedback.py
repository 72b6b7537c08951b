"""Feedback files, and writing any output atomically (instructors; students read the feedback).

``feedback/<name>.md`` gives one student every check's points, PASS or FAIL, diagnosis and
hint, the errors in their own cells (quoted by the cells' first lines) and any late penalty;
``feedback/<name>.html`` (feedbackpage.py) is the same as a page to open in a browser.
Whatever comes from the student's code or files (exception texts, printed output, file names,
ids) is shown as a markdown code span (``literal``) or code block (``quoted``), so it is never
read as markup or HTML. Each student's file name is their own (``feedback_name``); grades.csv's
``feedback`` column says whose is which (the markdown file; the page has the same stem).
"""

import hashlib
import os
import re
import tempfile
from pathlib import Path

from lrpkit.grading.run.scoring import not_handed_in

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


def page_name(feedback):
    """The feedback page (``.html``) beside a feedback file (``feedback/<name>.md``)."""
    return feedback.removesuffix(".md") + ".html"


#: a verdict line's "PASS check_x:" or "FAIL check_x:" (the verdict is shown on its own)
_VERDICT_WORD = re.compile(r"(?:PASS|FAIL)\b(?:\s+[\w.]+:)?\s*")
_HINT = re.compile(r"[.;]?\s+hint:\s*", re.IGNORECASE)


def diagnosis(text):
    """(what, hint) of a verdict's text: the check's diagnosis without its leading PASS or
    FAIL and check name, and the hint after "Hint:" ("" when there is none)."""
    text = " ".join(str(text).split())
    match = _VERDICT_WORD.match(text)
    if match and match.end() < len(text):
        text = text[match.end() :]
    what, *hint = _HINT.split(text, maxsplit=1)
    return what, (hint[0] if hint else "")


def literal(text):
    """Text from a student's code or files as one markdown code span: shown as it is, never
    as markup, HTML or a new line of the feedback."""
    text = " ".join(str(text).split())
    if not text:
        return "``"
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def quoted(text, indent="  "):
    """Lines from a student's cell as a fenced markdown code block (indented under a list
    item): shown as they are, never as markup; no line can close the fence."""
    text = str(text)
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    lines = [fence, *text.splitlines(), fence]
    return "\n".join(f"{indent}{line}".rstrip() for line in lines)


def function_of(check):
    """The check function a check calls (``check_conv``), from its key ``ex4.check_conv``."""
    return check.key.split(".", 1)[1] if "." in check.key else ""


def check_title(check):
    """How the feedback names a check: ``ex4 check 1, check_conv``."""
    function = function_of(check)
    return f"{check.name}, {function}" if function else check.name


def notebook_of(note):
    """The notebook a note's cell is in (its label is "<notebook> code cell <n>")."""
    return note.cell.rsplit(" code cell ", 1)[0]


def number(value):
    """Points as the outputs show them: rounded to 2 decimals, without trailing zeros."""
    text = f"{round(float(value), 2) + 0.0:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def maxima(course):
    """({exercise: its points}, the maximum of the course without its bonus exercises)."""
    found = {}
    for check in course.checks:
        found[check.exercise] = found.get(check.exercise, 0.0) + check.points
    return found, sum(p for e, p in found.items() if e not in course.bonus)


def shown(result, course):
    """The exercises a student's feedback shows: all the course grades but a bonus exercise
    the student did not hand in (then said once: "bonus: not handed in"; it never lowers the
    total's share, as the maximum holds no bonus points)."""
    unsent = not_handed_in(result.verdicts)
    return [e for e in course.exercises if e not in unsent], bool(unsent)


def feedback(result, course):
    """The feedback file's text (markdown) for one student's result."""
    most, maximum = maxima(course)
    points = result.points or {}
    exercises, unsent = shown(result, course)
    parts = [
        f"{course.title(e).split(':')[0]}{' (bonus)' * (e in course.bonus)}: "
        f"{number(points.get(e, 0))}/{number(most[e])}"
        for e in exercises
    ]
    parts.append(f"Total: {number(result.raw or 0.0)}/{number(maximum)}")
    raw = result.raw or 0.0
    lines = [f"# Feedback for {literal(result.student)}", ""]
    lines += [" | ".join([*parts, *(["bonus: not handed in"] if unsent else [])]), ""]
    if result.late.late:
        lines += [f"Late: {result.late.text}", ""]
        if result.late.percent:
            after = number(result.late.apply(raw))
            lines += [f"Total after the late penalty: {after}/{number(maximum)}", ""]
    status = f"Status: {result.status}"
    if result.status != "graded":
        status += f" ({literal(result.reason)})"
    lines.append(status)
    for exercise in exercises:
        mine = [v for v in result.verdicts if v.check.exercise == exercise]
        if mine:
            lines += ["", f"## {course.title(exercise)}", ""]
            for v in mine:
                verdict = "PASS" if v.passed else "FAIL"
                share = number(v.check.points)
                what, hint = diagnosis(v.text)
                line = f"- {check_title(v.check)} ({share} P): {verdict} -- {literal(what)}"
                lines.append(line + (f". Hint: {literal(hint)}" if hint else ""))
    if result.notes:
        lines += ["", "## Errors in your own code cells"]
        for note in result.notes[:20]:
            lines += ["", f"- In {literal(notebook_of(note))}, the cell that begins with", ""]
            lines += [quoted(note.excerpt), "", f"  {literal(note.text)}"]
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
