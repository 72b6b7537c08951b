"""Grading end to end (lrpkit.grading.pipeline): crafted bad, correct and partial submissions.

One run grades all crafted submissions of the tiny course with 2 workers; the test marked
slow profiles one submission of the real exercises (stand-in VGG-16). The grading benchmark's
submissions of the real exercises (correct, only Exercise 3, none) are graded in
test_grading_class.py's run, beside the class they repeat.
"""

import shutil
import time
from pathlib import Path

import pytest
from crafting import (
    CELL_TIMEOUT,
    TIMEOUT,
    WRONG_GXI,
    read_csv,
    submissions,
    tree_hashes,
    write_submissions,
)

from lrpkit.bench import grading as bench
from lrpkit.grading.course import load_course
from lrpkit.grading.pipeline import grade
from lrpkit.grading.results import details, tables
from lrpkit.grading.results.feedback import literal, page_name
from lrpkit.grading.results.gradebook import Layout
from lrpkit.grading.results.pages import esc, href
from lrpkit.grading.run.runner import isolation

# ---------------------------------------------------------------------------
# one grading run of all crafted submissions (2 workers)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("run")
    course_root = base / "course"
    shutil.copytree(tiny, course_root)
    paths = {"submissions": base / "submissions", "out": base / "out"}
    subs = submissions(course_root, paths)
    write_submissions(paths["submissions"], subs)
    before = {"course": tree_hashes(course_root), "subs": tree_hashes(paths["submissions"])}
    course = load_course(course_root)
    started = time.monotonic()
    results = grade(
        paths["submissions"],
        paths["out"],
        workers=2,
        course=course,
        root=course_root,
        cell_timeout=CELL_TIMEOUT,
        timeout=TIMEOUT,
        progress=False,
    )
    seconds = time.monotonic() - started
    return {
        "results": {r.student: r for r in results},
        "course": course,
        "rows": read_csv(paths["out"] / "grades.csv"),
        "out": paths["out"],
        "subs": subs,
        "before": before,
        "after": {"course": tree_hashes(course_root), "subs": tree_hashes(paths["submissions"])},
        "seconds": seconds,
    }


def row(graded, student):
    return graded["rows"][student]


def test_one_row_per_submission_with_all_columns(graded):
    fields, rows = tables.read_csv(graded["out"] / "grades.csv")
    assert fields == Layout.of(graded["course"]).fields
    assert fields[:10] == (
        "student", "name", "sis_id", "login", "section", "origin", "total", "maximum",
        "status", "reason",
    )  # fmt: skip
    assert rows[0]["student"] == "Points Possible" and rows[0]["maximum"] == "50"
    rows = rows[1:]
    assert {row["sandbox"] for row in rows if row["status"] != "invalid"} == {isolation()}
    expected = sorted(
        Path(name).stem if name.endswith(".ipynb") else name for name in graded["subs"]
    )
    assert sorted(r["student"] for r in rows) == expected
    for r in rows:
        assert float(r["total"]) == pytest.approx(float(r["ex3"]) + float(r["ex4"]))
        assert r["status"] in {"graded", "invalid", "timeout", "tampered", "error"}
        assert r["reason"]
    assert not list(graded["out"].glob(".*tmp")), "a temporary file of the atomic write is left"


def test_feedback_file_and_page_per_student(graded):
    for name, row in graded["rows"].items():
        text = (graded["out"] / row["feedback"]).read_text()
        assert text.startswith(f"# Feedback for {literal(name)}")
        page = (graded["out"] / page_name(row["feedback"])).read_text()
        assert f"<h1>Feedback for <code>{esc(name)}</code></h1>" in page
    files = sorted(p.name for p in (graded["out"] / "feedback").iterdir())
    names = [Path(row["feedback"]).name for row in graded["rows"].values()]
    assert files == sorted([*names, *(Path(page_name(name)).name for name in names)])


