"""Seeded, session-scoped fixtures shared by the tests: the stand-in VGG-16 (and its weights
saved to a file) and castle.jpg."""

import os
from pathlib import Path

import pytest

import utils
from lrpkit.grading.run.standin import make_standin_cache

ROOT = Path(__file__).resolve().parents[1]
SHARED_CASTLE = ROOT.parent / "shared" / "data" / "castle.jpg"

# Tests never use real weights or the network: the stand-in is chosen explicitly here.
os.environ["VGG16_WEIGHTS"] = "standin"


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


@pytest.fixture(scope="session")
def standin_weights_file(tmp_path_factory):
    """The stand-in VGG-16 weights saved once per session (float32; VGG16_WEIGHTS=<this path>
    loads them in ~0.5 s instead of rebuilding them), with their float64 copy beside them."""
    return make_standin_cache(tmp_path_factory.mktemp("standin") / "standin.pt")
