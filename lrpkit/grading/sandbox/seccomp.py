"""The sandbox's seccomp filter: system calls no submission needs, refused (instructors, grading).

Modelled on Docker's default profile, as a list of what is refused (everything else is
allowed): new namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag; ``clone3``
answers ENOSYS, so the C library falls back to ``clone``, as under Docker), mounting, tracing
other processes, BPF, the kernel's keyrings, performance counters, userfaultfd, io_uring,
kernel modules, reboot, swap, accounting, the clock, file handles. Each answers EPERM; a
system call of another architecture (32-bit, x32) kills the process.

``program()`` compiles the filter once per process with libseccomp (``libseccomp.so.2``,
Debian's libseccomp2, through ctypes: no Python package needed) and returns it as classic
BPF, the form ``bwrap --seccomp FD`` reads and a forked process loads with
``prctl(PR_SET_SECCOMP)`` (lrpkit.grading.sandbox.zygote). ``SeccompUnavailable`` names the remedy
where libseccomp is missing.
"""

import ctypes
import errno
import functools
import os

LIBRARY = "libseccomp.so.2"
REMEDY = (
    "Install libseccomp (`apt-get install libseccomp2`, or `make sandbox`), or pass "
    "--no-sandbox to grade unconfined (the grades record it)."
)
#: refused with EPERM, as Docker's default profile refuses them (names this architecture
#: lacks are left out)
BLOCKED = (
    # namespaces: no user namespace (and its capabilities) inside the sandbox
    "unshare", "setns",
    # mounting and changing the root
    "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr",
    # other processes' memory, tracing, the kernel's own machinery
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "perf_event_open", "bpf", "userfaultfd", "lookup_dcookie", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key",
    # kernel modules, rebooting, swap, accounting, quotas, logs, ports
    "init_module", "finit_module", "delete_module", "create_module", "kexec_load",
    "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "nfsservctl", "get_kernel_syms", "query_module", "syslog", "uselib", "ustat", "sysfs",
    "_sysctl", "vhangup", "iopl", "ioperm",
    # the clock
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
    # files by handle (around the mount namespace)
    "open_by_handle_at", "name_to_handle_at",
)  # fmt: skip
#: answered ENOSYS: the C library then uses clone, whose flags the filter can see
UNSUPPORTED = ("clone3",)
#: clone flags that make a namespace (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
#: NEWNET): clone with any of them is refused
CLONE_NAMESPACES = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000)
CLONE_NAMESPACES += (0x40000000,)

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7


def SCMP_ACT_ERRNO(code):
    return 0x00050000 | (code & 0xFFFF)


class SeccompUnavailable(RuntimeError):
    """libseccomp is missing or failed; the message names the remedy."""


class _ArgCmp(ctypes.Structure):
    """libseccomp's struct scmp_arg_cmp."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _library():
    try:
        lib = ctypes.CDLL(LIBRARY, use_errno=True)
    except OSError as error:
        raise SeccompUnavailable(f"{LIBRARY} cannot be loaded ({error}). {REMEDY}") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp),
    ]  # fmt: skip
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def _check(result, what):
    if result < 0:
        raise SeccompUnavailable(f"libseccomp: {what} failed ({os.strerror(-result)}). {REMEDY}")


@functools.cache
def program():
    """The filter as classic BPF (bytes: 8 per instruction), compiled once per process."""
    lib = _library()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise SeccompUnavailable(f"libseccomp: seccomp_init failed. {REMEDY}")
    try:
        rules = [(name, SCMP_ACT_ERRNO(errno.EPERM), ()) for name in BLOCKED]
        rules += [(name, SCMP_ACT_ERRNO(errno.ENOSYS), ()) for name in UNSUPPORTED]
        rules += [
            ("clone", SCMP_ACT_ERRNO(errno.EPERM), (_ArgCmp(0, SCMP_CMP_MASKED_EQ, f, f),))
            for f in CLONE_NAMESPACES
        ]
        for name, action, comparisons in rules:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # not a system call of this architecture
                continue
            array = (_ArgCmp * max(1, len(comparisons)))(*comparisons)
            _check(lib.seccomp_rule_add_array(ctx, action, number, len(comparisons), array), name)
        fd = os.memfd_create("lrpkit-seccomp")
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    bpf = b"".join(chunks)
    if not bpf or len(bpf) % 8:
        raise SeccompUnavailable(f"libseccomp exported no filter. {REMEDY}")
    return bpf


def problem():
    """Why the filter cannot be had here (a sentence with the remedy), or None."""
    try:
        program()
    except SeccompUnavailable as error:
        return str(error)
    return None


def pipe(fds):
    """A pipe holding the filter, for ``bwrap --seccomp FD``; its read end joins fds."""
    bpf = program()
    read, write = os.pipe()
    try:
        os.write(write, bpf)  # a few kB: fits the pipe's buffer
    finally:
        os.close(write)
    fds.append(read)
    return str(read)
