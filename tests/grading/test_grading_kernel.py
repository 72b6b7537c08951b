"""Kernel-side code (lrpkit.grading.run.kernel): the prelude and the guard, run in this process
(the prelude's refusal of audit hooks, which lasts, in a process of its own).

This process stands in for a kernel: a fake shell (a namespace and display formatters), a
sandbox folder with its own utils.py and lrpkit/selfcheck/checks.py first on sys.path, and a stream
of a
Python class as sys.stdout (as ipykernel's). The interpreter's modules, import machinery,
builtins and streams are put back afterwards.
"""

import builtins
import io
import sys
import threading
import time
import types

import pytest
import torch

from lrpkit.grading.run.kernel.guard import _lrpkit_guard
from lrpkit.grading.run.kernel.prelude import _lrpkit_prelude
from lrpkit.selfcheck.tripwire import LIBRARY_THREADS

IMAGES = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf")
CHECKS = """\
import functools


@functools.cache
def _model():
    return object()


def check_conv(Conv):
    print("PASS check_conv")
"""
UTILS = "def standin_state_dict():\n    raise AssertionError('made again instead of loaded')\n"


class Stream(io.StringIO):
    """sys.stdout of a kernel: its class defines write, as ipykernel's OutStream does."""

    def write(self, text):
        return super().write(text)

    def flush(self):
        pass


class EditableFinder:
    """Stands for the meta path finder of an editable install of the kit."""

    def find_spec(self, name, path=None, target=None):
        return None


def sandbox_with_kit(folder):
    (folder / "lrpkit" / "selfcheck").mkdir(parents=True)
    (folder / "lrpkit" / "__init__.py").write_text("")
    (folder / "lrpkit" / "selfcheck" / "__init__.py").write_text("")
    (folder / "lrpkit" / "selfcheck" / "checks.py").write_text(CHECKS)
    (folder / "utils.py").write_text(UTILS)
    return folder


def kernel_streams(monkeypatch):
    """Streams as in a kernel (set in the test: pytest sets its own before each test runs)."""
    monkeypatch.setattr(sys, "stdout", Stream())
    monkeypatch.setattr(sys, "stderr", Stream())


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    sandbox = sandbox_with_kit(tmp_path / "box")
    formatters = {mime: types.SimpleNamespace(enabled=True) for mime in (*IMAGES, "text/plain")}
    shell = types.SimpleNamespace(
        user_ns={}, display_formatter=types.SimpleNamespace(formatters=formatters)
    )
    cache = tmp_path / "standin.pt"
    torch.save({"w": torch.arange(3.0)}, cache)
    torch.save({"w": torch.ones(2, dtype=torch.float64)}, tmp_path / "standin.float64.pt")
    modules, meta_path, path_hooks = dict(sys.modules), list(sys.meta_path), list(sys.path_hooks)
    monkeypatch.syspath_prepend(str(sandbox))  # put back by monkeypatch
    for name in [n for n in sys.modules if n in ("utils", "lrpkit") or n.startswith("lrpkit.")]:
        del sys.modules[name]  # this process's utils and lrpkit are the kit's, not the sandbox's
    sys.meta_path.insert(0, EditableFinder())
    sys.modules["__editable___kit_finder"] = types.ModuleType("__editable___kit_finder")
    try:
        cache64 = tmp_path / "standin.float64.pt"
        yield types.SimpleNamespace(
            shell=shell, sandbox=sandbox, cache=cache, cache64=cache64, tmp_path=tmp_path
        )
    finally:
        for name in set(sys.modules) - set(modules):
            del sys.modules[name]
        sys.modules.update(modules)
        sys.meta_path[:], sys.path_hooks[:] = meta_path, path_hooks
        sys.path_importer_cache.clear()


