"""The benchmarks' shared helpers (lrpkit.bench.tools): timing, targets, exit status."""

import ast
from pathlib import Path

from lrpkit.bench import tools as benchtools
from lrpkit.bench.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parents[1]


def test_report_exits_non_zero_when_a_target_is_missed(capsys):
    met = benchtools.Target("fast enough", 0.4, "<=", 0.5)
    missed = benchtools.Target("speed-up", 3.0, ">=", 5.0)
    assert met.met and not missed.met
    assert benchtools.report([met]) == 0
    assert benchtools.report([met, missed]) == benchtools.MISSED != 0
    out = capsys.readouterr().out
    assert "0.40 x   target <= 0.5 x" in out and "PASS" in out
    assert "3.00 x   target >= 5 x" in out and "MISS" in out and "load average" in out


def test_timed_takes_turns_and_reports_medians():
    calls = []
    timings = benchtools.timed({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # one warm-up, then interleaved rounds
    assert len(timings["a"].times) == 3 and timings["a"].minimum <= timings["a"].median
    assert "x a" in benchtools.table(timings, "a")


def test_every_benchmark_module_runs_with_the_others():
    """`python -m lrpkit.bench` (make bench) runs every module of lrpkit/bench/."""
    modules = {p.stem for p in (ROOT / "lrpkit" / "bench").glob("*.py")}
    assert set(BENCHMARKS) == modules - {"__init__", "__main__", "tools"}


def test_benchmarks_share_the_helpers_and_exit_with_their_status():
    """No benchmark defines its own zennit twin or model loader, nor uses private helpers."""
    for name in BENCHMARKS:
        tree = ast.parse((ROOT / "lrpkit" / "bench" / f"{name}.py").read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert not defined & {"zennit_lrp", "zennit_model", "timed", "load", "_load"}, name
        private = [
            ast.unparse(n)
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute)
            and n.attr.startswith("_")
            and not n.attr.startswith("__")
        ]
        assert not private, (name, private)
        code = ast.unparse(tree)
        assert "raise SystemExit(main())" in code or "sys.exit(main())" in code, name
