"""Fixtures of the grading tests (lrpkit.grading): the tiny course, built once per session."""

import pytest
from crafting import tiny_course


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny course, built once (its solution notebooks are executed to store verdicts)."""
    return tiny_course.build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True, scope="session")
def _course_secret_in_a_temporary_home(tmp_path_factory):
    """The CLI makes a course secret on first use: never in the real ~/.config."""
    import os

    before = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if before is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = before
