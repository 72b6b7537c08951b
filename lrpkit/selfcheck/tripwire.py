"""The checks' tripwire: notice code under test calling the kit's own answering code, in any
thread (students get it with the checks; ``lrpkit.selfcheck.observe.tripwire`` uses it).

``watch(answering)`` is a context manager yielding a list that collects, while the block
runs, one line per thing the code under test must not do:

- call code that ``answering(code)`` says computes an answer, in any thread: the observing
  one, threads the code under test starts (``_thread`` and ``threading`` start them through
  a wrapper that watches them too) and the threads that were running before (the kernel's:
  a profiler is set in each; on Python 3.10-3.11 through ``_PyEval_SetProfile``, which
  Python 3.12's ``threading.setprofile_all_threads`` calls);
- switch the profiler or a tracer (``sys.setprofile``, ``sys.settrace``, ``sys.monitoring``)
  or start a thread past the wrapper;
- run its own code (a notebook cell's, a file it wrote) in a thread that was running
  before, say through a kernel thread's event loop;
- leave a thread it started running, or start one the watch cannot see.

``reset_threads()`` takes every profiler and tracer out of every other thread (the grader's
guard, before each check). What a profiler cannot see: code run through ctypes or in a
separate process, and code compiled under a library's file name. The shipped code of the
kit can be copied by hand anyway; the tripwire stops the shortcut, not that.
"""

import contextlib
import ctypes
import os
import sys
import threading

#: library threads that only do their own work (module, class name): tqdm's monitor, pyzmq's
#: collector of zero-copy messages (the kernel starts it on a large output)
LIBRARY_THREADS = {("tqdm._monitor", "TMonitor"), ("zmq.utils.garbage", "GarbageCollectorThread")}
#: profiler events of the C API (PyTrace_*), by number
EVENTS = ("call", "exception", "line", "return", "c_call", "c_exception", "c_return", "opcode")
SWITCHED = "profiler (the check's own; the code under test switched it or started a thread past it)"
LEFT = "thread watch (the check's own; a thread the code under test started is still running)"
UNSEEN = "thread watch (the check's own; the code under test started a thread it cannot see)"
ELSEWHERE = "kernel (your own code ran in one of its threads while the check watched)"


def _switches():
    """The builtins that switch profiling or tracing, or start a thread (by id)."""
    import _thread

    found = [getattr(sys, n, None) for n in ("setprofile", "settrace", "_setprofileallthreads")]
    found += [getattr(sys, "_settraceallthreads", None)]
    monitoring = getattr(sys, "monitoring", None)
    for name in ("use_tool_id", "free_tool_id", "register_callback", "set_events"):
        found.append(getattr(monitoring, name, None))
    found.append(getattr(monitoring, "set_local_events", None))
    names = ("start_new_thread", "start_new", "start_joinable_thread")  # the last: 3.13+
    starts = {n: getattr(_thread, n) for n in names if hasattr(_thread, n)}
    return {id(f) for f in (*found, *starts.values()) if f is not None}, starts


def _genuine(module, names):
    """Whether these attributes of a module are its own builtins (not replacements)."""
    for name in names:
        function = getattr(module, name, None)
        if type(function) is not type(len) or function.__self__ is not module:
            return False
        if function.__name__ != name.rsplit(".", 1)[-1] and name != "start_new":
            return False
    return True


def _installation():
    """Folders of the Python installation (venv and base): library code lives there."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return tuple(os.path.realpath(root) + os.sep for root in roots)


def _library_code(filename, roots, cache):
    """Whether a code object's file is the Python installation's (or frozen)."""
    known = cache.get(filename)
    if known is None:
        if filename.startswith("<frozen "):
            known = True
        elif filename.startswith("<") or not os.path.isabs(filename):
            known = False  # a notebook cell, exec'd text
        else:
            known = os.path.realpath(filename).startswith(roots)
        cache[filename] = known
    return known


def library_thread(thread):
    """Whether a thread is one of LIBRARY_THREADS, from the installation's own files."""
    cls = type(thread)
    if (cls.__module__, cls.__name__) not in LIBRARY_THREADS:
        return False
    module = sys.modules.get(cls.__module__)
    run = getattr(cls, "run", None)
    filename = getattr(getattr(run, "__code__", None), "co_filename", "")
    return module is not None and _library_code(filename, _installation(), {})


# ---------------------------------------------------------------- other threads' profilers


def _thread_states():
    """Pointers to the interpreter's thread states other than this thread's (3.10-3.11)."""
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Get.restype = ctypes.c_void_p
    mine, found = api.PyThreadState_Get(), []
    state = api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while state:
        if state != mine:
            found.append(state)
        state = api.PyThreadState_Next(state)
    return found


_TRACEFUNC = ctypes.PYFUNCTYPE(
    ctypes.c_int, ctypes.py_object, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p
)


