"""pytest plugin loaded into every nbval run of the grader: one signed record per cell on a pipe.

Instructors only; not for students. lrpkit.grading.run.runner copies this file into each run's
control folder and loads it with ``-p``. It reports one JSON line per notebook cell
(outcome, stdout, error) on a pipe whose file descriptor the grader passes in
LRPKIT_GRADE_FD, each line carrying a secret read from a second pipe
(LRPKIT_GRADE_SECRET_FD): the kernel inherits neither, so student code cannot write results
the grader would believe. It also caps what nbval keeps of a cell's output, so a submission
printing gigabytes cannot exhaust the grader. Where the grader runs a zygote
(lrpkit.grading.sandbox.zygote), it asks it for the kernel on the socket in LRPKIT_KERNEL_FD instead
of starting ``python -m ipykernel_launcher``, and starts it itself when the zygote says no.
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
_kernel_fd = os.environ.pop("LRPKIT_KERNEL_FD", None)
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


def _fd(stream, default):
    """A Popen stream argument (None, a descriptor, a file) as a descriptor (OSError: a pipe)."""
    if stream is None:
        return default
    fd = stream if isinstance(stream, int) else stream.fileno()
    if fd < 0:
        raise OSError("the zygote's kernel takes no pipes")
    return fd


def _fork_kernels(fd):
    """Ask the zygote for the kernel (once); start it ourselves if it says no."""
    import socket

    from jupyter_client.provisioning import local_provisioner

    launch = local_provisioner.launch_kernel
    conn = socket.socket(fileno=int(fd))

    def launch_kernel(cmd, stdin=None, stdout=None, stderr=None, env=None, cwd=None, **kw):
        nonlocal conn
        asked, conn = conn, None
        if asked is not None and cmd[1:3] == ["-m", "ipykernel_launcher"]:
            null = os.open(os.devnull, os.O_RDWR)
            try:
                stdio = [_fd(stdin, null), _fd(stdout, 1), _fd(stderr, 2)]
                message = json.dumps({"cmd": cmd, "cwd": cwd, "env": env or dict(os.environ)})
                socket.send_fds(asked, [message.encode()], stdio)
                reply = json.loads(asked.recv(1 << 16) or b"{}")
                if "pid" in reply:
                    from _lrpkit_forked import Forked  # lrpkit/grading/run/forked.py, beside us

                    return Forked(reply["pid"], asked)
            except (OSError, ValueError):
                pass
            finally:
                os.close(null)
            asked.close()
        return launch(cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd, **kw)

    local_provisioner.launch_kernel = launch_kernel


DIED = "Kernel died while the cell ran"
SLICE = 1.0  # seconds between looks at whether the kernel still runs, while waiting on it


def _notice_death():
    """Wait for kernel messages in slices, raising DIED when the kernel is gone: nbval would
    wait out the cell timeout for a kernel that exited, crashed or was killed."""
    import time
    from queue import Empty

    from nbval.kernel import RunningKernel

    get = RunningKernel.get_message

    def get_message(self, stream, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE if deadline is None else min(SLICE, deadline - time.monotonic())
            try:
                return get(self, stream, timeout=max(left, 0))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                if not self.is_alive():
                    raise RuntimeError(DIED) from None

    RunningKernel.get_message = get_message


def pytest_configure(config):
    _cap_outputs()
    _store_history()
    _notice_death()
    if _kernel_fd:
        _fork_kernels(_kernel_fd)


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
