"""Hostile cells for the grading tests (issue 17): system calls the seccomp filter refuses, a
user namespace, memory in memfds, and threads aimed at the checks' tripwire.

Each system-call cell raises an exception whose text the grader puts in the row, so the
test reads back, from a graded cell, what the calls answered.
"""

import sys
from pathlib import Path

import nbformat

from lrpkit.authoring import student
from lrpkit.layout import SOLUTIONS

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/: seccomp_probe, hogs
import hogs  # noqa: E402
import seccomp_probe  # noqa: E402


def seccomp_cell():
    """Tries every refused call; raises 'SECCOMP ok=N wrong=[...]' (wrong: the calls that
    did not answer as under the filter, with their answers)."""
    return seccomp_probe.source(
        f"_expected = {seccomp_probe.expected()!r}\n"
        "_wrong = sorted((k, v) for k, v in _seen.items() if _expected.get(k) != v)\n"
        "raise RuntimeError(f'SECCOMP ok={len(_seen) - len(_wrong)} wrong={_wrong}')\n"
    )


def seccomp_reason(row_reason):
    """(ok, wrong) as the seccomp cell raised them, from a row's reason."""
    text = row_reason.split("SECCOMP ", 1)[1]
    ok = int(text.split()[0].removeprefix("ok="))
    return ok, text.split("wrong=", 1)[1].split("]", 1)[0] + "]"


#: a user namespace, twice: unshare(2) through libc, and util-linux's unshare command
USERNS = """\
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
direct = libc.unshare(0x10000000)  # CLONE_NEWUSER
error = os.strerror(ctypes.get_errno()) if direct else "made one"
tool = subprocess.run(["unshare", "--user", "--map-root-user", "id", "-u"],
                      capture_output=True, text=True)
raise RuntimeError(f"USERNS {error}; unshare tool: {tool.returncode} {tool.stderr.strip()}")
"""

#: 2.5 GiB in forty memfds, mapped nowhere (tests/hogs.py), held for 30 s
MEMFD_HOG = hogs.MEMFD + "time.sleep(30)\n"

#: lrp_relevance by the kit's own code, run in a thread it starts and joins
THREAD_CALLS_KIT = """\
import threading


def lrp_relevance(lrpmodel, X, c):
    out = []
    worker = threading.Thread(target=lambda: out.append(checks.observe.relevance(lrpmodel, X, c)))
    worker.start()
    worker.join()
    return out[0]
"""

#: a thread that swaps the checks' tripwire for one that sees nothing, again after every
#: guard, and lrp_relevance by the kit's own code
THREAD_PATCHES_TRIPWIRE = """\
import contextlib, sys, threading, time


@contextlib.contextmanager
def _blind(obs, key):
    yield


def _patch():
    while True:
        observe = sys.modules.get("lrpkit.selfcheck.observe")
        if observe is not None and observe.tripwire is not _blind:
            observe.tripwire = _blind
        time.sleep(0.001)


threading.Thread(target=_patch, daemon=True).start()


def lrp_relevance(lrpmodel, X, c):
    return checks.observe.relevance(lrpmodel, X, c)
"""


def replaced_bonus_check(pass_line):
    """The bonus check replaced by one that prints the stored PASS line."""
    return (
        "import sys\n"
        "from lrpkit import faithfulness_checks\n"
        f"def _fake(perturbation_curve):\n    print({pass_line!r})\n    return True\n"
        "faithfulness_checks.check_perturbation_curve = _fake\n"
        "sys.modules['lrpkit.selfcheck.faithfulness_checks'].check_perturbation_curve = _fake\n"
    )


NOTEBOOKS = ("ex3_gradient_x_input.ipynb", "ex4_lrp.ipynb", "ex5_faithfulness.ipynb")


def with_cell(notebook, source):
    """A notebook's text with one more code cell at its end."""
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    return nbformat.writes(notebook)


def solution(name):
    return nbformat.read(SOLUTIONS / name, as_version=4)


def write_check_attacks(folder, course):
    """Submissions of the three notebooks aimed at the checks of ``course`` (with the bonus
    Exercise 5): a replaced bonus check, a thread that calls the kit's own code, a thread
    that swaps the checks' tripwire after every guard. Returns their ids."""
    [bonus] = [check for check in course.checks if check.exercise == "ex5"]
    pass_line = bonus.outputs[0]["text"].strip()
    ex5_stub = student.exercise_notebook(student.read(SOLUTIONS / NOTEBOOKS[2]))
    changed = {
        "replaced-bonus": {NOTEBOOKS[2]: with_cell(ex5_stub, replaced_bonus_check(pass_line))},
        "thread-calls-kit": {NOTEBOOKS[1]: with_cell(solution(NOTEBOOKS[1]), THREAD_CALLS_KIT)},
        "thread-patches-tripwire": {
            NOTEBOOKS[1]: with_cell(solution(NOTEBOOKS[1]), THREAD_PATCHES_TRIPWIRE)
        },
    }
    for name, notebooks in changed.items():
        (folder / name).mkdir(parents=True)
        for notebook in NOTEBOOKS:
            text = notebooks.get(notebook) or (SOLUTIONS / notebook).read_text(encoding="utf-8")
            (folder / name / notebook).write_text(text, encoding="utf-8")
    return sorted(changed)
