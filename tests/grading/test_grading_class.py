"""A whole class from the LMS's download through the command line (issue 19's intake).

The fast tests stop before grading (``grade`` replaced): options, summary, exit status. The
slow ones read one run that grades, end to end in the real sandbox, the class of downloads.py
(its fewest students that keep every case: most hand in the notebooks as handed out, their
stubs raise at once, a few the solutions; tests/grading/test_grading_intake.py reads the whole
class) with the grading benchmark's submissions beside it.
"""

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from crafting import ROOT, read_csv, real_course
from downloads import EX3, EX4, FEWEST, class_download, notebooks, zip_bytes

import lrpkit.grading.cli as cli
from lrpkit.bench import grading as bench
from lrpkit.grading.cli import main
from lrpkit.grading.course import load_checks

NBS = notebooks()


@pytest.fixture
def no_grading(monkeypatch):
    """``grade`` replaced: [the intake it was handed]."""
    seen = []
    monkeypatch.setattr(cli, "grade", lambda *a, **k: seen.append(k["intake"]) or [])
    return seen


def download(folder):
    folder.mkdir()
    members = {
        f"ann_LATE_3001_900_{EX3}": NBS["solution"][EX3],
        f"ann_3001_901_{EX4}": NBS["exercise"][EX4],
        "notes.ipynb": NBS["exercise"][EX3],
        f"bob_3002_902_{EX3}": NBS["exercise"][EX3],
    }
    (folder / "canvas.zip").write_bytes(zip_bytes(members))
    return folder


def test_files_left_out_make_the_run_fail_unless_allowed(tmp_path, no_grading, capsys):
    subs = download(tmp_path / "subs")
    base = [str(subs), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(base) == 1
    out, err = capsys.readouterr()
    assert "intake: 2 submissions (2 canvas)" in out
    assert "canvas.zip/notes.ipynb: not a name Canvas or Moodle gives" in out
    assert "1 files left out" in err and "--allow-unmatched" in err
    assert main([*base, "--allow-unmatched"]) == 0
    [intake, _] = no_grading
    assert {s.student: s.late for s in intake.submissions if s.origin == "canvas"} == {
        "3001": True,
        "3002": False,
    }


def test_pattern_and_roster_reach_the_intake(tmp_path, no_grading, capsys):
    subs = download(tmp_path / "subs")
    roster = tmp_path / "gradebook.csv"
    roster.write_text('Student,ID,SIS User ID,SIS Login ID,Section\n"Ann, A",3001,S1,ann,T1\n')
    args = [str(subs), "--roster", str(roster), "--allow-unmatched", "--no-progress"]
    assert main([*args, "--pattern", r"canvas\.zip/(?P<student>[a-z]+)_"]) == 0
    by_pattern = {s.student: s.origin for s in no_grading[-1].submissions}
    unmatched = {"canvas.zip/notes.ipynb": "unmatched"}
    assert by_pattern == {"3001": "pattern", "bob": "pattern", **unmatched}  # ann is 3001
    assert main(args) == 0
    ann = next(s for s in no_grading[-1].submissions if s.student == "3001")
    assert (ann.name, ann.sis_id, ann.section) == ("Ann, A", "S1", "T1")
    assert "1 submissions not in the roster: 3002" in capsys.readouterr().out


@pytest.mark.parametrize(
    "option, words",
    [
        (["--pattern", "(?P<file>.*)"], "no group (?P<student_id>"),
        (["--roster", "missing.csv"], "argument --roster: missing.csv does not exist"),
    ],
)
def test_a_bad_pattern_or_roster_stops_before_grading(tmp_path, no_grading, capsys, option, words):
    subs = download(tmp_path / "subs")
    try:
        status = main([str(subs), *option, "--no-progress"])
    except SystemExit as exit:  # argparse refuses a missing file itself
        status = exit.code
    assert status == 2
    assert words in capsys.readouterr().err and no_grading == []


@dataclass(frozen=True)
class Graded:
    """The run of the class: exit status, what it printed, grades.csv's rows, its folder."""

    status: int
    printed: str
    err: str
    rows: dict
    out: Path
    expected: object  # downloads.Expected
    totals: dict  # the benchmark's submissions: {student: total}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, castle_file):
    """The class of downloads.py (its fewest students that keep every case) and the grading
    benchmark's submissions (lrpkit.bench.grading: correct, only Exercise 3, none), folders
    beside the LMS's zips, graded in ONE run through the command line."""
    base = tmp_path_factory.mktemp("class")
    course = real_course(base / "course", castle_file)
    solutions = course / "notebooks" / "solutions"
    download = base / "download"
    expected = class_download(
        download, solutions, ROOT / "notebooks" / "exercises", per_lms=FEWEST, zips=2
    )
    totals = bench.make_submissions(download, 1, solutions=solutions)
    out = base / "out"
    args = [str(download), "--out", str(out), "--root", str(course), "--no-progress"]
    printed, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(err):
        status = main(args)
    rows = read_csv(out / "grades.csv")
    return Graded(status, printed.getvalue(), err.getvalue(), rows, out, expected, totals)


@pytest.mark.slow
def test_the_class_is_graded_once_each_through_the_command_line(graded):
    expected, rows = graded.expected, graded.rows
    assert graded.status == 1  # files were left out
    for path in expected.left_out:
        assert path in graded.printed
    assert f"{len(expected.left_out)} files left out" in graded.err
    unmatched = "canvas.zip/instructions.ipynb"
    assert set(rows) == {*expected.students, *expected.problems, unmatched, *graded.totals}
    for key, (_, kinds) in expected.students.items():
        if key == "empty3":
            continue  # its empty ex3: scored per file where the grader reads per file
        points = {e: "25" if kind == "solution" else "0" for e, kind in kinds.items()}
        row = rows[key]
        assert ({e: row[e] for e in points}, row["status"]) == (points, "graded"), (key, row)
    for key, words in expected.problems.items():
        assert (rows[key]["status"], rows[key]["total"]) == ("invalid", "0")
        assert words in rows[key]["reason"], key
    assert "no student found" in rows[unmatched]["reason"]
    assert "empty3" in rows and "ex3_gradient_x_input.ipynb" in rows["empty3"]["reason"]


@pytest.mark.slow
def test_the_benchmarks_submissions_get_its_totals(graded):
    """All correct: 50; only Exercise 3: 25; the exercises as handed out: 0 (what
    lrpkit.bench.grading expects of them)."""
    got = {s: (graded.rows[s]["status"], graded.rows[s]["total"]) for s in graded.totals}
    assert got == {
        "correct01": ("graded", "50"),
        "only301": ("graded", "25"),
        "none01": ("graded", "0"),
    }
    assert graded.rows["only301"]["ex3"] == "25"
    assert {s: float(graded.rows[s]["total"]) for s in graded.totals} == graded.totals


@pytest.mark.slow
def test_feedback_gives_each_checks_verdict(graded):
    text = (graded.out / "feedback" / "only301.md").read_text()
    assert "ex3 check 1, check_gradient_x_input (25 P): PASS -- `gradient_x_input matches" in text
    assert "ex4 check 1, check_conv (8.33 P): FAIL -- `Conv(conv, gamma) raised" in text
    assert text.count("FAIL") == 3 and text.count("PASS") == 1
    n_checks = len(load_checks(ROOT / "notebooks" / "solutions"))
    assert text.count("- ex3 check") + text.count("- ex4 check") == n_checks
