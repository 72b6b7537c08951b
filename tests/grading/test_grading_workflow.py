"""A course's workflow through the command line, with the real sandbox (the tiny course):
a course file, an interrupted run and --resume, an empty notebook beside a correct one, late
submissions, the LMS files parsed back, and re-grading one student into the class's folder.

Few grading runs: the class (4 submissions that run) once, then one student again. What the
intake of LMS downloads would fill in (ids, names, origin, times) is set on the submissions
as they are discovered.
"""

import csv
import io
import shutil
from datetime import datetime, timezone

import pytest
from crafting import (
    CELL_TIMEOUT,
    IMPORTS,
    WRONG_GXI,
    code,
    good_cells,
    nb_bytes,
    read_csv,
    solution_source,
    write_submissions,
)

from lrpkit.grading import cli, pipeline
from lrpkit.grading.results.lms import CANVAS, MOODLE

HOSTILE = '=HYPERLINK("x")'
COURSE_FILE = """\
[lms]
assignment = "Sheet 12"
canvas_id = 4711

[late]
due = 2025-06-30T23:59:00Z
policy = "10%/day"

[exercises.ex4.checks]
check_conv_weights = 15
"""
#: what the intake would know: {student: Submission fields}
INTAKE = {
    "1001": {"origin": "canvas", "name": HOSTILE, "login": "ann", "sis_id": "S1001"},
    "1002": {"origin": "canvas", "name": "Bob", "late": True},
    "7": {"origin": "moodle", "name": "Moe"},
    "eve": {"origin": "folder", "name": "Eve"},
}


class Interrupting:
    """A Grader that is stopped (Ctrl-C) before any run."""

    def __init__(self, *args, **kwargs):
        raise KeyboardInterrupt


def with_intake(collect):
    """intake.collect, with what an LMS's download would have said of these students."""

    def collected(*args, **kwargs):
        intake = collect(*args, **kwargs)
        for sub in intake.submissions:
            for key, value in INTAKE.get(sub.student, {}).items():
                setattr(sub, key, value)
        return intake

    return collected


@pytest.fixture(scope="module")
def course(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("workflow")
    shutil.copytree(tiny, base / "course")
    solutions = base / "course" / "notebooks" / "solutions"
    subs = {
        "1001.ipynb": nb_bytes(good_cells()),
        "1002.ipynb": nb_bytes([IMPORTS, WRONG_GXI, code(solution_source("conv"))]),
        "7": {
            "ex3_gradient_x_input.ipynb": b"",
            "ex4_lrp.ipynb": (solutions / "ex4_lrp.ipynb").read_bytes(),
        },
        "eve.ipynb": nb_bytes(good_cells()),
        "bad.ipynb": b"nope",
    }
    write_submissions(base / "subs", subs)
    (base / "course.toml").write_text(COURSE_FILE)  # beside the submissions folder
    (base / "times.csv").write_text("student,submitted\neve,2025-07-02T10:00:00+02:00\n")
    return base


def run(base, *options):
    return cli.main(
        [
            str(base / "subs"),
            "--root",
            str(base / "course"),
            "--out",
            str(base / "grades"),
            "--no-progress",
            "--cell-timeout",
            str(CELL_TIMEOUT),
            "--times",
            str(base / "times.csv"),
            *options,
        ]
    )


@pytest.fixture(scope="module")
def graded(course):
    """The class graded: first interrupted, then --resume; what each step left."""
    steps = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "collect", with_intake(cli.collect))
        with pytest.MonkeyPatch.context() as stop:
            stop.setattr(pipeline, "Grader", Interrupting)
            steps["interrupted"] = (run(course), read_csv(course / "grades" / "grades.csv"))
        steps["resumed"] = (run(course, "--resume"), read_csv(course / "grades" / "grades.csv"))
    return steps


def csv_rows(path):
    """What any program reads: the csv module's rows, nothing undone."""
    text = path.read_bytes().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_an_interrupted_run_leaves_pending_rows_with_empty_points(graded):
    code, rows = graded["interrupted"]
    assert code == 130
    assert rows["bad"]["status"] == "invalid" and rows["bad"]["total"] == "0"
    for student in INTAKE:
        row = rows[student]
        assert row["status"] == "pending" and "--resume" in row["reason"], row
        points = [v for k, v in row.items() if k.startswith(("ex", "total", "before"))]
        assert points == [""] * len(points), row


def test_resume_grades_the_class_with_the_course_files_points(graded):
    code, rows = graded["resumed"]
    assert code == 0
    assert {s: r["status"] for s, r in rows.items()} == {
        "1001": "graded",
        "1002": "graded",
        "7": "graded",
        "bad": "invalid",
        "eve": "graded",
    }
    ann = rows["1001"]
    assert (ann["total"], ann["maximum"], ann["ex4.check_conv_weights"]) == ("50", "50", "15")
    assert ann["ex4.check_conv_relevance"] == "10"
    assert (ann["name"], ann["login"], ann["sis_id"], ann["origin"]) == (
        HOSTILE,
        "ann",
        "S1001",
        "canvas",
    )


def test_an_empty_notebook_costs_its_exercise_only(graded):
    row = graded["resumed"][1]["7"]
    assert (row["ex3"], row["ex4"], row["total"], row["status"]) == ("0", "25", "25", "graded")
    assert row["reason"].startswith("ex3_gradient_x_input.ipynb is empty (ex3: 0 points)")


