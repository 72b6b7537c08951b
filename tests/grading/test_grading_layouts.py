"""What LMS names say (lrpkit.grading.intake.layouts): Canvas, Moodle, --pattern, times."""

from datetime import datetime, timezone

import pytest

from lrpkit.grading.intake.layouts import (
    Pattern,
    PatternError,
    canvas,
    moodle,
    parse_time,
    resubmission,
)

UTC = timezone.utc


@pytest.mark.parametrize(
    "name, student, login, late, order, file",
    [
        ("smithalice_1001_7890000_ex3_gradient_x_input.ipynb", "1001", "smithalice", False,
         (7890000, 0), "ex3_gradient_x_input.ipynb"),
        ("smithalice_LATE_1001_7890001_ex3_gradient_x_input-2.ipynb", "1001", "smithalice", True,
         (7890001, 2), "ex3_gradient_x_input-2.ipynb"),
        ("van_der_berg_1002_42_Copy of ex4 (1).ipynb", "1002", "van_der_berg", False, (42, 0),
         "Copy of ex4 (1).ipynb"),
        ("doe_1003_77_all.zip", "1003", "doe", False, (77, 0), "all.zip"),
    ],
)  # fmt: skip
def test_canvas_names(name, student, login, late, order, file):
    named = canvas(name)
    assert (named.student, named.login, named.late, named.order, named.file, named.origin) == (
        student, login, late, order, file, "canvas",
    )  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["ex3.ipynb", "1001.ipynb", "alice_ex3.ipynb", "Alice Smith_1001_assignsubmission_file_"],
)
def test_other_names_are_not_canvas_names(name):
    assert canvas(name) is None


def test_resubmission_suffixes():
    assert resubmission("ex3-2.ipynb") == ("ex3.ipynb", 2)
    assert resubmission("ex3.ipynb") == ("ex3.ipynb", 0)
    assert resubmission("lrp-1") == ("lrp", 1)


def test_moodle_folders_and_flat_files():
    folder = moodle("Alice  van Smith_5001_assignsubmission_file_")
    assert (folder.student, folder.name, folder.file, folder.plugin) == (
        "5001", "Alice van Smith", "", "file",
    )  # fmt: skip
    flat = moodle("Bob Doe_5002_assignsubmission_file_ex3_gradient_x_input.ipynb")
    assert (flat.student, flat.name, flat.file) == ("5002", "Bob Doe", "ex3_gradient_x_input.ipynb")
    text = moodle("Bob Doe_5002_assignsubmission_onlinetext_")
    assert text.plugin == "onlinetext"
    assert moodle("smithalice_1001_7890000_ex3.ipynb") is None


def test_a_pattern_takes_nbgraders_group_names_and_short_ones():
    nbgrader = Pattern(
        r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+\.ipynb)"
    )
    named = nbgrader.match("ps1_bitdiddle_attempt_2016-01-30-15-00-00_problem1.ipynb")
    assert (named.student, named.file, named.origin) == ("bitdiddle", "problem1.ipynb", "pattern")
    assert named.submitted == datetime(2016, 1, 30, 15, 0, tzinfo=UTC)
    short = Pattern(r"(?P<student>[^/]+)/(?P<first_name>\w+)-(?P<last_name>\w+)\.ipynb")
    named = short.match("s17/Ada-Lovelace.ipynb")
    assert (named.student, named.name, named.file, named.submitted) == (
        "s17", "Ada Lovelace", "Ada-Lovelace.ipynb", None,
    )  # fmt: skip
    assert short.match("no-folder.ipynb") is None
    with pytest.raises(ValueError, match="not a time"):
        Pattern(r"(?P<student>\w+)_(?P<timestamp>\w+)").match("ann_yesterday")


@pytest.mark.parametrize(
    "text, words",
    [("(?P<file>.*)", "no group (?P<student_id>"), ("(?P<student>[", "not a regular expression")],
)
def test_a_pattern_without_a_student_or_not_a_regex_is_refused(text, words):
    with pytest.raises(PatternError) as error:
        Pattern(text)
    assert words in str(error.value) and "--pattern" in str(error.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01T14:03:00+02:00", datetime(2024, 5, 1, 12, 3, tzinfo=UTC)),
        ("2024-05-01T14:03:00Z", datetime(2024, 5, 1, 14, 3, tzinfo=UTC)),
        ("2024-05-01 14:03:00.250000 UTC", datetime(2024, 5, 1, 14, 3, 0, 250000, tzinfo=UTC)),
        ("2024-05-01-14-03-00", datetime(2024, 5, 1, 14, 3, tzinfo=UTC)),
        ("20240501140300", datetime(2024, 5, 1, 14, 3, tzinfo=UTC)),
        ("202405011403", datetime(2024, 5, 1, 14, 3, tzinfo=UTC)),
    ],
)
def test_times(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00", "1234"])
def test_what_is_no_time_is_refused(text):
    with pytest.raises(ValueError, match="is not a time"):
        parse_time(text)
