"""Seeded, session-scoped fixtures shared by the tests: the stand-in VGG-16 (and its weights
saved to a file) and castle.jpg."""

import os
from pathlib import Path

import pytest

import utils

ROOT = Path(__file__).resolve().parents[1]
SHARED_CASTLE = ROOT.parent / "shared" / "data" / "castle.jpg"

# Tests never use real weights or the network: the stand-in is chosen explicitly here.
os.environ["VGG16_WEIGHTS"] = "standin"


@pytest.fixture(autouse=True, scope="session")
def _user_folders_in_a_temporary_place(tmp_path_factory):
    """Never the real ~/.config and ~/.cache: grading makes a course secret on first use
    (XDG_CONFIG_HOME) and keeps the stand-in weights in the user's cache (XDG_CACHE_HOME),
    one folder each for the whole session."""
    names = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME")
    before = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ[name] = str(tmp_path_factory.mktemp(name.split("_")[1].lower()))
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def standin_weights_file(tmp_path_factory):
    """The stand-in weights saved as every grading run of the session shares them (made by
    the first user, lrpkit.grading.run.standin.prepared), float32; their float64 copy beside."""
    from lrpkit.grading.course import load_course
    from lrpkit.grading.run.standin import prepared

    return prepared(load_course(), tmp_path_factory.mktemp("standin"))[0]


@pytest.fixture(scope="session")
def castle_file():
    """castle.jpg from the kit's data/ (copied from ../shared by `make test`) or ../shared."""
    for path in (utils.DATA / "castle.jpg", SHARED_CASTLE):
        if path.is_file():
            return path
    pytest.fail("castle.jpg not found: run `make castle` (copies ../shared/data/castle.jpg)")


@pytest.fixture(scope="session")
def castle_img(castle_file):
    return utils.load_image(castle_file)


@pytest.fixture(scope="session")
def X(castle_img):
    """The normalised castle input, float32, 1 x 3 x 224 x 224."""
    return utils.normalize(castle_img)


@pytest.fixture(scope="session")
def X64(X):
    return X.double()


@pytest.fixture(scope="session")
def standin():
    """The stand-in VGG-16, float32, eval mode. Do not modify it in a test: deep-copy first."""
    return utils.load_vgg16("standin")


@pytest.fixture(scope="session")
def standin64(standin):
    """A float64 copy of the stand-in (comparisons across implementations are done in float64)."""
    import copy

    return copy.deepcopy(standin).double()


def pytest_collection_finish(session):
    """Start pip's network-bound jobs of the tests collected (tests/pythons.py) now, so
    they run beside the other tests."""
    from pythons import BACKGROUND, NEEDS

    if session.config.option.collectonly:
        return
    names = {getattr(item, "originalname", item.name) for item in session.items}
    BACKGROUND.start([job for test, jobs in NEEDS.items() if test in names for job in jobs])


def pytest_sessionfinish(session):
    from pythons import BACKGROUND

    BACKGROUND.close()
