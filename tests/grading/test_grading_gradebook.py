"""grades.csv, canvas.csv, moodle.csv and updating an output folder, without grading runs
(lrpkit.grading.results.gradebook, lms, outputs); the grading runs are in test_grading_workflow."""

import csv
import io
import json

import pytest

from lrpkit.grading.course import ALL_EXERCISES, Course, load_checks, load_course
from lrpkit.grading.intake.submissions import Submission
from lrpkit.grading.late import Late
from lrpkit.grading.results.gradebook import FIXED, POSSIBLE, Layout
from lrpkit.grading.results.lms import CANVAS, MOODLE, canvas_table, moodle_table
from lrpkit.grading.results.outputs import OutputError, OutputFolder, read_configs
from lrpkit.grading.results.tables import read_csv
from lrpkit.grading.run.scoring import Result
from lrpkit.layout import SOLUTIONS


@pytest.fixture(scope="module")
def layout(tiny):
    return Layout.of(load_course(tiny))


def sub(student, **fields):
    return Submission(student, [], **fields)


def graded(student, ex3, ex4, **fields):
    checks = {"ex3.check_gradient_x_input": ex3, "ex4.check_conv_weights": ex4}
    return Result(student, {"ex3": ex3, "ex4": ex4}, "graded", "", checks=checks, **fields)


def test_the_columns_and_the_points_possible_row(tiny, layout):
    assert layout.fields == (
        *FIXED,
        "ex3",
        "ex3.check_gradient_x_input",
        "ex4",
        "ex4.check_conv_weights",
        "ex4.check_conv_relevance",
    )
    assert {k: v for k, v in layout.possible.items() if v} == {
        "student": POSSIBLE,
        "total": "50",
        "maximum": "50",
        "ex3": "25",
        "ex3.check_gradient_x_input": "25",
        "ex4": "25",
        "ex4.check_conv_weights": "12.5",
        "ex4.check_conv_relevance": "12.5",
    }


def test_the_bonus_appends_columns_and_is_extra_credit():
    plain = Layout.of(Course(load_checks(SOLUTIONS), {}))
    both = Layout.of(Course(load_checks(SOLUTIONS, ALL_EXERCISES), {}))
    assert both.fields[: len(plain.fields)] == plain.fields
    assert both.fields[len(plain.fields) :] == ("ex5", "ex5.check_perturbation_curve")
    assert (plain.maximum, both.maximum, both.possible["ex5"]) == ("50", "50", "25")


def test_rows_not_graded_have_empty_points_never_zeros(layout):
    pending = layout.row(Result.pending(sub("ann")), sub("ann"))
    error = layout.row(Result.grader_error(sub("bob"), OSError("disk full")), sub("bob"))
    for row in (pending, error):
        points = [row[f] for f in ("total", "before_penalty", *layout.exercises, *layout.checks)]
        assert points == [""] * len(points) and row["maximum"] == "50"
    invalid = layout.row(Result.rejected(sub("cy", problem="cy.ipynb is empty")), sub("cy"))
    assert (invalid["total"], invalid["ex4.check_conv_relevance"], invalid["reason"]) == (
        "0",
        "0",
        "cy.ipynb is empty",
    )


def test_a_row_shows_the_points_before_and_after_the_late_penalty(layout):
    late = Late(None, "1 d 2 h", 20.0, "1 d 2 h late; -20%")
    person = sub("dee", name="Dee Dee", login="dee", sis_id="S1", section="A", origin="canvas")
    row = layout.row(graded("dee", 25, 12.5, late=late), person, "feedback/dee.md")
    assert {k: row[k] for k in ("total", "before_penalty", "penalty", "late", "name")} == {
        "total": "30",
        "before_penalty": "37.5",
        "penalty": "20%",
        "late": "1 d 2 h",
        "name": "Dee Dee",
    }
    assert (row["ex3"], row["ex4.check_conv_weights"], row["ex4.check_conv_relevance"]) == (
        "25",
        "12.5",
        "0",
    )


def test_canvas_and_moodle_tables(layout):
    rows = [
        layout.row(
            graded("1001", 25, 12.5), sub("1001", name="=cmd|' /C calc'!A0", origin="canvas")
        ),
        layout.row(graded("7", 25, 0), sub("7", name="Moe", origin="moodle", login="moe")),
        layout.row(Result.pending(sub("8")), sub("8", origin="moodle")),
        layout.row(graded("s3", 0, 0), sub("s3", origin="folder", sis_id="=1+1")),
    ]
    fields, table = canvas_table(rows, layout.maximum, "Sheet 12 (4711)")
    assert fields == (*CANVAS, "Sheet 12 (4711)")
    assert table[0] == ["    Points Possible", "", "", "", "", "50"]
    assert table[1] == ["=cmd|' /C calc'!A0", "1001", "", "", "", "37.5"]
    assert table[2][:2] == ["Moe", ""], "only a Canvas download's key is Canvas's user id"
    assert table[3][-1] == "", "a pending row changes nothing in Canvas"
    fields, table, left_out = moodle_table(rows)
    assert fields == MOODLE and left_out == 2
    assert [r[:7] for r in table] == [
        ["Participant 7", "Moe", "", "graded", "25", "50", "Yes"],
        ["Participant 8", "", "", "pending", "", "50", "Yes"],
    ]
    assert table[0][8].endswith("Z") and table[0][9] == "25/50 points (graded)"