def test_the_run_writes_the_class_report_and_what_it_is_made_from(graded):
    out, rows = graded["out"], graded["rows"]
    assert set(details.read_results(out / "results.jsonl")) == set(rows)
    code = details.read_code(out / "code.jsonl")
    assert set(code) == {s for s, row in rows.items() if row["status"] != "invalid"}
    assert code["wrong3"][1] == ("wrong3.ipynb code cell 2", WRONG_GXI[1])
    report = (out / "report.html").read_text()
    for name, row in rows.items():
        assert f'href="{href(page_name(row["feedback"]))}"' in report, name
    assert (out / "similarity.csv").read_text().startswith("student_a,student_b,score,")


def test_correct_submissions_get_full_points(graded):
    for name in ("good", "good1"):
        r = row(graded, name)
        assert (r["ex3"], r["ex4"], r["total"], r["status"]) == ("25", "25", "50", "graded"), r
        assert r["reason"] == "all checks passed"
    text = (graded["out"] / "feedback" / "good.md").read_text()
    key = "ex3 check 1, check_gradient_x_input"
    assert f"{key} (25 P): PASS -- `R equals the reference`" in text
    assert text.count("(12.5 P): PASS") == 2 and text.count("PASS") == 3


def test_only_exercise_3_right(graded):
    r = row(graded, "only3")
    assert (r["ex3"], r["ex4"], r["total"], r["status"]) == ("25", "0", "25", "graded")
    assert "NotImplementedError" in r["reason"] and "Exercise 4" in r["reason"]


def test_wrong_values_get_the_checks_hint(graded):
    r = row(graded, "wrong3")
    assert (r["ex3"], r["ex4"]) == ("0", "25")
    assert "hint: multiply the gradient by the input" in r["reason"]
    text = (graded["out"] / "feedback" / "wrong3.md").read_text()
    key = "ex3 check 1, check_gradient_x_input"
    assert f"{key} (25 P): FAIL -- `wrong values`. Hint: `multiply the gradient" in text
    assert text.count("FAIL") == 1


@pytest.mark.parametrize(
    "name, words",
    [
        ("badjson", "not valid JSON"),
        ("nbformat3", "nbformat 3"),
        ("empty", "empty notebook"),
        ("binary", "not UTF-8"),
        ("not an id", "not a student id"),
    ],
)
def test_unreadable_submissions_get_a_row_with_the_reason(graded, name, words):
    r = row(graded, name)
    assert (r["status"], r["total"]) == ("invalid", "0")
    assert words in r["reason"]


def test_renamed_function_and_class(graded):
    r = row(graded, "renamed")
    assert (r["ex3"], r["ex4"], r["status"]) == ("0", "0", "graded")
    assert "`gradient_x_input` is not defined" in r["reason"]
    assert "`Conv` is not defined" in r["reason"]


def test_exceptions_in_own_cells_do_not_stop_the_checks(graded):
    r = row(graded, "raises")
    assert (r["total"], r["status"]) == ("50", "graded")
    text = (graded["out"] / "feedback" / "raises.md").read_text()
    assert "ZeroDivisionError" in text and "`undefined_name` is not defined" in text


def test_endless_loop_in_a_cell_is_stopped_and_grading_goes_on(graded):
    r = row(graded, "loop")
    assert (r["total"], r["status"]) == ("50", "graded"), r
    assert "endless loop" in (graded["out"] / "feedback" / "loop.md").read_text()


def test_endless_loop_in_the_checked_function(graded):
    r = row(graded, "loopfn")
    assert (r["ex3"], r["ex4"], r["status"]) == ("0", "25", "graded"), r
    assert "endless loop" in r["reason"]


def test_enormous_output_is_cut(graded):
    r = row(graded, "flood")
    assert (r["total"], r["status"]) == ("50", "graded"), r
    assert (graded["out"] / "feedback" / "flood.md").stat().st_size < 10_000


