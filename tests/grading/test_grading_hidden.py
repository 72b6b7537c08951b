"""Hidden configurations in the grader (lrpkit.grading.run.hidden): computed ahead, in order."""

import threading

from lrpkit.grading.run.hidden import HiddenChecks
from lrpkit.reference import references


def test_prefetch_computes_each_students_configuration_once_in_order(monkeypatch):
    """config() returns what drawing gives, whether computed ahead or not; computed ahead,
    in a thread of the grader's, in the students' order, each once."""
    calls, gate = [], threading.Event()

    def draw(secret, student, model=None):
        gate.wait(10)
        calls.append((student, threading.current_thread().name))
        return f"config of {student}", {"x": student}

    monkeypatch.setattr(references, "draw", draw)
    hidden = HiddenChecks(b"secret")
    monkeypatch.setattr(HiddenChecks, "_config", lambda self, s: references.draw(self.secret, s)[0])
    hidden.prefetch(["b", "a", "c"])
    hidden.prefetch(["a"])  # already on its way: not again
    gate.set()
    assert [hidden.config(s) for s in ("a", "b", "c", "d")] == [
        "config of a",
        "config of b",
        "config of c",
        "config of d",
    ]
    assert [s for s, _ in calls] == ["b", "a", "c", "d"]
    assert all(name.startswith("lrpkit-expected") for _, name in calls[:3])
    assert calls[3][1] == threading.current_thread().name
    hidden.close()


def test_close_drops_configurations_not_started(monkeypatch):
    started, gate, began = [], threading.Event(), threading.Event()

    def slow(self, student):
        started.append(student)
        began.set()
        gate.wait(10)
        return student

    monkeypatch.setattr(HiddenChecks, "_config", slow)
    hidden = HiddenChecks(b"secret")
    hidden.prefetch(["a", "b", "c"])
    assert began.wait(10)
    closing = threading.Thread(target=hidden.close)
    closing.start()
    gate.set()
    closing.join(10)
    assert not closing.is_alive() and started == ["a"]
    assert hidden.config("b") == "b", "after close, computed when asked"


def test_the_expected_results_take_one_thread_while_the_kernels_run():
    """share_the_cpus (a grading run, from its start) puts torch on one thread in the
    grader's process; close gives it back what it had."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        hidden = HiddenChecks(b"secret")
        hidden.share_the_cpus()
        hidden.share_the_cpus()  # once: the first count is kept
        assert torch.get_num_threads() == 1
        hidden.close()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
