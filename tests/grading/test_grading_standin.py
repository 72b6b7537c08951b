"""The stand-in weights grading runs share (lrpkit.grading.run.standin): kept in the user's
cache under a key of what makes them, made by the first run, reused by the later ones, and
made in the run's own work folder where that cache cannot be written."""

from types import SimpleNamespace

import pytest

from lrpkit.grading.course import load_course
from lrpkit.grading.run import standin
from lrpkit.grading.run.runner import Grader
from lrpkit.grading.run.standin import STANDIN_FILE, float64_path, prepared, shared_folder


def course(code):
    return SimpleNamespace(files={"utils.py": code})


@pytest.fixture
def maker(monkeypatch):
    """make_standin_cache replaced by one that writes two small files; the paths it made."""
    made = []

    def fake(path, course=None):
        made.append(path)
        path.write_bytes(b"float32")
        float64_path(path).write_bytes(b"float64")
        return path

    monkeypatch.setattr(standin, "make_standin_cache", fake)
    return made


def test_the_key_is_what_makes_the_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = shared_folder(course(b"x = 1"))
    assert first.parent == tmp_path / "lrpkit" and first.name.startswith("standin-")
    assert shared_folder(course(b"x = 1")) == first
    assert shared_folder(course(b"x = 2")) != first, "another utils.py"
    monkeypatch.setattr(standin.metadata, "version", lambda name: "0.0.1")
    assert shared_folder(course(b"x = 1")) != first, "another torch or numpy"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert shared_folder(course(b"x = 1")).parent == tmp_path / "home" / ".cache" / "lrpkit"


def test_made_once_then_reused(maker, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    mine = course(b"x = 1")
    path, made = prepared(mine, tmp_path / "work1")
    assert made and path == shared_folder(mine) / STANDIN_FILE and maker == [path]
    said = capsys.readouterr().err
    assert str(path.parent) in said and "delete the folder" in said
    assert prepared(mine, tmp_path / "work2") == (path, False) and maker == [path]
    assert capsys.readouterr().err == ""
    float64_path(path).unlink()  # an interrupted making: both are made again
    assert prepared(mine, tmp_path / "work3") == (path, True) and maker == [path, path]


def test_made_in_the_work_folder_where_the_cache_cannot_be_written(maker, monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    (tmp_path / "work").mkdir()
    path, made = prepared(course(b"x = 1"), tmp_path / "work")
    assert made and path == tmp_path / "work" / STANDIN_FILE and maker == [path]


def test_a_grading_run_maps_the_shared_copy(standin_weights_file, tmp_path):
    """A sandboxed Grader of the kit's course takes the session's copy (made before), none
    of its own."""
    grader = Grader(load_course(), tmp_path, fork=False)
    try:
        assert grader.cache == standin_weights_file
        assert grader.cache64 == float64_path(standin_weights_file)
        assert not (tmp_path / STANDIN_FILE).exists()
    finally:
        grader.close()


def test_an_unconfined_run_makes_its_own(maker, standin_weights_file, tmp_path):
    """--no-sandbox: what a submission might change in the weights stays in this run."""
    path, made = prepared(load_course(), tmp_path, shared=False)
    assert made and path == tmp_path / STANDIN_FILE and maker == [path]
