"""The course file (lrpkit.grading.coursefile): the guide's example, points per check, refusals."""

import re
from datetime import datetime, timedelta, timezone

import pytest

from lrpkit.grading import coursefile
from lrpkit.grading.course import ALL_EXERCISES, GradingError, load_checks, load_course
from lrpkit.grading.coursefile import CourseFileError, Settings
from lrpkit.grading.results.gradebook import Layout
from lrpkit.layout import ROOT, SOLUTIONS

GUIDE = ROOT / "docs" / "instructors.md"


def guide_example():
    (block,) = re.findall(r"```toml\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    return block


def test_the_guides_example_course_file_grades_the_kits_checks():
    settings = coursefile.parse(guide_example(), "course.toml")
    assert (settings.assignment, settings.canvas_column) == (
        "Sheet 12: Explaining VGG-16",
        "Sheet 12: Explaining VGG-16 (4711)",
    )
    assert settings.due == datetime(2025, 6, 30, 21, 59, tzinfo=timezone.utc)
    assert settings.policy.penalty(timedelta(days=1, seconds=1))[0] == 20
    checks = load_checks(SOLUTIONS, settings=settings)
    points = {check.key: check.points for check in checks}
    assert points == {
        "ex3.check_gradient_x_input": 25,
        "ex4.check_conv": 10,
        "ex4.check_lrpmodel": 5,
        "ex4.check_relevance": 10,
    }


def test_the_guide_lists_every_check_by_its_name():
    keys = [check.key for check in load_checks(SOLUTIONS, ALL_EXERCISES)]
    text = GUIDE.read_text(encoding="utf-8")
    for key in keys:
        exercise, name = key.split(".")
        assert re.search(rf"^\| {exercise}\b.*`{name}`", text, re.M), key


def test_without_a_course_file_each_exercise_shares_25_points(tiny):
    checks = load_course(tiny).checks
    assert [(c.key, c.points) for c in checks] == [
        ("ex3.check_gradient_x_input", 25),
        ("ex4.check_conv_weights", 12.5),
        ("ex4.check_conv_relevance", 12.5),
    ]


def test_points_of_some_checks_leave_the_rest_to_the_others(tiny):
    text = "[exercises.ex4]\npoints = 30\n[exercises.ex4.checks]\ncheck_conv_weights = 20\n"
    course = load_course(tiny, settings=coursefile.parse(text))
    assert [c.points for c in course.checks] == [25, 20, 10]
    layout = Layout.of(course)
    assert (layout.maximum, layout.possible["ex4"]) == ("55", "30")
    every = "[exercises.ex4.checks]\ncheck_conv_weights = 2\ncheck_conv_relevance = 3\n"
    assert Layout.of(load_course(tiny, settings=coursefile.parse(every))).maximum == "30"


@pytest.mark.parametrize(
    "text, words",
    [
        ("bonus = 1", "bonus must be true or false"),
        ("points = 3", "no setting 'points'"),
        ("[exercises.ex9]", "[exercises] has no key 'ex9'"),
        ("[exercises.ex3]\npoints = -1", "exercises.ex3.points must be a number"),
        ("[exercises.ex3]\nweight = 1", "[exercises.ex3] has no key 'weight'"),
        ("[late]\ndue = 2025-06-30", "give the time too"),
        ("[late]\npolicy = '10%/day'", "[late] policy needs [late] due"),
        ("[late]\ndue = 2025-06-30T23:59:00Z\npolicy = 'soon'", "not a policy"),
        ("[lms]\ncanvas_id = 'abc'", "canvas_id must be Canvas's numeric assignment id"),
        ("[lms]\nassignment = ''", "assignment must not be empty"),
        ("bonus = ", "not valid TOML"),
    ],
)
def test_a_course_file_that_cannot_be_read_names_the_key(text, words):
    with pytest.raises(CourseFileError) as raised:
        coursefile.parse(text, "my/course.toml")
    assert str(raised.value).startswith("my/course.toml: ") and words in str(raised.value)


def test_checks_the_solutions_do_not_have_and_too_many_points_are_refused(tiny):
    typo = coursefile.parse("[exercises.ex4.checks]\ncheck_conv = 5\n", "c.toml")
    with pytest.raises(GradingError, match="names check_conv, which no check cell of ex4"):
        load_course(tiny, settings=typo)
    much = coursefile.parse(
        "[exercises.ex4]\npoints = 5\n[exercises.ex4.checks]\ncheck_conv_weights = 9"
    )
    with pytest.raises(GradingError, match="are given 9 points, its points are 5"):
        load_course(tiny, settings=much)


def test_the_course_file_beside_the_submissions_and_the_command_line_over_it(tmp_path):
    (tmp_path / "subs").mkdir()
    assert coursefile.find(tmp_path / "subs") is None
    (tmp_path / "course.toml").write_text("bonus = true\n[late]\npolicy = 'zero'\n")
    with pytest.raises(CourseFileError, match="policy needs"):
        coursefile.read(coursefile.find(tmp_path / "subs"))
    (tmp_path / "course.toml").write_text("[late]\ndue = 2025-06-30T23:59:00Z\n")
    settings = coursefile.read(coursefile.find(tmp_path / "subs"))
    assert settings.path == tmp_path / "course.toml" and settings.rule is not None
    later = datetime(2025, 7, 1, tzinfo=timezone.utc)
    assert settings.overridden(bonus=True, due=later).due == later
    assert settings.overridden(bonus=True).bonus and not settings.bonus
    with pytest.raises(CourseFileError, match="needs a due date"):
        Settings().overridden(policy=coursefile.Policy.parse("zero"))
