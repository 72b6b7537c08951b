"""Intake (lrpkit.grading.intake.collect): LMS downloads, zips and folders to one submission each.

Pure intake, no grading: every layout recognised, every student found once, each notebook
matched to its exercise, and what is refused named with its reason.
"""

import os
import shutil
import time
import zipfile
from datetime import datetime, timezone

import pytest
from downloads import EX3, EX4, WHEN, class_download, notebooks, when, zip_bytes

from lrpkit.grading.course import GradingError
from lrpkit.grading.intake.collect import collect
from lrpkit.grading.intake.layouts import PatternError
from lrpkit.grading.intake.matching import Exercises
from lrpkit.grading.intake.roster import NO_SUBMISSION, read_roster
from lrpkit.layout import SOLUTIONS

NBS = notebooks()


@pytest.fixture(scope="module")
def kit():
    return Exercises.from_solutions(SOLUTIONS)


@pytest.fixture(scope="module")
def download(tmp_path_factory):
    base = tmp_path_factory.mktemp("download") / "class"
    return base, class_download(base)


def kinds(sub):
    """{exercise: which notebook it is} of a submission's files."""
    found = {}
    for notebook in sub.files:
        kind = next((k for k, nbs in NBS.items() if notebook.data in nbs.values()), "other")
        found[notebook.exercise] = "empty" if notebook.data == b"" else kind
    return found


def rows(intake):
    return {sub.student: sub for sub in intake.submissions}


def test_the_class_download_gives_every_student_once(download, kit):
    base, expected = download
    started = time.perf_counter()
    intake = collect(base, exercises=kit)
    assert time.perf_counter() - started < 30  # pure intake: nothing runs
    got = rows(intake)
    assert len(got) == len(intake.submissions)  # one row per key
    for key, (origin, exercises) in expected.students.items():
        sub = got[key]
        assert (sub.origin, kinds(sub), sub.problem) == (origin, exercises, ""), key
    for key, words in expected.problems.items():
        assert words in got[key].problem and not got[key].files, key
    [unmatched] = [s for s in intake.submissions if s.origin == "unmatched"]
    assert unmatched.student == "canvas.zip/instructions.ipynb"
    assert "no student found" in unmatched.problem
    assert set(got) == {*expected.students, *expected.problems, unmatched.student}


def test_what_is_left_out_is_named_with_its_reason(download, kit):
    base, expected = download
    intake = collect(base, exercises=kit)
    left = {u.path: u for u in intake.unmatched}
    assert set(left) == set(expected.left_out)
    for path, words in expected.left_out.items():
        assert words in left[path].reason, path
    assert left["bomb.zip/" + EX3].student == "bomb"
    summary = "\n".join(intake.summary())
    assert "intake: 74 submissions (30 canvas, 1 folder, 30 moodle, 13 zip)" in summary
    assert f"{len(left)} left out:" in summary and "linked.zip" in summary
    notes = {u.path: u.reason for u in intake.notes}
    older = f"canvas.zip/student01canvas_2001_7000001_{EX3}"
    assert (
        notes[older] == f"superseded by canvas.zip/student01canvas_2001_7000061_{EX3[:-6]}-1.ipynb"
    )
    online = "moodle.zip/Moodle Student04_5004_assignsubmission_onlinetext_"
    assert "online" in notes[online]


def test_lms_names_late_marks_and_times(download, kit):
    base, expected = download
    got = rows(collect(base, exercises=kit))
    assert {key for key, sub in got.items() if sub.late} == expected.late
    for key, name in expected.names.items():
        assert name in (got[key].name, got[key].login), key
    assert got["5001"].submitted == when(*WHEN)  # Moodle: the upload time it wrote in the zip
    assert got["2001"].submitted is None  # Canvas: the LATE mark only
    assert got["z01"].submitted is None  # a student's own zip: its times are the student's
    assert [f.name for f in got["2001"].files] == [f"{EX3[:-6]}-1.ipynb", EX4]
    assert [(f.name, f.exercise) for f in got["5003"].files] == [
        ("Copy of ex3 (1).ipynb", "ex3"),
        ("lrp.ipynb", "ex4"),
    ]


