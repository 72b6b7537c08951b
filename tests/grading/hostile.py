"""Hostile cells for the grading tests (issue 17): system calls the seccomp filter refuses, a
user namespace, memory in memfds, and threads aimed at the checks' tripwire.

Each system-call cell raises an exception whose text the grader puts in the row, so the
test reads back, from a graded cell, what the calls answered.
"""

import sys
from pathlib import Path

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
