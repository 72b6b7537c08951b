"""A process a zygote forked, handled as a Popen (instructors, grading;
lrpkit.grading.sandbox.zygote).

Used by the grader (pytest forked into a sandbox) and by pytest's plugin in every run (its
kernel): the runner copies this file beside the plugin into the run's control folder as
``_lrpkit_forked.py``. Standard library only; nothing happens on import.
"""

import json
import os
import select
import signal
import subprocess


class Forked:
    """A child a zygote forked, as a Popen: its keeper reports {"exit": status} on ``conn``;
    closing conn (``close``, or the process holding it ending) makes the keeper kill it."""

    stdin = stdout = stderr = None

    def __init__(self, pid, conn):
        self.pid, self.conn, self.returncode = pid, conn, None

    def wait(self, timeout=None):
        while self.returncode is None:
            if not select.select([self.conn], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired("forked", timeout)
            message = self.conn.recv(4096)  # {"exit": status}
            self.returncode = json.loads(message).get("exit", -9) if message else -9
        return self.returncode

    def poll(self):
        try:
            return self.wait(0)
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return None

    def send_signal(self, signum):
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def close(self):
        self.conn.close()
