"""Reading the LMS's roster exports (lrpkit.grading.intake.roster) and joining them to
submissions."""

import pytest

from lrpkit.grading.intake.roster import NO_SUBMISSION, RosterError, join, read_roster
from lrpkit.grading.intake.submissions import Submission

CANVAS = (
    "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,LRP (1234)\n"
    "    Points Possible,,,,,50\n"
    '"Smith, Alice",1001,S-1,asmith,Tutorial A,\n'
    '"Doe, Bob",1002,S-2,bdoe,Tutorial B,\n'
    '"Student, Test",9999,,,Tutorial A,\n'
)
MOODLE = (
    "Identifier,Full name,ID number,Email address,Status,Grade,Maximum Grade,"
    "Grade can be changed,Last modified (submission),Feedback comments\n"
    "Participant 5001,Alice Smith,S-1,alice@uni.example,Submitted for grading,,50,Yes,,\n"
    "Participant 5002,Bob Doe,S-2,bob@uni.example,No submission,,50,Yes,,\n"
)
PARTICIPANTS = (
    "First name;Last name;ID number;Email address;Roles;Groups\n"
    "Alice;Smith;S-1;alice@uni.example;Student;G1\n"
    "Bob;Doe;S-2;bob@uni.example;Student;G2\n"
)


def roster(tmp_path, text, name="roster.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return read_roster(path)


def test_canvas_gradebook_export(tmp_path):
    found = roster(tmp_path, CANVAS)
    assert found.kind == "canvas"
    assert [(p.key, p.name, p.login, p.sis_id, p.section) for p in found.people] == [
        ("1001", "Smith, Alice", "asmith", "S-1", "Tutorial A"),
        ("1002", "Doe, Bob", "bdoe", "S-2", "Tutorial B"),
    ]
    assert len(found.skipped) == 2 and "test student" in found.skipped[1]


def test_moodle_grading_worksheet(tmp_path):
    found = roster(tmp_path, MOODLE)
    assert found.kind == "moodle"
    alice = found.people[0]
    assert (alice.key, alice.name, alice.sis_id, alice.email) == (
        "5001", "Alice Smith", "S-1", "alice@uni.example",
    )  # fmt: skip


def test_moodle_participants_export_is_found_by_name(tmp_path):
    found = roster(tmp_path, PARTICIPANTS)
    assert found.kind == "moodle-participants"
    assert found.find("5002", name="Bob  Doe").section == "G2"
    assert found.find("5003", name="Carl Ek") is None


def test_people_are_found_by_id_sis_ids_login_or_name(tmp_path):
    found = roster(tmp_path, CANVAS)
    assert found.find("1002").name == "Doe, Bob"
    assert found.find("asmith").key == "1001"  # today's layouts: the file named by login
    assert found.find("S-2").key == "1002"
    assert found.find("x", name="Alice Smith").key == "1001"  # "Last, First" either way


@pytest.mark.parametrize(
    "text, words",
    [
        ("Name,Points\nAlice,3\n", "not a gradebook export"),
        (b"PK\x03\x04\x14\x00 an xlsx", "not a CSV file"),
        (b"\xff\xfe\x00S", "not UTF-8"),
        ("Student,ID\nA,1\nB,1\n", "the id 1 is on more than one row"),
        ("", "is empty"),
    ],
)
def test_what_is_no_roster_is_refused_with_what_to_give(tmp_path, text, words):
    with pytest.raises(RosterError, match=words):
        roster(tmp_path, text)


def test_a_missing_or_linked_roster_is_named(tmp_path):
    with pytest.raises(RosterError, match="missing.csv"):
        read_roster(tmp_path / "missing.csv")
    (tmp_path / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    (tmp_path / "elsewhere.csv").write_text(CANVAS)
    with pytest.raises(RosterError, match="symbolic link"):
        read_roster(tmp_path / "link.csv")


def test_join_fills_rekeys_and_lists_who_is_missing_or_unknown(tmp_path):
    found = roster(tmp_path, CANVAS)
    subs = [
        Submission("asmith", [], origin="folder"),  # named by login: re-keyed to 1001
        Submission("1001", [], origin="canvas"),  # a second one of Alice
        Submission("7777", [], origin="canvas"),
        Submission("odd.ipynb", [], problem="no student", origin="unmatched"),
    ]
    subs, missing, unknown, twice = join(subs, found)
    rows = {s.student: s for s in subs}
    assert (rows["1001"].name, rows["1001"].sis_id, rows["1001"].section) == (
        "Smith, Alice", "S-1", "Tutorial A",
    )  # fmt: skip
    assert rows["1002"].problem == NO_SUBMISSION and rows["1002"].origin == "roster"
    assert (missing, unknown) == (["1002"], ["7777"])
    [(key, reason, student)] = twice
    assert (key, student) == ("1001", "1001") and "a second submission for 1001" in reason
    assert rows["1001 (second for 1001)"].origin == "unmatched"
    assert "odd.ipynb" in rows
