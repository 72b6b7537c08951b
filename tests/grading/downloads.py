"""Downloads as the LMSs give them, for the intake tests (lrpkit.grading.intake.collect).

``class_download`` builds issue 19's test class in one folder: 30 students in a Canvas zip
(with a resubmission, a LATE one and one file no student can be found for), 30 in a Moodle
zip (one handing in a zip of their own, renamed), 10 zips of one student each, one student
whose ex3 is empty, a symbolic link, a zip with ``../`` and absolute paths and a zip bomb.
Fewer of the students who only repeat a case (``per_lms``, ``zips``) for a class that is
graded: each graded student costs its hidden configuration, the intake tests take all.
Most students hand in the exercise notebooks as handed out, cut to their headings, tasks and
checks (``tiny``: the stubs raise at once and nothing loads the model, so grading them is
fast), some uncut, a few the solutions.
"""

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone

from lrpkit.layout import EXERCISES, SOLUTIONS

EX3, EX4 = "ex3_gradient_x_input.ipynb", "ex4_lrp.ipynb"
WHEN = (2024, 5, 1, 12, 0, 0)  # the time written into the zips (local time, as zips do)


def when(*date_time):
    return datetime(*date_time).astimezone(timezone.utc)


@dataclass
class Expected:
    """What the intake must find in a download."""

    students: dict = field(default_factory=dict)  # key -> (origin, {exercise: "solution"|...})
    late: set = field(default_factory=set)
    names: dict = field(default_factory=dict)  # key -> full name or login
    problems: dict = field(default_factory=dict)  # key -> words of the submission's problem
    left_out: dict = field(default_factory=dict)  # path -> words of the reason


def zip_bytes(members, date_time=WHEN):
    """A zip of {name: bytes} (or [(name, bytes)])."""
    buffer = io.BytesIO()
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in items:
            info = zipfile.ZipInfo(name, date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def tiny(data):
    """An exercise notebook as handed out, cut to its headings, tasks and checks: what
    matches it to its exercise, graded in a moment (nothing loads the model)."""
    nb = json.loads(data)
    nb["cells"] = [
        cell
        for cell in nb["cells"]
        if cell["cell_type"] == "markdown"
        or re.search(r"^(def|class) |check_", "".join(cell["source"]), re.MULTILINE)
    ]
    return json.dumps(nb, indent=1).encode()


def notebooks(solutions=SOLUTIONS, exercises=EXERCISES):
    """{"solution"|"exercise"|"tiny": {notebook name: bytes}} of a course."""
    given = {n: (exercises / n).read_bytes() for n in (EX3, EX4)}
    return {
        "solution": {n: (solutions / n).read_bytes() for n in (EX3, EX4)},
        "exercise": given,
        "tiny": {n: tiny(data) for n, data in given.items()},
    }


#: the fewest students per LMS that keep every case of class_download (Moodle's fourth
#: student hands in an online text too, the fifth is the first that repeats a case)
FEWEST = 5


def class_download(base, solutions=SOLUTIONS, exercises=EXERCISES, per_lms=30, zips=10):
    """Issue 19's test class in folder ``base``; returns what the intake must find.

    ``per_lms`` students in each of the Canvas and Moodle zips, ``zips`` zips of one student
    each: the first ``FEWEST`` and the first zip are the cases, the others hand in the
    notebooks as handed out, cut (``tiny``), like some of the first."""
    assert per_lms >= FEWEST and zips >= 2, "fewer would leave a case out"
    nbs = notebooks(solutions, exercises)
    solution, given = nbs["solution"], nbs["tiny"]
    expected = Expected()
    base.mkdir(parents=True, exist_ok=True)

    # Canvas: flat files <login>[_LATE]_<user id>_<submission id>_<file name>
    canvas, submission = [], 7_000_000
    for n in range(1, per_lms + 1):
        user, login = str(2000 + n), f"student{n:02d}canvas"
        late = "_LATE" if n == 2 else ""
        kind = "exercise" if n == 3 else "tiny"
        for name in (EX3, EX4):
            submission += 1
            canvas.append((f"{login}{late}_{user}_{submission}_{name}", nbs[kind][name]))
        expected.students[user] = ("canvas", {"ex3": kind, "ex4": kind})
        expected.names[user] = login
    # student 2001 hands in ex3 again, solved: Canvas names it ex3_gradient_x_input-1.ipynb
    canvas.append((f"student01canvas_2001_{submission + 1}_{EX3[:-6]}-1.ipynb", solution[EX3]))
    expected.students["2001"] = ("canvas", {"ex3": "solution", "ex4": "tiny"})
    expected.late.add("2002")
    canvas.append(("instructions.ipynb", given[EX3]))  # no student in its name
    expected.left_out["canvas.zip/instructions.ipynb"] = "no student found"
    (base / "canvas.zip").write_bytes(zip_bytes(canvas))

    # Moodle: <Full Name>_<participant id>_assignsubmission_file_/ folders
    moodle = []
    for n in range(1, per_lms + 1):
        participant, full = str(5000 + n), f"Moodle Student{n:02d}"
        folder = f"{full}_{participant}_assignsubmission_file_"
        kind = {1: "solution", 2: "exercise"}.get(n, "tiny")
        if n == 3:  # a zip of their own, the notebooks renamed
            own = {"work/Copy of ex3 (1).ipynb": given[EX3], "work/lrp.ipynb": given[EX4]}
            moodle.append((f"{folder}/handin.zip", zip_bytes(own)))
        else:
            moodle += [(f"{folder}/{name}", nbs[kind][name]) for name in (EX3, EX4)]
        expected.students[participant] = ("moodle", {"ex3": kind, "ex4": kind})
        expected.names[participant] = full
    moodle.append(("Moodle Student04_5004_assignsubmission_onlinetext_/onlinetext.html", b"hi"))
    (base / "moodle.zip").write_bytes(zip_bytes(moodle))

    # one zip per student, the notebooks in a folder of the zip
    for n in range(1, zips + 1):
        kind = "solution" if n == 1 else "tiny"
        members = {f"lrp-exercises/{name}": nbs[kind][name] for name in (EX3, EX4)}
        (base / f"z{n:02d}.zip").write_bytes(zip_bytes(members))
        expected.students[f"z{n:02d}"] = ("zip", {"ex3": kind, "ex4": kind})

    # one student whose ex3 is empty (ex4 is right)
    (base / "empty3").mkdir()
    (base / "empty3" / EX3).write_bytes(b"")
    (base / "empty3" / EX4).write_bytes(solution[EX4])
    expected.students["empty3"] = ("folder", {"ex3": "empty", "ex4": "solution"})

    # a symbolic link, a zip that climbs out, a zip bomb
    os.symlink(base / "z01.zip", base / "linked.zip")
    expected.problems["linked"] = "symbolic link"
    expected.left_out["linked.zip"] = "symbolic link"
    escape = {"../../escape.ipynb": solution[EX3], "/etc/cron.d/x.ipynb": solution[EX4]}
    (base / "climber.zip").write_bytes(zip_bytes(escape))
    expected.problems["climber"] = "climbs out"
    expected.left_out["climber.zip/../../escape.ipynb"] = "climbs out"
    expected.left_out["climber.zip//etc/cron.d/x.ipynb"] = "absolute path"
    (base / "bomb.zip").write_bytes(zip_bytes({EX3: bytes(24 * 2**20)}))
    expected.problems["bomb"] = "zip bomb"
    expected.left_out[f"bomb.zip/{EX3}"] = "zip bomb"
    return expected