def test_prelude_keeps_pristine_state_and_cuts_off_the_editable_install(kernel, monkeypatch):
    kernel_streams(monkeypatch)
    _lrpkit_prelude(kernel.shell, cache=str(kernel.cache), cache64=str(kernel.cache64), audit=False)
    pristine = sys.modules["_lrpkit_pristine"]
    assert pristine.builtins["print"] is print and pristine.streams[0] is sys.stdout
    assert set(pristine.stream_methods) == {"write", "flush"}
    assert not [f for f in sys.meta_path if "editable" in repr(f).lower()]
    assert not [n for n in sys.modules if n.startswith("__editable__")]
    formatters = kernel.shell.display_formatter.formatters
    assert [formatters[mime].enabled for mime in IMAGES] == [False] * 4
    assert formatters["text/plain"].enabled
    utils = sys.modules["utils"]
    assert utils.__file__ == str(kernel.sandbox / "utils.py")
    assert torch.equal(utils.standin_state_dict()["w"], torch.arange(3.0))
    assert torch.equal(pristine.standin64()["w"], torch.ones(2, dtype=torch.float64))


def test_guard_undoes_patches_and_binds_fresh_checks(kernel, monkeypatch):
    kernel_streams(monkeypatch)
    _lrpkit_prelude(kernel.shell, cache=str(kernel.cache), cache64=str(kernel.cache64), audit=False)
    pristine = sys.modules["_lrpkit_pristine"]
    stdout, write = sys.stdout, Stream.write
    ns = kernel.shell.user_ns
    # what a student's cells may do: patch print, the stream and its class, the checks
    fake_print = lambda *args, **kwargs: None
    monkeypatch.setattr(builtins, "print", fake_print)
    monkeypatch.setattr(Stream, "write", lambda self, text: len(text))
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    sys.path.insert(0, str(kernel.tmp_path / "elsewhere"))
    fake = types.ModuleType("lrpkit.selfcheck.checks")
    fake.check_conv = lambda Conv: "PASS"
    ns.update(checks=fake, mine=fake, check_conv=fake.check_conv, Conv="the student's")
    ns["__builtins__"] = {"print": fake_print}

    names = ["Conv", "_", "check_conv", "checks", "mine", "utils"]
    _lrpkit_guard(kernel.shell, sandbox=str(kernel.sandbox), names=names)
    assert builtins.print is pristine.builtins["print"] is not fake_print
    assert sys.stdout is stdout and Stream.write is write
    assert str(kernel.tmp_path / "elsewhere") not in sys.path
    checks = sys.modules["lrpkit.selfcheck.checks"]
    assert checks.__file__ == str(kernel.sandbox / "lrpkit" / "selfcheck" / "checks.py")
    assert ns["checks"] is ns["mine"] is checks and ns["check_conv"] is checks.check_conv
    assert ns["utils"] is sys.modules["utils"] and ns["Conv"] == "the student's"
    assert ns["__builtins__"] is builtins
    assert ns["utils"].standin_state_dict is pristine.standin
    assert checks.STANDIN64 is pristine.standin64, "the checks' model: the float64 copy"

    # the next guard imports the checks afresh but shares their cached model
    model = checks._model()
    _lrpkit_guard(kernel.shell, sandbox=str(kernel.sandbox), names=names)
    assert ns["checks"] is not checks and ns["checks"]._model() is model


def test_guard_refuses_checks_that_are_not_the_sandboxs_copy(kernel, monkeypatch):
    kernel_streams(monkeypatch)
    _lrpkit_prelude(kernel.shell, audit=False)
    assert sys.modules["_lrpkit_pristine"].standin is None
    assert sys.modules["_lrpkit_pristine"].standin64 is None
    other = sandbox_with_kit(kernel.tmp_path / "other")
    with pytest.raises(RuntimeError, match="utils is not the grader's copy"):
        _lrpkit_guard(kernel.shell, sandbox=str(other), names=["checks"])


FAITHFULNESS = "def check_perturbation_curve(perturbation_curve):\n    print('PASS')\n"