def test_an_extracted_download_is_the_same_as_its_zip(download, kit, tmp_path):
    base, _ = download
    for name in ("canvas", "moodle"):
        with zipfile.ZipFile(base / f"{name}.zip") as archive:
            archive.extractall(tmp_path / name)
        from_folder = rows(collect(tmp_path / name, exercises=kit))
        from_zip = rows(collect(base / f"{name}.zip", exercises=kit))
        assert set(from_folder) == set(from_zip)
        for key, sub in from_zip.items():
            assert [f.data for f in from_folder[key].files] == [f.data for f in sub.files], key
            assert from_folder[key].late == sub.late


def test_todays_layouts_and_nbgraders(tmp_path, kit):
    base = tmp_path / "subs"
    (base / "ann").mkdir(parents=True)
    (base / "ann.ipynb").write_bytes(NBS["solution"][EX3])  # a notebook and a folder: two
    (base / "ann" / "deeper").mkdir()
    (base / "ann" / "deeper" / EX4).write_bytes(NBS["solution"][EX4])
    (base / "bob.ipynb").write_bytes(NBS["exercise"][EX3])
    (base / "not an id.ipynb").write_bytes(NBS["exercise"][EX3])
    (base / "nobody").mkdir()
    (base / "grades.csv").write_text("x")
    course = tmp_path / "course"
    for student, stamp in (("cyd", "2024-05-01 12:30:00.000000 UTC"), ("dee", "soon")):
        folder = course / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text(stamp)
        (folder / EX3).write_bytes(NBS["exercise"][EX3])
    intake = collect(base, exercises=kit)
    got = rows(intake)
    assert (got["ann"].origin, [f.exercise for f in got["ann"].files]) == ("folder", ["ex4"])
    assert "a second submission for ann" in {u.path: u.reason for u in intake.unmatched}[
        "ann.ipynb"
    ]  # fmt: skip
    assert [f.exercise for f in got["bob"].files] == ["ex3"]
    assert "not a student id" in got["not an id"].problem
    assert got["nobody"].problem == "the folder holds no .ipynb notebook"
    assert "grades.csv" in {u.path for u in intake.notes}
    nbgrader = rows(collect(course, exercises=kit))
    assert nbgrader["cyd"].origin == "nbgrader"
    assert nbgrader["cyd"].submitted == datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    assert nbgrader["dee"].submitted is None and nbgrader["dee"].files


def test_links_inside_a_students_folder_are_not_followed(tmp_path, kit):
    base = tmp_path / "subs"
    (base / "eve").mkdir(parents=True)
    (base / "eve" / EX4).write_bytes(NBS["exercise"][EX4])
    (base / "eve" / EX3).symlink_to("/etc/hostname")
    (base / "eve" / "others").symlink_to(base)
    os.mkfifo(base / "eve" / "pipe.ipynb")
    (base / "fold").symlink_to(base / "eve", target_is_directory=True)
    intake = collect(base, exercises=kit)
    eve = rows(intake)["eve"]
    assert [(f.name, f.exercise, bool(f.problem)) for f in eve.files] == [
        (EX3, "ex3", True),
        (EX4, "ex4", False),
        ("pipe.ipynb", "", True),
    ]
    reasons = {u.path: u.reason for u in intake.unmatched}
    assert "symbolic link" in reasons[f"eve/{EX3}"] and "symbolic link" in reasons["eve/others"]
    assert "named pipe" in reasons["eve/pipe.ipynb"] and "symbolic link" in reasons["fold"]


def test_two_notebooks_of_one_exercise_newest_wins_or_both_are_named(tmp_path, kit):
    ex3, given = NBS["solution"][EX3], NBS["exercise"][EX3]
    (tmp_path / "subs").mkdir()
    older = [("a/ex3.ipynb", given, (2024, 5, 1, 10, 0, 0)), ("b/ex3.ipynb", ex3, WHEN)]
    same = [("a/ex3.ipynb", given, WHEN), ("b/ex3.ipynb", ex3, WHEN)]
    for student, members in (("newer", older), ("tied", same)):
        with zipfile.ZipFile(tmp_path / "subs" / f"{student}.zip", "w") as archive:
            for name, data, date_time in members:
                archive.writestr(zipfile.ZipInfo(name, date_time), data)
    intake = collect(tmp_path / "subs", exercises=kit)
    got = rows(intake)
    assert [f.data for f in got["newer"].files] == [ex3]
    assert "superseded by newer.zip/b/ex3.ipynb" in [u.reason for u in intake.notes]
    assert all("nothing says which is newer" in f.problem for f in got["tied"].files)
    assert {u.path for u in intake.unmatched} == {"tied.zip/a/ex3.ipynb", "tied.zip/b/ex3.ipynb"}


