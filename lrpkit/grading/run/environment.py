"""The folders, command line and environment of one run of a graded notebook (grading).

``RunFolders`` names a run's two folders: the kernel's sandbox folder (kit copies, HOME, TMPDIR,
the graded notebook) and the grader's control folder (the plugin, pytest.ini, the log).
``kernel_command`` is the ``pytest --nbval`` command line that runs the notebook, and
``kernel_environment`` its environment: the grader's, less its own settings, HOME and TMPDIR
in the sandbox folder, the stand-in weights, no network, and the run's token (``TOKEN``, by
which lrpkit.grading.run.runner kills every process of the run).
"""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

CELL_TIMEOUT = 120  # seconds per cell
PLUGIN_NAME = "_lrpkit_grade_plugin.py"  # its name in each run's control folder
FORKED_NAME = "_lrpkit_forked.py"  # beside the plugin
TOKEN = "LRPKIT_GRADE_TOKEN"  # environment variable marking every process of a run
#: environment variables of the grader that never reach a kernel
DROPPED_PREFIXES = ("JUPYTER", "IPYTHON", "PYTEST", "MPL", "LRPKIT", "VGG16")
DROPPED = ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME")
NO_PROXY = "http://127.0.0.1:9"  # grading never downloads: HTTP(S) through it fails fast


@dataclass(frozen=True)
class RunFolders:
    """The folders of one run: the kernel's sandbox and the grader's control folder."""

    sandbox: Path  # the kernel's working folder: kit copies, home, tmp, the notebook
    control: Path  # pytest's: the plugin, pytest.ini, the log

    @property
    def notebook(self):
        return self.sandbox / "submission.ipynb"

    @property
    def plugin(self):
        return self.control / PLUGIN_NAME

    @property
    def ini(self):
        return self.control / "pytest.ini"

    @property
    def log(self):
        return self.control / "pytest.log"


def kernel_environment(sandbox, token, threads):
    """The environment of a run: the grader's, less its own settings, HOME and TMPDIR in the
    sandbox, the stand-in weights, no network, and the run's token."""
    home = sandbox / "home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(DROPPED_PREFIXES) and key not in DROPPED
    }
    env.update(
        HOME=str(home),
        TMPDIR=str(sandbox / "tmp"),
        PYTHONPATH=str(sandbox),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        IPYTHONDIR=str(home / ".ipython"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / ".local/share/jupyter/runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        MPLCONFIGDIR=str(home / ".matplotlib"),
        MPLBACKEND="Agg",
        VGG16_WEIGHTS="standin",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        http_proxy=NO_PROXY,
        https_proxy=NO_PROXY,
        HTTP_PROXY=NO_PROXY,
        HTTPS_PROXY=NO_PROXY,
        no_proxy="",
        NO_PROXY="",
        **{TOKEN: token},
    )
    return env


def kernel_command(folders, token, cell_timeout=CELL_TIMEOUT, threads=1):
    """The command line (argv, env) that runs a sandbox's graded notebook under pytest --nbval.

    Run it with cwd=folders.control. A wrapper (such as an isolating sandbox) goes here.
    """
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN_NAME[:-3],
        "-p",
        "nbval.plugin",
        "--nbval",
        "--nbval-current-env",
        f"--nbval-cell-timeout={cell_timeout}",
        "--nbval-kernel-startup-timeout=60",
        "-c",
        str(folders.ini),
        "--rootdir",
        str(folders.sandbox),
        "-q",
        "--tb=no",
        "-W",
        "ignore::DeprecationWarning",
        str(folders.notebook),
    ]
    return argv, kernel_environment(folders.sandbox, token, threads)