def test_late_submissions_show_the_points_before_and_after_the_penalty(graded, course):
    rows = graded["resumed"][1]
    eve = rows["eve"]  # --times: 1 d 8 h 1 min late, 2 started days
    assert (eve["before_penalty"], eve["penalty"], eve["total"]) == ("50", "20%", "40")
    assert (eve["submitted"], eve["late"]) == ("2025-07-02T08:00:00Z", "1 d 8 h 1 min")
    bob = rows["1002"]  # marked LATE by Canvas, no time: one started day
    assert (bob["before_penalty"], bob["penalty"], bob["total"]) == ("25", "10%", "22.5")
    assert bob["late"] == "late (time unknown)"
    assert (rows["1001"]["penalty"], rows["1001"]["late"]) == ("", "")
    text = (course / "grades" / eve["feedback"]).read_text()
    assert "Total after the late penalty: 40/50" in text and "2 started days x 10%" in text


def test_every_output_parsed_back_agrees_with_grades_csv(graded, course):
    out = course / "grades"
    grades = csv_rows(out / "grades.csv")
    assert grades[0]["student"] == "Points Possible" and grades[0]["maximum"] == "50"
    assert grades[0]["ex4.check_conv_weights"] == "15"
    people = {row["student"]: row for row in grades[1:]}
    assert people["1001"]["name"] == f"'{HOSTILE}", "a formula is neutralised"
    canvas = csv_rows(out / "canvas.csv")
    assert tuple(canvas[0]) == (*CANVAS, "Sheet 12 (4711)")
    assert (
        canvas[0]["Student"].strip() == "Points Possible" and canvas[0]["Sheet 12 (4711)"] == "50"
    )
    by_name = {row["Student"]: row for row in canvas[1:]}
    assert (
        by_name[f"'{HOSTILE}"]["ID"] == "1001" and by_name[f"'{HOSTILE}"]["SIS User ID"] == "S1001"
    )
    assert {row["Student"]: row["Sheet 12 (4711)"] for row in canvas[1:]} == {
        people[s]["name"] or s: people[s]["total"] for s in people
    }
    moodle = csv_rows(out / "moodle.csv")
    assert tuple(moodle[0]) == MOODLE
    assert [(r["Identifier"], r["Grade"], r["Maximum Grade"]) for r in moodle] == [
        ("Participant 7", people["7"]["total"], "50")
    ]
    when = datetime.fromisoformat(moodle[0]["Last modified (grade)"].replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 3600
    assert "ex3_gradient_x_input.ipynb is empty" in moodle[0]["Feedback comments"]
    for row in people.values():
        assert (out / row["feedback"]).is_file()


@pytest.fixture(scope="module")
def regraded(graded, course):
    """After a complaint: 1002 hands in a corrected notebook, re-graded alone (--only); then a
    re-grade of 1001 interrupted; a stale feedback file lies in the folder."""
    out = course / "grades"
    files = ("grades.csv", "configs.jsonl", "results.jsonl", "code.jsonl")
    before = {name: (out / name).read_bytes() for name in files}
    feedback = {p.name: p.read_bytes() for p in (out / "feedback").iterdir()}
    (out / "feedback" / "left-behind.md").write_text("a student no longer in the class")
    (course / "subs" / "1002.ipynb").write_bytes(nb_bytes(good_cells()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "collect", with_intake(cli.collect))
        code = run(course, "--only", "1002")
        after = {name: (out / name).read_bytes() for name in files}
        patch.setattr(pipeline, "Grader", Interrupting)
        stopped = run(course, "--only", "1001")
    return {
        "code": code,
        "stopped": stopped,
        "before": before,
        "after": after,
        "feedback": feedback,
        "final": (out / "grades.csv").read_bytes(),
    }


def test_regrading_one_student_changes_that_row_only(regraded, course):
    assert regraded["code"] == 0
    before = regraded["before"]["grades.csv"].split(b"\r\n")
    after = regraded["after"]["grades.csv"].split(b"\r\n")
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 1, changed
    assert changed[0][1].startswith(b"1002,Bob,") and b",22.5," in changed[0][0]
    assert read_csv(course / "grades" / "grades.csv")["1002"]["total"] == "45"  # 50, LATE
    assert regraded["after"]["configs.jsonl"] == regraded["before"]["configs.jsonl"]
    names = sorted(p.name for p in (course / "grades" / "feedback").iterdir())
    assert names == sorted(regraded["feedback"]), "the stale feedback file is removed"
    for name, data in regraded["feedback"].items():
        if name not in ("1002.md", "1002.html"):
            assert (course / "grades" / "feedback" / name).read_bytes() == data, name
    for name in ("results.jsonl", "code.jsonl"):  # 1002's line changes, no other
        before = regraded["before"][name].splitlines()
        after = regraded["after"][name].splitlines()
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        assert len(before) == len(after) and len(changed) == 1, name
        assert changed[0][1].startswith(b'{"') and b'"student": "1002"' in changed[0][1]


def test_an_interrupted_regrade_keeps_the_earlier_row(regraded):
    assert regraded["stopped"] == 130
    assert regraded["final"] == regraded["after"]["grades.csv"]