def test_any_other_lms_through_a_pattern(tmp_path, kit):
    base = tmp_path / "subs"
    base.mkdir()
    for name, data in (
        ("hw2_ada_2024-05-01-12-00-00_ex3.ipynb", NBS["exercise"][EX3]),
        ("hw2_ada_2024-05-02-09-00-00_ex3.ipynb", NBS["solution"][EX3]),
        ("hw2_bob_2024-05-01-08-00-00_lrp.ipynb", NBS["exercise"][EX4]),
        ("readme_ex3.ipynb", NBS["exercise"][EX3]),
    ):
        (base / name).write_bytes(data)
    (base / "more.zip").write_bytes(zip_bytes({"hw2_cyd_2024-05-01-08-00-00_x.ipynb": b""}))
    pattern = r"(?:.*/)?hw2_(?P<student_id>[a-z]+)_(?P<timestamp>[0-9-]+)_(?P<file_id>.+)"
    intake = collect(base, pattern=pattern, exercises=kit)
    got = rows(intake)
    assert (got["ada"].origin, [f.data for f in got["ada"].files]) == (
        "pattern", [NBS["solution"][EX3]],
    )  # fmt: skip
    assert got["ada"].submitted == datetime(2024, 5, 2, 9, tzinfo=timezone.utc)  # UTC if no zone
    assert [(f.name, f.exercise) for f in got["bob"].files] == [("lrp.ipynb", "ex4")]
    assert [(f.name, f.exercise) for f in got["cyd"].files] == [("x.ipynb", "")]
    [left] = intake.unmatched
    assert left.path == "readme_ex3.ipynb" and "does not match --pattern" in left.reason
    with pytest.raises(PatternError):
        collect(base, pattern="(?P<file>.*)", exercises=kit)


def test_a_roster_names_the_students_and_who_handed_in_nothing(download, kit, tmp_path):
    base, _ = download
    lines = ["Student,ID,SIS User ID,SIS Login ID,Section", "    Points Possible,,,,"]
    lines += [f'"Canvas{n:02d}, Student",{2000 + n},S{n},s{n},T{n % 2}' for n in range(2, 32)]
    (tmp_path / "gradebook.csv").write_text("\n".join(lines) + "\n")
    roster = read_roster(tmp_path / "gradebook.csv")
    intake = collect(base / "canvas.zip", roster=roster, exercises=kit)
    got = rows(intake)
    assert (got["2002"].name, got["2002"].sis_id, got["2002"].section) == (
        "Canvas02, Student", "S2", "T0",
    )  # fmt: skip
    assert intake.missing == ["2031"] and got["2031"].problem == NO_SUBMISSION
    assert intake.unknown == ["2001"]
    assert "1 submissions not in the roster: 2001" in intake.summary()


def test_what_is_no_download_is_refused(tmp_path, kit):
    with pytest.raises(GradingError, match="not a folder of submissions or a .zip"):
        collect(tmp_path / "missing", exercises=kit)
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(GradingError, match="not a readable zip"):
        collect(tmp_path / "fake.zip", exercises=kit)


def test_a_download_inside_a_folder_is_found(download, kit, tmp_path):
    base, _ = download
    shutil.copyfile(base / "canvas.zip", tmp_path / "canvas.zip")
    with zipfile.ZipFile(base / "moodle.zip") as archive:
        archive.extractall(tmp_path / "moodle download")
    got = rows(collect(tmp_path, exercises=kit))
    assert {s.origin for s in got.values()} == {"canvas", "moodle", "unmatched"}
    assert len(got) == 61


def test_a_canvas_student_without_a_notebook_gets_a_row_that_says_so(tmp_path, kit):
    members = {"ann_3001_1_report.pdf": b"%PDF", f"bob_3002_2_{EX3}": NBS["tiny"][EX3]}
    (tmp_path / "canvas.zip").write_bytes(zip_bytes(members))
    intake = collect(tmp_path / "canvas.zip", exercises=kit)
    got = rows(intake)
    assert got["3001"].problem == "the submission holds no .ipynb notebook"
    assert ("ann_3001_1_report.pdf", "not a notebook: not graded") in [
        (u.path, u.reason) for u in intake.notes
    ]
    assert not got["3002"].problem and intake.unmatched == []
