"""The signed pipe a run's pytest plugin writes cell records to, read by the grader (grading).

The plugin (lrpkit.grading.run.plugin) writes one JSON line per cell; ``ResultPipe`` keeps the
lines that carry the run's secret, which reaches pytest on a second pipe the kernel never
inherits, so records forged by student code are ignored.
"""

import json
import os
import threading
import uuid

OUTPUT_CAP = 5_000_000  # characters of output kept per cell; the rest is dropped


class ResultPipe:
    """The pipe the plugin writes cell records to, each signed with a secret.

    The secret reaches pytest on a second pipe: neither is inherited by the kernel, so
    records forged by student code (say through /proc) lack the secret and are ignored.
    """

    MAX_LINE = 8_000_000  # a check cell's record carries its observation (a few 100 kB)
    MAX_LINES = 10_000

    def __init__(self):
        self.read_fd, self.write_fd = os.pipe()
        self.secret_read_fd, secret_write_fd = os.pipe()
        self.secret = uuid.uuid4().hex
        os.write(secret_write_fd, self.secret.encode())
        os.close(secret_write_fd)
        self.lines = []
        self.reader = None

    @property
    def pass_fds(self):
        """The descriptors pytest inherits."""
        return (self.write_fd, self.secret_read_fd)

    def environment(self):
        """Where the plugin finds the pipes and how much of a cell's output it keeps."""
        return {
            "LRPKIT_GRADE_FD": str(self.write_fd),
            "LRPKIT_GRADE_SECRET_FD": str(self.secret_read_fd),
            "LRPKIT_GRADE_OUTPUT_CAP": str(OUTPUT_CAP),
        }

    def start_reading(self):
        """Once pytest has started: close our copies of its ends and read in the background."""
        os.close(self.write_fd)
        os.close(self.secret_read_fd)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        """Keep the pipe's lines that carry the secret (bounded: it may be flooded)."""
        with os.fdopen(self.read_fd, "r", encoding="utf-8", errors="replace") as pipe:
            while line := pipe.readline(self.MAX_LINE):
                if not line.endswith("\n"):  # longer than any record: skip to its end
                    while line and not line.endswith("\n"):
                        line = pipe.readline(self.MAX_LINE)
                    continue
                if self.secret in line and len(self.lines) < self.MAX_LINES:
                    self.lines.append(line)

    def records(self, timeout=10):
        """{cell number: record} of the signed cell records, once pytest has ended."""
        self.reader.join(timeout=timeout)
        records = {}
        for line in self.lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict) or record.get("secret") != self.secret:
                continue
            if record.get("event") == "cell":
                records[record["cell"]] = record
        return records