def save(folder, layout, results):
    rows = {r.student: layout.row(r, sub(r.student), f"feedback/{r.student}.md") for r in results}
    return folder.save(rows, {r.student: r.config for r in results})


def test_updating_a_folder_changes_only_the_rows_graded_now(tmp_path, layout):
    out = tmp_path / "out"
    config = json.dumps({"size": 40}, sort_keys=True)
    first = [graded(s, 25, 12.5, config=config) for s in ("ann", "bob", "cy")]
    save(OutputFolder(out, layout, "Sheet"), layout, first)
    before = (out / "grades.csv").read_bytes().split(b"\r\n")
    (out / "feedback").mkdir()
    for name in ("ann", "bob", "cy", "gone"):
        (out / "feedback" / f"{name}.md").write_text(name)
    folder = OutputFolder(out, layout, "Sheet")
    assert set(folder.earlier.rows) == {"ann", "bob", "cy"}
    assert folder.earlier.configs == {s: config for s in ("ann", "bob", "cy")}
    # bob is being re-graded (pending): his earlier row stays until his result is in
    combined = save(folder, layout, [Result.pending(sub("bob"))])
    assert (out / "grades.csv").read_bytes().split(b"\r\n") == before
    combined = save(folder, layout, [graded("bob", 0, 0)])
    after = (out / "grades.csv").read_bytes().split(b"\r\n")
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert len(after) == len(before) and changed == [3] and after[3].startswith(b"bob,")
    assert folder.summary.lines(out)[0].endswith("rows updated: 1, added: 0, kept as they were: 2")
    assert read_configs(out / "configs.jsonl") == {s: config for s in ("ann", "bob", "cy")}
    assert folder.remove_stale_feedback(combined) == ["gone.md"]
    assert sorted(p.name for p in (out / "feedback").iterdir()) == ["ann.md", "bob.md", "cy.md"]


def test_a_folder_of_another_course_or_kit_is_refused(tmp_path, layout):
    out = tmp_path / "out"
    save(OutputFolder(out, layout, "Sheet"), layout, [graded("ann", 25, 12.5)])
    other = Layout(layout.fields, {**layout.possible, "ex3": "30"})
    with pytest.raises(OutputError, match="other points possible"):
        OutputFolder(out, other, "Sheet")
    (out / "grades.csv").write_text("student,ex3,ex4,total,status,reason,sandbox,config\n")
    with pytest.raises(OutputError, match="another --out folder"):
        OutputFolder(out, layout, "Sheet")


def test_configs_come_from_configs_jsonl_or_an_older_grades_csv(tmp_path):
    old = tmp_path / "grades.csv"
    old.write_text('student,total,config\nann,50,"{""size"": 40}"\nbob,0,\n')
    assert read_configs(old) == {"ann": '{"size": 40}'}
    lines = tmp_path / "configs.jsonl"
    lines.write_text('{"student": "ann", "config": {"size": 40}}\n\nnot json\n')
    with pytest.raises(OutputError, match="line 3: not a line of configs.jsonl"):
        read_configs(lines)


def test_what_a_spreadsheet_and_the_csv_module_read_back(tmp_path, layout):
    """Written through the one writer: a hostile id is neutralised in every CSV, and the csv
    module reads the same points as the kit's reader."""
    out = tmp_path / "out"
    hostile = '=HYPERLINK("x")'
    results = [graded(hostile, 25, 12.5), graded("ann", 0, 12.5)]
    rows = {
        r.student: layout.row(r, sub(r.student, name=hostile, origin="moodle"), "") for r in results
    }
    OutputFolder(out, layout, "=Sheet").save(rows, {})
    for name in ("grades.csv", "canvas.csv", "moodle.csv"):
        text = (out / name).read_bytes().decode("utf-8")
        cells = [c for line in csv.reader(io.StringIO(text, newline="")) for c in line]
        assert hostile not in cells and f"'{hostile}" in cells, name
        assert not any(c.startswith("=") for c in cells), name
    fields, back = read_csv(out / "grades.csv")
    assert [r["student"] for r in back] == [POSSIBLE, hostile, "ann"]
    assert [r["total"] for r in back] == ["50", "37.5", "12.5"]
    assert read_csv(out / "canvas.csv")[0][-1] == "=Sheet"
