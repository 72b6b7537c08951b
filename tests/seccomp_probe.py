"""A program that tries every system call the sandbox's seccomp filter refuses (tests).

``source()`` is Python code that prints one JSON line: {call: "ok" or the errno's name}, each
call made through libc's syscall() with arguments that make it fail harmlessly (or do
nothing) where it is allowed, so that without the filter most answer something else than
EPERM. It runs as a sandboxed program (tests/test_sandbox.py) and as a graded cell
(tests/grading/test_grading_hostile.py).
"""

import ctypes
import errno

from lrpkit.grading.sandbox import seccomp

CLONE_SIGHAND = 0x800  # without CLONE_VM: EINVAL before any namespace is made, where allowed
#: arguments other than zeros, where zeros could do something
ARGS = {
    "setns": (-1, 0),
    "ptrace": (-1, 0, 0, 0),  # no such request: EIO where allowed
    "keyctl": (-1, 0, 0, 0, 0),
    "pidfd_getfd": (-1, 0, 0),
    "quotactl_fd": (-1, 0, 0, 0),
    "kcmp": (-1, -1, 0, 0, 0),
    "process_vm_readv": (-1, 0, 0, 0, 0, 0),
    "process_vm_writev": (-1, 0, 0, 0, 0, 0),
}
PREFIX = "SECCOMP"


def calls():
    """{label: (number, args)} for every refused call on this architecture, clone once per
    namespace flag."""
    lib = ctypes.CDLL(seccomp.LIBRARY)
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    number = {name: lib.seccomp_syscall_resolve_name(name.encode()) for name in ("clone",)}
    found = {}
    for name in (*seccomp.BLOCKED, *seccomp.UNSUPPORTED):
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr >= 0:
            found[name] = (nr, ARGS.get(name, (0, 0, 0, 0, 0, 0)))
    for flag in seccomp.CLONE_NAMESPACES:
        found[f"clone {flag:#x}"] = (number["clone"], (flag | CLONE_SIGHAND, 0, 0, 0, 0))
    return found


def source(ending=None):
    """The probe program, with the numbers of this architecture; ``ending``: what it does with
    the answers (``_seen``) instead of printing them."""
    ending = ending or f"print({PREFIX!r} + json.dumps(_seen), flush=True)\n"
    return (
        f"""\
import ctypes, errno, json, os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_seen = {{}}
for _label, (_nr, _args) in {calls()!r}.items():
    ctypes.set_errno(0)
    _result = _libc.syscall(ctypes.c_long(_nr), *(ctypes.c_long(a) for a in _args))
    _seen[_label] = "ok" if _result != -1 else errno.errorcode.get(ctypes.get_errno(), "?")
_status = dict(line.split(":", 1) for line in open("/proc/self/status"))
_seen["Seccomp"] = _status.get("Seccomp", "").strip()
"""
        + ending
    )


def expected():
    """What every call answers under the filter."""
    found = {label: "EPERM" for label in calls()}
    found.update({name: "ENOSYS" for name in seccomp.UNSUPPORTED})
    found["Seccomp"] = "2"
    return found


def read(text):
    """The probe's JSON from its output (None if it printed none)."""
    import json

    for line in text.splitlines():
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX) :])
    return None


assert errno.EPERM  # the names above are errno's
