"""Kernel-side guard run before every check: undo the student's patches, re-import the checks.

Loaded as text into the cell before each check cell (lrpkit.grading.notebook), which calls
``_lrpkit_guard(get_ipython(), sandbox=..., names=...)`` and deletes it again: the name is the
one it has in the student's namespace for that moment. It needs the prelude's
``sys.modules["_lrpkit_pristine"]``; everything else it imports inside it.
"""


def _lrpkit_guard(shell, sandbox, names, config=None):
    """Restore builtins, streams and import machinery from the prelude's pristine copies, import
    utils and lrpkit.checks afresh from the sandbox's copies, and bind the check cell's
    ``names`` (checks, utils, check functions) in the shell's namespace to the fresh ones.
    ``config``: a hidden configuration's JSON; the fresh checks then observe on it and print
    the observation for the grader to judge, instead of judging themselves."""
    import sys

    pristine = sys.modules["_lrpkit_pristine"]
    pristine.builtins_module.__dict__.update(pristine.builtins)
    sys.modules["builtins"] = pristine.builtins_module
    sys.stdout, sys.stderr, sys.displayhook, sys.excepthook = pristine.streams
    for k, v in pristine.stream_methods.items():
        setattr(pristine.stream_class, k, v)
    sys.path[:], sys.meta_path[:], sys.path_hooks[:] = (list(x) for x in pristine.paths)
    sys.path_importer_cache.clear()
    for k in [k for k in sys.modules if k in ("utils", "lrpkit") or k.startswith("lrpkit.")]:
        del sys.modules[k]
    import importlib
    import os

    importlib.invalidate_caches()
    fresh = {}
    for name in ("utils", "lrpkit.checks"):
        if not os.path.isfile(os.path.join(sandbox, name.replace(".", "/") + ".py")):
            continue  # a course without utils.py
        module = fresh[name] = importlib.import_module(name)
        if os.path.dirname(os.path.realpath(module.__file__)) not in (
            os.path.realpath(sandbox),
            os.path.realpath(os.path.join(sandbox, "lrpkit")),
        ):
            raise RuntimeError(f"{name} is not the grader's copy")
    checks = fresh["checks"] = fresh["lrpkit.checks"]
    fresh["lrpkit"] = sys.modules["lrpkit"]
    # The float64 stand-in and the decoded castle (the cached _model, _X of the checks' config
    # module) take ~1 s to build: share the first fresh module's caches with later ones (they
    # copy the model per check). The references (_arrays) stay fresh from disk.
    home = sys.modules.get("lrpkit.config", checks)
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
    for k in names:
        v = ns.get(k)
        if k in fresh:
            ns[k] = fresh[k]
        elif type(v) is type(sys) and getattr(v, "__name__", None) in fresh:
            ns[k] = fresh[v.__name__]
        elif not k.startswith("_") and hasattr(checks, k):
            ns[k] = getattr(checks, k)