def test_guard_restores_every_kit_module_sys_and_threading(kernel, monkeypatch):
    """A replaced bonus check module, sys.setprofile and threading.Thread, a tracer: all
    undone; every kit module the check cell names is the sandbox's copy, imported afresh."""
    kernel_streams(monkeypatch)
    (kernel.sandbox / "lrpkit" / "selfcheck" / "faithfulness_checks.py").write_text(FAITHFULNESS)
    _lrpkit_prelude(kernel.shell, audit=False)
    setprofile, thread = sys.setprofile, threading.Thread
    monkeypatch.setattr(sys, "setprofile", lambda function: None)
    monkeypatch.setattr(threading, "Thread", object)
    stub = types.SimpleNamespace(check_perturbation_curve=lambda f: print("PASS"))
    ns = kernel.shell.user_ns
    ns.update(faithfulness_checks=stub, check_perturbation_curve=stub.check_perturbation_curve)
    tracer = sys.gettrace()
    try:
        sys.settrace(lambda *args: None)
        names = ["_", "check_perturbation_curve", "faithfulness_checks", "perturbation_curve"]
        modules = [
            "lrpkit",
            "lrpkit.selfcheck.checks",
            "lrpkit.selfcheck.faithfulness_checks",
            "utils",
        ]
        _lrpkit_guard(kernel.shell, sandbox=str(kernel.sandbox), names=names, modules=modules)
        assert sys.gettrace() is None
    finally:
        sys.settrace(tracer)
    assert sys.setprofile is setprofile and threading.Thread is thread
    fresh = sys.modules["lrpkit.selfcheck.faithfulness_checks"]
    assert fresh.__file__ == str(kernel.sandbox / "lrpkit" / "selfcheck" / "faithfulness_checks.py")
    assert ns["faithfulness_checks"] is fresh
    assert ns["check_perturbation_curve"] is fresh.check_perturbation_curve


def test_guard_waits_for_threads_and_stops_at_one_left_running(kernel, monkeypatch):
    kernel_streams(monkeypatch)
    _lrpkit_prelude(kernel.shell, audit=False)
    guard = dict(sandbox=str(kernel.sandbox), names=["checks"], modules=["lrpkit.selfcheck.checks"])
    threading.Thread(target=time.sleep, args=(0.3,), name="short").start()
    _lrpkit_guard(kernel.shell, **guard, thread_seconds=5)  # waits for it to end
    from tqdm import tqdm

    with tqdm(range(3), file=io.StringIO()):  # tqdm's monitor thread starts and lives on
        assert tqdm.monitor is not None and tqdm.monitor.is_alive()
    guard["library"] = [list(pair) for pair in LIBRARY_THREADS]
    _lrpkit_guard(kernel.shell, **guard, thread_seconds=0.5)  # let be
    stop = threading.Event()
    threading.Thread(target=stop.wait, name="forever", daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=r"left 1 thread\(s\) running \(forever in ") as info:
            _lrpkit_guard(kernel.shell, **guard, thread_seconds=0.5)
        assert type(info.value).__name__ == "ThreadLeftRunning"
        assert 0.5 <= time.monotonic() - started < 3
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="forever"):  # named again, not waited for
            _lrpkit_guard(kernel.shell, **guard, thread_seconds=5)
        assert time.monotonic() - started < 1
    finally:
        stop.set()


def test_prelude_refuses_audit_hooks_from_then_on(tmp_path):
    """Code in an audit hook runs unseen by profilers: none may be added after the prelude."""
    import subprocess

    code = (
        "import sys, types\n"
        "from lrpkit.grading.run.kernel.prelude import _lrpkit_prelude\n"
        "shell = types.SimpleNamespace(display_formatter=types.SimpleNamespace(formatters={\n"
        "    m: types.SimpleNamespace(enabled=True) for m in\n"
        "    ('image/png', 'image/jpeg', 'image/svg+xml', 'application/pdf')}))\n"
        "calls = []\n"
        "sys.addaudithook(lambda event, args: calls.append('before'))\n"
        "_lrpkit_prelude(shell)\n"
        "sys.addaudithook(lambda event, args: calls.append('after'))\n"
        "sys.audit('lrpkit.test')\n"
        "print(sorted(set(calls)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "['before']", out.stderr
