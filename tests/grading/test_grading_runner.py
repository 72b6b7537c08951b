"""Running one submission (lrpkit.grading.runner): the command line, the time limit, killing."""

import os
import time
from pathlib import Path

from crafting import CELL_TIMEOUT, code, good_cells, nb_bytes, write_submissions

from lrpkit.grading.course import load_course
from lrpkit.grading.pipeline import grade
from lrpkit.grading.runner import PLUGIN_NAME, RunFolders, kernel_command


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