@pytest.mark.parametrize("name", ["patchfn", "patchprint", "patchstdout", "fakepass", "forger"])
def test_patched_checks_and_fake_pass_lines_earn_nothing(graded, name):
    r = row(graded, name)
    assert (r["ex3"], r["ex4"], r["status"]) == ("0", "0", "graded"), r
    assert "FAIL gradient_x_input: wrong values" in r["reason"] or "differs" in r["reason"]


def test_the_reference_solution_is_out_of_reach(graded):
    r = row(graded, "reference")
    assert (r["ex3"], r["ex4"]) == ("0", "25"), r
    text = (graded["out"] / "feedback" / "reference.md").read_text()
    assert "No module named 'lrpkit.reference" in text


def test_a_dying_kernel_is_reported(graded):
    r = row(graded, "exits")
    assert (r["total"], r["status"]) == ("0", "graded"), r
    assert "kernel" in r["reason"]


def test_vandal_changes_nothing_in_the_sandbox(graded):
    """In bubblewrap the vandal's writes fail (read-only kit copies, nothing else visible): its
    row names the error in its own cell, and nothing of the course or submissions changed."""
    r = row(graded, "vandal")
    assert r["status"] == "graded" and "error in own cell" in r["reason"], r
    assert "Read-only file system" in r["reason"] or "Permission denied" in r["reason"], r
    assert graded["after"]["course"] == graded["before"]["course"]
    assert graded["after"]["subs"] == graded["before"]["subs"]
    for name in ("good", "good1", "raises"):
        assert row(graded, name)["total"] == "50"
    assert not (graded["out"] / "changed-files").exists()


def test_vandal_is_marked_tampered_without_the_sandbox(tiny, tmp_path):
    """--no-sandbox: the vandal's changes are restored, kept for the instructor, and marked."""
    course_root = tmp_path / "course"
    shutil.copytree(tiny, course_root)
    paths = {"submissions": tmp_path / "submissions", "out": tmp_path / "out"}
    subs = submissions(course_root, paths)
    write_submissions(paths["submissions"], {k: subs[k] for k in ("vandal.ipynb", "good")})
    before = {"course": tree_hashes(course_root), "subs": tree_hashes(paths["submissions"])}
    grade(
        paths["submissions"], paths["out"], workers=2, course=load_course(course_root),
        root=course_root, progress=False, sandbox=False,
    )  # fmt: skip
    rows = read_csv(paths["out"] / "grades.csv")
    assert (rows["vandal"]["status"], rows["vandal"]["total"]) == ("tampered", "0")
    assert rows["vandal"]["sandbox"] == "none (--no-sandbox)"
    assert rows["good"]["total"] == "50"
    assert tree_hashes(course_root) == before["course"]
    assert tree_hashes(paths["submissions"]) == before["subs"]
    assert list((paths["out"] / "changed-files").iterdir())


# ---------------------------------------------------------------------------
# the real exercises: stand-in VGG-16, the kit's checks and references (the benchmark's
# submissions graded: test_grading_class.py)
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_benchmark_profile_gives_each_graded_cell_its_seconds(capsys):
    """``python -m lrpkit.bench.grading --profile none``: one line per cell of the graded
    notebook, in order, with its role, then the rest of the run (forking, starting, ending)."""
    assert bench.main(["--profile", "none"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if " s  " in line]
    kinds = [row[2] for row in rows[:-1]]
    assert kinds[0] == "prelude" and "student" in kinds
    assert kinds.count("guard") == kinds.count("check") >= 4
    assert rows[-1][2:4] == ["pytest", "forked,"] and "zygotes ready in" in out
    assert float(rows[-1][0]) > 0 and all(float(row[0]) >= 0 for row in rows)
    graded = float(out.split("graded in ")[1].split()[0])
    assert sum(float(row[0]) for row in rows) == pytest.approx(graded, abs=0.05)
