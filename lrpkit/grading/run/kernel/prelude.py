"""Kernel-side setup run first in every graded notebook: keep pristine references for the guard.

Loaded as text into the graded notebook's first cell (lrpkit.grading.run.notebook), which calls
``_lrpkit_prelude(get_ipython(), cache=...)`` and deletes it again: the name is the one it has
in the student's namespace for that moment. Everything it needs is imported inside it.
"""


def _lrpkit_prelude(shell, cache="", cache64="", audit=True):
    """Store pristine builtins, streams, import machinery, the functions of sys, threading,
    _thread (and importlib, os, time, which the guard uses) and the kernel's own threads in
    ``sys.modules["_lrpkit_pristine"]``, cut the kernel off the instructor's editable
    install, refuse audit hooks from here on (``audit``: code in a hook runs unseen by
    profilers, lrpkit.selfcheck.tripwire), and hand the stand-in weights from the grader's shared
    copy
    at ``cache`` (when given) to utils, and their float64 copy at ``cache64`` to the checks
    (through the guard)."""
    import _thread
    import builtins
    import sys
    import threading
    import types

    pristine = types.ModuleType("_lrpkit_pristine")
    pristine.shell = shell
    pristine.builtins_module = builtins
    pristine.builtins = dict(vars(builtins))
    import importlib
    import os
    import time

    modules = [sys, threading, _thread, importlib, os, time]  # what the guard relies on
    monitoring = getattr(sys, "monitoring", None)  # 3.12+
    pristine.tools = set()  # sys.monitoring's tools in use before any student code
    if monitoring is not None:
        modules.append(monitoring)
        pristine.tools = {i for i in range(6) if monitoring.get_tool(i) is not None}
    pristine.functions = [  # (module, {name: function, class or None (hooks)})
        (m, {k: v for k, v in vars(m).items() if callable(v) or v is None}) for m in modules
    ]
    pristine.threads = set(sys._current_frames())  # the kernel's own
    if audit:

        def refuse(event, args):
            if event == "sys.addaudithook":
                raise RuntimeError("no audit hooks while grading")  # refuses, silently

        sys.addaudithook(refuse)
    pristine.streams = (sys.stdout, sys.stderr, sys.displayhook, sys.excepthook)
    pristine.stream_class = type(sys.stdout)
    pristine.stream_methods = {
        k: v for k, v in vars(type(sys.stdout)).items() if k in ("write", "writelines", "flush")
    }
    # An editable install of the kit maps lrpkit.* to the instructor's files, the reference
    # solution lrpkit.reference.lrp included: the kernel gets only this sandbox's copies.
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    for name in [n for n in sys.modules if n.startswith("__editable__")]:
        del sys.modules[name]
    pristine.paths = (list(sys.path), list(sys.meta_path), list(sys.path_hooks))
    # Nobody looks at the figures: show them as text, saving the PNG rendering.
    for mime in ("image/png", "image/jpeg", "image/svg+xml", "application/pdf"):
        shell.display_formatter.formatters[mime].enabled = False
    pristine.standin = pristine.standin64 = None
    if cache:

        def standin(path=cache):
            """The stand-in weights from the grader's copy (the bits utils makes), or (cache64)
            the checks' float64 copy of them; memory-mapped, so the kernels share the pages."""
            import torch

            return torch.load(path, mmap=True, weights_only=True)

        import utils

        pristine.standin = utils.standin_state_dict = standin
        if cache64:
            pristine.standin64 = lambda: standin(cache64)
    sys.modules["_lrpkit_pristine"] = pristine
