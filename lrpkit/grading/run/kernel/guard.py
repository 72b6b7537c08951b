"""Kernel-side guard run before every check: undo the student's patches, stop at threads the
student's code left running, re-import the kit from the sandbox copies.

Loaded as text into the cell before each check cell (lrpkit.grading.run.notebook), which calls
``_lrpkit_guard(get_ipython(), sandbox=..., names=..., modules=...)`` and deletes it again:
the name is the one it has in the student's namespace for that moment. It needs the
prelude's ``sys.modules["_lrpkit_pristine"]``; everything else it imports inside it.
"""


def _lrpkit_guard(shell, sandbox, names, config=None, modules=(), library=(), thread_seconds=2.0):
    """Restore builtins, streams, import machinery and the functions of sys, threading,
    _thread, importlib, os and time from the prelude's pristine copies; take every profiler
    and tracer out; wait a moment for threads the student's code started (none may still
    run: ThreadLeftRunning; ``library``: [module, class name] of library threads let be,
    lrpkit.selfcheck.tripwire's); import the kit's ``modules`` afresh from the sandbox's copies
    (utils, lrpkit.selfcheck.checks and those the check cell names), and bind the check cell's
    ``names`` (checks, utils, check functions, kit modules) in the shell's namespace to the
    fresh ones. ``config``: a hidden configuration's JSON; the fresh checks then observe on
    it and print the observation for the grader to judge, instead of judging themselves.
    Everything it uses is defined or imported inside it: a thread left running could change
    the cell's namespace."""
    import sys

    pristine = sys.modules["_lrpkit_pristine"]
    shell = getattr(pristine, "shell", shell)  # the shell the prelude was given
    pristine.builtins_module.__dict__.update(pristine.builtins)
    sys.modules["builtins"] = pristine.builtins_module
    sys.stdout, sys.stderr, sys.displayhook, sys.excepthook = pristine.streams
    for k, v in pristine.stream_methods.items():
        setattr(pristine.stream_class, k, v)
    for module, saved in pristine.functions:  # sys.setprofile, threading.Thread...
        if "." not in module.__name__:
            sys.modules[module.__name__] = module
        for k, v in saved.items():
            if getattr(module, k, None) is not v:
                setattr(module, k, v)
    sys.setprofile(None)
    sys.settrace(None)
    monitoring = getattr(sys, "monitoring", None)  # 3.12+: tools the student's code took
    for tool in range(6) if monitoring is not None else ():
        if monitoring.get_tool(tool) is not None and tool not in pristine.tools:
            monitoring.set_events(tool, 0)
            for event in vars(monitoring.events).values():
                if isinstance(event, int) and event and not event & (event - 1):
                    monitoring.register_callback(tool, event, None)
            monitoring.free_tool_id(tool)
    sys.path[:], sys.meta_path[:], sys.path_hooks[:] = (list(x) for x in pristine.paths)
    sys.path_importer_cache.clear()
    kit = {*modules, "utils", "lrpkit"}
    for k in [k for k in sys.modules if k in kit or k.startswith("lrpkit.")]:
        del sys.modules[k]
    import importlib
    import os

    importlib.invalidate_caches()
    root = os.path.join(os.path.realpath(sandbox), "")

    def fresh_import(name):
        module = importlib.import_module(name)
        if not os.path.realpath(module.__file__).startswith(root):
            raise RuntimeError(f"{name} is not the grader's copy")
        return module

    def present(name):
        path = os.path.join(sandbox, name.replace(".", "/"))
        return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))

    tripwire = (
        fresh_import("lrpkit.selfcheck.tripwire") if present("lrpkit.selfcheck.tripwire") else None
    )
    if tripwire is not None:
        tripwire.reset_threads()
    import threading
    import time

    class ThreadLeftRunning(RuntimeError):
        """A thread the student's code started still runs: the check cannot watch it."""

    installation = tuple(
        os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)
    )
    library = {tuple(pair) for pair in library}

    def lets_be(thread):  # a library thread (its class and its run in the installation's files)
        cls = type(thread)
        run = getattr(getattr(cls, "run", None), "__code__", None)
        return (cls.__module__, cls.__name__) in library and os.path.realpath(
            getattr(run, "co_filename", "")
        ).startswith(installation)

    def theirs():
        """{ident: Thread or None} of the threads running but the kernel's own (recorded by
        the prelude), this one and the library threads let be."""
        found = {}
        for ident in set(sys._current_frames()) - pristine.threads - {threading.get_ident()}:
            thread = threading._active.get(ident)
            if not lets_be(thread):
                found[ident] = thread
        return found

    # wait up to thread_seconds for them to end; a thread named before is not waited for
    reported = pristine.__dict__.setdefault("reported_threads", set())
    left, deadline = theirs(), time.monotonic() + thread_seconds
    while set(left) - reported and time.monotonic() < deadline:
        thread = next(t for i, t in left.items() if i not in reported)
        if isinstance(thread, threading.Thread):
            thread.join(max(0.0, deadline - time.monotonic()))
        else:  # started through _thread: no handle to join
            time.sleep(0.02)
        left = theirs()
    if left:
        reported.update(left)
        frames = sys._current_frames()

        def where(ident, thread):  # its name, and the innermost function not threading's
            name = getattr(thread, "name", None) or f"thread {ident}"
            frame = inner = frames.get(ident)
            while frame is not None and "threading" in frame.f_code.co_filename:
                frame = frame.f_back
            frame = frame or inner
            if frame is None:
                return name
            return f"{name} in {os.path.basename(frame.f_code.co_filename)}: {frame.f_code.co_name}"

        named = sorted(where(i, t) for i, t in left.items())
        raise ThreadLeftRunning(
            f"your code left {len(named)} thread(s) running ({', '.join(named[:3])}): the "
            "check cannot watch them, so it is not graded; end your threads (join them) "
            "before the checks"
        )
    wanted = [
        "utils",
        "lrpkit.selfcheck.checks",
    ]  # the checks' home, and the helpers given to students
    short = {name.rsplit(".", 1)[-1]: name for name in modules}
    wanted += [short[k] for k in names if k in short]
    fresh = {name: fresh_import(name) for name in dict.fromkeys(wanted) if present(name)}
    checks = fresh["checks"] = fresh["lrpkit.selfcheck.checks"]
    fresh["lrpkit"] = sys.modules["lrpkit"]
    # The float64 stand-in and the decoded castle (the cached _model, _X of the checks' config
    # module) take ~1 s to build: share the first fresh module's caches with later ones (they
    # copy the model per check). The references (_arrays) stay fresh from disk.
    home = sys.modules.get("lrpkit.selfcheck.config", checks)
    if not hasattr(pristine, "caches"):
        if getattr(pristine, "standin64", None) is not None:  # the first _model() loads it
            home.STANDIN64 = pristine.standin64
        pristine.caches = {
            k: getattr(home, k)
            for k in ("_model", "_X")
            if hasattr(getattr(home, k, None), "cache_info")
        }
    for k, v in pristine.caches.items():
        setattr(home, k, v)
        if hasattr(checks, k):
            setattr(checks, k, v)
    if config is not None:
        checks.GRADING = checks.Config.from_json(config)
    if pristine.standin is not None:
        fresh["utils"].standin_state_dict = pristine.standin
    ns = shell.user_ns
    ns["__builtins__"] = pristine.builtins_module
    check_modules = [m for n, m in fresh.items() if n.endswith("checks")]
    for k in names:
        v = ns.get(k)
        if k in short and short[k] in fresh:  # checks, faithfulness_checks, utils...
            ns[k] = fresh[short[k]]
        elif k in fresh:
            ns[k] = fresh[k]
        elif type(v) is type(sys) and getattr(v, "__name__", None) in fresh:
            ns[k] = fresh[v.__name__]
        elif not k.startswith("_"):  # a check function by its own name
            for module in check_modules:
                if hasattr(module, k) and (k.startswith("check_") or module is checks):
                    ns[k] = getattr(module, k)
                    break
