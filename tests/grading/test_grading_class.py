"""A whole class from the LMS's download through the command line (issue 19's intake).

The fast tests stop before grading (``grade`` replaced): options, summary, exit status. The
slow one grades the class of downloads.py once, end to end, in the real sandbox: most students
hand in the notebooks as handed out (their stubs raise at once), a few the solutions.
"""

import pytest
from crafting import ROOT, read_csv, real_course
from downloads import EX3, EX4, class_download, notebooks, zip_bytes

import lrpkit.grading.cli as cli
from lrpkit.grading.cli import main

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


@pytest.mark.slow
def test_the_class_is_graded_once_each_through_the_command_line(
    tmp_path_factory, castle_file, capsys
):
    base = tmp_path_factory.mktemp("class")
    course = real_course(base / "course", castle_file)
    expected = class_download(
        base / "download", course / "notebooks" / "solutions", ROOT / "notebooks" / "exercises"
    )
    out = base / "out"
    args = [str(base / "download"), "--out", str(out), "--root", str(course), "--no-progress"]
    assert main(args) == 1  # files were left out
    printed, err = capsys.readouterr()
    for path in expected.left_out:
        assert path in printed
    assert f"{len(expected.left_out)} files left out" in err
    rows = read_csv(out / "grades.csv")
    unmatched = "canvas.zip/instructions.ipynb"
    assert set(rows) == {*expected.students, *expected.problems, unmatched}
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
