"""The checks' tripwire (lrpkit.selfcheck.tripwire): calls into the kit's answering code are seen in
every thread, and so is switching the watch off or leaving threads behind (a stand-in kit
function here; tests/test_checks_cheats.py has the real ones)."""

import _thread
import contextlib
import io
import sys
import threading

import pytest

from lrpkit.selfcheck import observe, tripwire


def kit():
    """Stands for the kit's answering code."""
    return 42


def answering(code):
    return code is kit.__code__


def watched(fn):
    with tripwire.watch(answering) as seen:
        fn()
    return seen


def joined(target):
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()


def raw_thread(target):
    """A thread started through the _thread builtin itself, past the watch's wrapper."""
    done = threading.Event()
    RAW_START(lambda: (target(), done.set()), ())
    done.wait(10)


RAW_START = _thread.start_new_thread  # taken before any watch, as a cheat would


def test_code_that_keeps_to_itself_passes():
    assert watched(lambda: sum(range(100))) == []
    assert watched(lambda: joined(lambda: sum(range(100)))) == []
    assert sys.getprofile() is None


@pytest.mark.parametrize(
    "how, line",
    [
        ("here", "tests/test_tripwire.py: kit"),
        ("thread", "tests/test_tripwire.py: kit"),
        ("raw thread", tripwire.SWITCHED),
        ("profiler off", tripwire.SWITCHED),
        ("tracer", tripwire.SWITCHED),
    ],
)
def test_a_call_of_the_kit_is_seen_however_it_is_made(how, line):
    def profiler_off():
        before = sys.getprofile()
        sys.setprofile(None)
        kit()
        sys.setprofile(before)

    def tracer():
        sys.settrace(lambda *args: None)
        sys.settrace(None)

    fn = {
        "here": kit,
        "thread": lambda: joined(kit),
        "raw thread": lambda: raw_thread(kit),
        "profiler off": profiler_off,
        "tracer": tracer,
    }[how]
    assert watched(fn) == [line]


def test_a_thread_running_before_the_watch_is_watched_too():
    """Its own code running there (as through a kernel thread's event loop) is seen."""
    go, done = threading.Event(), threading.Event()

    def waiting():
        go.wait(10)
        kit()
        done.set()

    threading.Thread(target=waiting, daemon=True).start()
    assert watched(lambda: (go.set(), done.wait(10))) == [tripwire.ELSEWHERE]


def test_a_thread_left_running_is_seen_and_a_library_one_is_not():
    stop = threading.Event()
    try:
        assert watched(lambda: threading.Thread(target=stop.wait, daemon=True).start()) == [
            tripwire.LEFT
        ]
    finally:
        stop.set()
    from tqdm import tqdm

    if tqdm.monitor is not None:  # one from an earlier bar: end it, to start one anew
        tqdm.monitor.exit()
        tqdm.monitor = None
    bars = []
    try:  # tqdm's monitor thread starts with the first bar and lives on
        seen = watched(lambda: bars.append(tqdm(range(3), file=io.StringIO(), mininterval=0)))
        assert tqdm.monitor is not None and tqdm.monitor.is_alive()
        assert seen == []
    finally:
        for bar in bars:
            bar.close()


def test_replaced_sys_functions_are_not_trusted(monkeypatch):
    state = {}
    monkeypatch.setattr(sys, "setprofile", lambda f: state.update(profile=f))
    monkeypatch.setattr(sys, "getprofile", lambda: state.get("profile"))
    with tripwire.watch(answering) as seen:
        kit()
    assert tripwire.SWITCHED in seen


def test_reset_threads_takes_out_other_threads_tracers():
    traced, go, done = [], threading.Event(), threading.Event()

    def other():
        sys.settrace(lambda frame, event, arg: traced.append(event))
        go.wait(10)
        sum(range(3))
        kit()
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    while not thread.is_alive():
        pass
    threading.Event().wait(0.2)  # it has set its tracer and waits
    tripwire.reset_threads()
    traced.clear()
    go.set()
    done.wait(10)
    thread.join()
    assert traced == []


def test_observe_records_the_first_line_under_its_key():
    obs = {}
    with observe.tripwire(obs, "R"):
        observe.relevance  # noqa: B018 -- looking is not calling
    assert obs == {}

    def in_a_thread():
        with contextlib.suppress(AttributeError):  # a model of None: entered, then failed
            observe.lrp_model(None, None)

    with pytest.raises(ZeroDivisionError), observe.tripwire(obs, "R"):
        joined(in_a_thread)
        raise ZeroDivisionError  # the code under test fails after the call
    assert obs == {"R.kit": "selfcheck/observe.py: lrp_model"}
