"""Memory the watchdog cannot see, held by code run in the sandbox: tests/test_sandbox.py runs
it directly, tests/grading/hostile.py hands it in as a cell."""

#: 2.5 GiB in forty memfds of 64 MiB (below the file size limit), mapped nowhere: in no
#: process's resident set. What follows it (a print, a sleep) runs while it is held.
MEMFD = """\
import os, time
fds, block = [], b"m" * (1 << 20)
for i in range(40):
    fd = os.memfd_create(f"hog{i}")
    for _ in range(64):
        os.write(fd, block)
    fds.append(fd)
"""
