"""pytest plugin loaded into every nbval run of the grader: one signed record per cell on a pipe.

Instructors only; not for students. lrpkit.grading.runner copies this file into each run's
control folder and loads it with ``-p``. It reports one JSON line per notebook cell
(outcome, stdout, error) on a pipe whose file descriptor the grader passes in
LRPKIT_GRADE_FD, each line carrying a secret read from a second pipe
(LRPKIT_GRADE_SECRET_FD): the kernel inherits neither, so student code cannot write results
the grader would believe. It also caps what nbval keeps of a cell's output, so a submission
printing gigabytes cannot exhaust the grader.
"""

import json
import os
import sys

import pytest

# jsonschema (imported by nbformat, imported by nbval) builds an IRI grammar with lark for
# an optional format check when rfc3987_syntax is installed: ~1-3 s per run, for a check no
# notebook needs. This plugin loads before nbval, so blocking that import here saves it.
sys.modules.setdefault("rfc3987_syntax", None)

CAP = int(os.environ.pop("LRPKIT_GRADE_OUTPUT_CAP", "2000000"))  # characters per cell
NOTICE = "\n[... output cut by the grader: more than {} characters ...]\n"
_fd = os.environ.pop("LRPKIT_GRADE_FD", None)
_out = os.fdopen(int(_fd), "w", buffering=1, encoding="utf-8") if _fd else None
_secret_fd = os.environ.pop("LRPKIT_GRADE_SECRET_FD", None)
SECRET = ""
if _secret_fd:
    SECRET = os.read(int(_secret_fd), 256).decode()
    os.close(int(_secret_fd))
OUTPUTS = ("stream", "display_data", "execute_result", "update_display_data", "error")


def emit(record):
    if _out is not None:
        _out.write(json.dumps({**record, "secret": SECRET}) + "\n")
        _out.flush()


def _size(content):
    if "text" in content:
        return len(content["text"])
    return sum(len(str(value)) for value in content.get("data", {}).values()) + len(
        str(content.get("traceback", ""))
    )


def _cap_outputs():
    """Wrap nbval's message reader: past CAP characters per cell, outputs are dropped."""
    from nbval.plugin import IPyNbFile

    read = IPyNbFile.get_kernel_message
    used = {}

    def get_kernel_message(self, timeout=None, stream="iopub"):
        msg = read(self, timeout=timeout, stream=stream)
        if msg.get("msg_type") not in OUTPUTS or msg["msg_type"] == "error":
            return msg
        key = msg.get("parent_header", {}).get("msg_id")
        before = used.get(key, 0)
        used[key] = before + _size(msg.get("content", {}))
        if used[key] > CAP:
            if before <= CAP:
                msg["msg_type"] = "stream"
                msg["content"] = {"name": "stdout", "text": NOTICE.format(CAP)}
            else:
                msg["msg_type"] = "comm_dropped"  # nbval skips comm_* messages silently
        return msg

    IPyNbFile.get_kernel_message = get_kernel_message


def _store_history():
    """Run cells as Jupyter does (store_history=True): nbval's store_history=False keeps a
    trailing ``;`` from hiding a cell's value, so ``checks.check_x(...);`` would show True."""
    from nbval.kernel import RunningKernel

    def execute_cell_input(self, cell_input, allow_stdin=None):
        return self.kc.execute(
            cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False
        )

    RunningKernel.execute_cell_input = execute_cell_input


def pytest_configure(config):
    _cap_outputs()
    _store_history()


def _text(outputs):
    parts = []
    for out in outputs or []:
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("display_data", "execute_result"):
            parts.append(str(out.get("data", {}).get("text/plain", "")) + "\n")
    return "".join(parts)


#: characters of a cell's output reported: a check cell's whole observation, else the end
KEPT, KEPT_CHECK = 4000, 6_000_000


def _kept(item):
    tags = (getattr(item, "cell", None) or {}).get("metadata", {}).get("tags", [])
    return KEPT_CHECK if "check" in tags else KEPT


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        errors = [
            (out.get("ename", ""), str(out.get("evalue", ""))[:2000])
            for out in getattr(item, "test_outputs", None) or []
            if out.get("output_type") == "error"
        ]
        message = ""
        if call.excinfo is not None:
            message = str(call.excinfo.value)[:2000]
        emit(
            {
                "event": "cell",
                "cell": getattr(item, "cell_num", None),
                "outcome": report.outcome,  # an xpass (after a timed-out cell) is "passed"
                "seconds": round(report.duration, 3),
                "stdout": _text(getattr(item, "test_outputs", None))[-_kept(item) :],
                "error": list(errors[-1]) if errors else None,
                "message": message,
            }
        )
