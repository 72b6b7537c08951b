"""Running one submission (lrpkit.grading.run.runner): the command line, the time limit, killing."""

import functools
import os
import shutil
import time
from pathlib import Path

import torch
from crafting import CELL_TIMEOUT, code, good_cells, nb_bytes, write_submissions

import utils
from lrpkit.grading.course import load_course
from lrpkit.grading.pipeline import grade
from lrpkit.grading.run import standin
from lrpkit.grading.run.environment import PLUGIN_NAME, RunFolders, kernel_command
from lrpkit.grading.run.standin import (
    STANDIN_FILE,
    float64_path,
    restore_standin,
    shared_folder,
)
from lrpkit.selfcheck import config


def test_kernel_command_runs_nbval_inside_the_sandbox(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/instructor/lib")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", "/instructor/.jupyter")
    folders = RunFolders(Path("/w/job/box"), Path("/w/job/ctl"))
    argv, env = kernel_command(folders, "tok-1", cell_timeout=7, threads=3)
    assert argv[-1] == "/w/job/box/submission.ipynb"
    assert {"--nbval", "--nbval-cell-timeout=7", PLUGIN_NAME[:-3]} <= set(argv)
    assert argv[argv.index("-c") + 1] == "/w/job/ctl/pytest.ini"
    assert (env["PYTHONPATH"], env["HOME"], env["TMPDIR"]) == (
        "/w/job/box",
        "/w/job/box/home",
        "/w/job/box/tmp",
    )
    assert env["JUPYTER_CONFIG_DIR"] == "/w/job/box/home/.jupyter"
    assert (env["LRPKIT_GRADE_TOKEN"], env["OMP_NUM_THREADS"], env["VGG16_WEIGHTS"]) == (
        "tok-1",
        "3",
        "standin",
    )
    assert env["https_proxy"] == "http://127.0.0.1:9"
    assert os.environ["PYTHONPATH"] == "/instructor/lib", "the grader's own environment is kept"


def test_per_submission_timeout_kills_everything(tiny, tmp_path):
    subs = tmp_path / "subs"
    write_submissions(
        subs,
        {
            "slow.ipynb": nb_bytes(
                [
                    code(
                        "import subprocess\n"
                        "subprocess.Popen(['sleep', '300.4242'], start_new_session=True)"
                    ),
                    *[code("import time\ntime.sleep(4)") for _ in range(4)],
                    *good_cells(),
                ]
            ),
        },
    )
    course = load_course(tiny)
    started = time.monotonic()
    [result] = grade(
        subs,
        tmp_path / "out",
        workers=1,
        course=course,
        root=tiny,
        cell_timeout=CELL_TIMEOUT,
        timeout=8,
        progress=False,
    )
    assert time.monotonic() - started < 40
    assert (result.status, result.total) == ("timeout", 0)
    assert "per-submission limit" in result.reason
    import psutil

    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.info["cmdline"] == ["sleep", "300.4242"]:
                leftovers.append(proc)
        except psutil.Error:
            pass
    assert not leftovers, "a process the submission started survived"


def test_standin_cache_holds_the_weights_and_the_checks_float64_copy(
    standin_weights_file, monkeypatch
):
    """The stand-in weights as utils makes them (the session's grading runs share them:
    made once by make_standin_cache in the user's cache) and, beside them, their float64
    conversion, on which the checks' model is then built (memory-mapped, no conversion in the
    kernel)."""
    state = utils.standin_state_dict()
    path = standin_weights_file
    assert path.name == STANDIN_FILE and path.parent == shared_folder(load_course())
    assert float64_path(path) == path.with_name("standin-vgg16.float64.pt")
    for made in (path, float64_path(path)):  # read-only: a run cannot change them
        assert made.stat().st_mode & 0o777 == 0o444
    cache = torch.load(path, mmap=True, weights_only=True)
    cache64 = torch.load(float64_path(path), mmap=True, weights_only=True)
    assert list(cache) == list(cache64) == list(state)
    for name, value in state.items():
        assert torch.equal(cache[name], value)
        assert cache64[name].dtype == torch.float64 and torch.equal(cache64[name], value.double())
    converted = config._model()[0]
    monkeypatch.setattr(config, "STANDIN64", lambda: cache64)
    monkeypatch.setattr(config, "_model", functools.cache(config._model.__wrapped__))
    mapped = config._model()[0]
    assert mapped is not converted and not mapped.training
    for (name, p), q in zip(mapped.named_parameters(), converted.parameters(), strict=True):
        assert p.dtype == torch.float64 and not p.requires_grad and torch.equal(p, q), name
    X = config.grading_input()
    assert torch.equal(config.grading_model()(X), converted(X))


def test_a_changed_standin_file_is_made_again_the_other_kept(standin_weights_file, tmp_path):
    """A run that changed one of the two files (--no-sandbox): restore_standin makes that
    one again (here a copy of the float32 file), in place, and leaves the other alone."""
    path = tmp_path / standin_weights_file.name
    shutil.copyfile(standin_weights_file, path)
    os.link(float64_path(standin_weights_file), float64_path(path))
    kept = float64_path(path).stat().st_ino
    path.write_bytes(b"changed")
    restore_standin(path)
    assert float64_path(path).stat().st_ino == kept
    again = torch.load(path, weights_only=True)["features.0.weight"]
    assert again.dtype == torch.float32
    assert torch.equal(again, utils.standin_state_dict()["features.0.weight"])


def test_each_standin_file_is_made_again_in_its_own_dtype(monkeypatch, tmp_path):
    """Which dtype restore_standin makes, by the file's name (the float32 one is made for
    real above; making the 1.1 GB float64 one again proves nothing more)."""
    asked = []
    monkeypatch.setattr(standin, "_write_standin", lambda paths, course: asked.append(paths))
    for path in (tmp_path / STANDIN_FILE, float64_path(tmp_path / STANDIN_FILE)):
        restore_standin(path)
    assert asked == [
        {tmp_path / STANDIN_FILE: "float32"},
        {float64_path(tmp_path / STANDIN_FILE): "float64"},
    ]