def _set_others(function, name="_PyEval_SetProfile"):
    """Set a profiler (Python function, or None) on every other thread (3.10-3.11); returns
    what must stay alive while it is set."""
    setter = getattr(ctypes.pythonapi, name)
    setter.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    setter.restype = ctypes.c_int
    if function is None:
        for state in _thread_states():
            setter(state, None, None)
        return None

    def trampoline(obj, frame, what, arg):
        try:
            event = EVENTS[what] if 0 <= what < len(EVENTS) else ""
            if event in ("call", "c_call"):
                frame = ctypes.cast(frame, ctypes.py_object).value
                arg = ctypes.cast(arg, ctypes.py_object).value if arg else None
                function(frame, event, arg)
        except Exception:
            pass
        return 0

    callback = _TRACEFUNC(trampoline)
    pointer = ctypes.cast(callback, ctypes.c_void_p).value
    for state in _thread_states():
        setter(state, pointer, id(function))
    return callback, function


def _profile_others(function):
    """Set ``function`` as the profiler of every other thread (None: take it out)."""
    if hasattr(sys, "_setprofileallthreads"):  # 3.12+: sets this thread's too
        current = sys.getprofile()
        sys._setprofileallthreads(function)
        sys.setprofile(current)
        return None
    return _set_others(function)


def reset_threads():
    """No profiler and no tracer in any other thread (what code under test may have set)."""
    current = sys.getprofile(), sys.gettrace()
    if hasattr(sys, "_setprofileallthreads"):
        sys._setprofileallthreads(None)
        sys._settraceallthreads(None)
    else:
        _set_others(None)
        _set_others(None, "_PyEval_SetTrace")
    sys.setprofile(current[0])
    sys.settrace(current[1])


# ---------------------------------------------------------------- the watch


@contextlib.contextmanager
def watch(answering):
    """Collect (the yielded list) what the block's code does that it must not: calls of code
    that ``answering(code)`` says computes an answer, in any thread; switching the profiler;
    threads it starts past the wrapper or leaves running; its own code in other threads."""
    import _thread

    seen, started, roots, files = [], {}, _installation(), {}
    switches, starts = _switches()
    ours = {sys._getframe().f_code, _profile_others.__code__, _set_others.__code__}
    if not _genuine(sys, ("setprofile", "getprofile", "settrace", "_current_frames")):
        seen.append(SWITCHED)  # replaced before the check: nothing here can be trusted
    if not _genuine(_thread, starts):
        seen.append(SWITCHED)

    def observing(frame, event, arg):
        if seen:
            return
        if event == "call":
            if answering(frame.f_code):
                seen.append(_name(frame.f_code))
        elif event == "c_call" and id(arg) in switches and frame.f_code not in ours:
            seen.append(SWITCHED)

    def elsewhere(frame, event, arg):
        if event == "call" and not _library_code(frame.f_code.co_filename, roots, files):
            seen.append(ELSEWHERE)
        observing(frame, event, arg)

    def wrap(start):
        def start_watched(function, *rest, **options):
            def run(*args, **kwargs):
                sys.setprofile(observing)
                try:
                    return function(*args, **kwargs)
                finally:
                    started.pop(_thread.get_ident(), None)

            ours.add(run.__code__)
            handle = start(run, *rest, **options)  # an ident, or (3.13) a handle with one
            started[handle if isinstance(handle, int) else getattr(handle, "ident", None)] = 1
            return handle

        ours.add(start_watched.__code__)
        return start_watched

    patched = [(_thread, name, start) for name, start in starts.items()]
    for name in ("_start_new_thread", "_start_joinable_thread"):  # what Thread.start calls
        if hasattr(threading, name):
            patched.append((threading, name, getattr(threading, name)))
    before_threads = set(sys._current_frames())
    before = sys.getprofile()
    keep = _profile_others(elsewhere)
    for module, name, start in patched:
        setattr(module, name, wrap(start))
    sys.setprofile(observing)
    try:
        yield seen
    finally:
        mine = sys.getprofile() is observing
        sys.setprofile(before)
        for module, name, start in patched:
            setattr(module, name, start)
        _profile_others(None)
        del keep
        if not mine:
            seen.append(SWITCHED)
        alive = set(sys._current_frames()) - before_threads
        watched = {i for i in alive if i in started}
        if any(not library_thread(threading._active.get(i)) for i in watched):
            seen.append(LEFT)
        if alive - watched:
            seen.append(UNSEEN)


def _name(code):
    """A function as feedback names it: its file with the file's folder, and its name
    ("explorer/engine.py: relevance")."""
    folder, file = os.path.split(code.co_filename)
    return (
        f"{os.path.basename(folder)}/{file}: {code.co_name}"
        if folder
        else f"{file}: {code.co_name}"
    )
