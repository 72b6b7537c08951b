"""Grading benchmark (instructors): seconds per submission, sandboxed and not.

``python -m lrpkit.bench.grading [--copies N]`` generates submissions from the solution
notebooks -- all correct, only Exercise 3 done, nothing done (the exercise notebooks as handed
out) -- ``N`` of each (3), and grades them with ``lrpkit.grading`` on hidden configurations
(expected results computed while grading): in bubblewrap with 2 workers and with 1, and
unconfined (``--no-sandbox``) with 2, in one run, ``--rounds`` times (2; every other round in
reverse order) keeping each mode's best. It prints the seconds per submission beside
the targets (sandboxed: <= 3 s with 2 workers, <= 5 s with 1; the sandbox's own overhead
<= 10 %) and exits 1 when one is missed or a grade is wrong. The stand-in weights are made
beforehand, or reused from the user's cache (lrpkit.grading.run.standin), and reported apart.

``--profile correct`` (or ``only3``, ``none``) shows instead where one submission's time goes:
seconds per cell of its graded notebook, each cell's role beside it.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lrpkit.authoring import student
from lrpkit.bench.tools import MISSED, Target, header, report
from lrpkit.grading.course import load_course
from lrpkit.grading.intake.submissions import discover, parse
from lrpkit.grading.pipeline import grade
from lrpkit.grading.run.runner import Grader
from lrpkit.grading.run.standin import prepared
from lrpkit.selfcheck import config

#: (workers, sandboxed) -> seconds per submission at most (None: measured only)
TARGETS = {(2, True): 3.0, (1, True): 5.0, (2, False): None}
OVERHEAD = 0.10  # the sandbox's own share of grading time, at most
SECRET = b"the grading benchmark's course secret"
EX3, EX4 = "ex3_gradient_x_input.ipynb", "ex4_lrp.ipynb"
#: variant -> (notebooks to hand in, expected total)
VARIANTS = {
    "correct": ("solution", "solution", 50),
    "only3": ("solution", "exercise", 25),
    "none": ("exercise", "exercise", 0),
}


def make_submissions(folder, copies, solutions=None):
    """Write ``copies`` submissions of each variant; returns {student id: expected total}."""
    solutions = Path(solutions or student.SOLUTIONS)
    texts = {}
    for name in (EX3, EX4):
        nb = student.read(solutions / name)
        texts[name] = {
            "solution": student.render(nb),
            "exercise": student.render(student.exercise_notebook(nb)),
        }
    expected = {}
    for copy in range(1, copies + 1):
        for variant, (ex3, ex4, total) in VARIANTS.items():
            sid = f"{variant}{copy:02d}"
            (folder / sid).mkdir(parents=True)
            (folder / sid / EX3).write_text(texts[EX3][ex3], encoding="utf-8")
            (folder / sid / EX4).write_text(texts[EX4][ex4], encoding="utf-8")
            expected[sid] = total
    return expected


def run(submissions, workers, sandbox, course, cache, out):
    started = time.monotonic()
    results = grade(
        submissions,
        out,
        workers=workers,
        course=course,
        standin_cache=cache,
        progress=False,
        sandbox=sandbox,
        secret=SECRET,
    )
    return time.monotonic() - started, results


def profile(variant, base, course, cache):
    """Where one submission's time goes: seconds per cell of its graded notebook (the plugin's
    records), unsandboxed, on one thread as with 2 workers, beside each cell's role."""
    make_submissions(base / "profiled", 1)
    [sub] = [parse(s) for s in discover(base / "profiled") if s.student == f"{variant}01"]
    grader = Grader(course, base / "work", standin_cache=cache, sandbox=False, workers=2)
    try:
        started = time.monotonic()
        ready = grader.zygote.wait_ready(120) and grader.pytest_zygote.wait_ready(120)
        print(f"zygotes ready in {time.monotonic() - started:.2f} s (once per grading run)")
        if not ready:
            print("the zygotes did not start: kernels and pytest start anew")
        run = grader.run(sub)
    finally:
        grader.close()
    seconds = {number: record["seconds"] for number, record in run.records.items()}
    print(f"{variant}01: graded in {run.seconds:.2f} s:")
    for number, role in enumerate(run.roles):
        what = role.label or (role.check.source.strip() if role.check else "")
        print(f"{seconds.get(number, 0.0):6.2f} s  {role.kind:<8} {what[:60]}")
    rest = run.seconds - sum(seconds.values())
    print(f"{rest:6.2f} s  pytest forked, its kernel forked and started, both ended")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.bench.grading", description=__doc__, allow_abbrev=False
    )
    parser.add_argument(  # 9 submissions: a course has hundreds, a grading run starts once
        "--copies", type=int, default=3, help="submissions of each variant (default 3)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="grade in every mode this many times (in alternating order) and keep the best",
    )
    parser.add_argument(
        "--profile",
        choices=list(VARIANTS),
        help="instead: seconds per cell of one submission of this variant",
    )
    args = parser.parse_args(argv)
    if args.profile:
        base = Path(tempfile.mkdtemp(prefix="lrpkit-grade-profile-"))
        try:
            course = load_course()
            profile(args.profile, base, course, prepared(course, base)[0])
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return 0
    base = Path(tempfile.mkdtemp(prefix="lrpkit-grade-bench-"))
    print(header())
    try:
        course = load_course()
        subs = base / "submissions"
        expected = make_submissions(subs, args.copies)
        started = time.monotonic()
        cache, made = prepared(course, base)  # made once, then kept in the user's cache
        config.grading_model()  # the float64 stand-in of the expected results: made once per run
        setup = time.monotonic() - started
        per, wrong = {}, []
        for round_ in range(args.rounds):  # every other round backwards: no order favoured
            for workers, sandbox in list(TARGETS)[:: 1 if round_ % 2 == 0 else -1]:
                out = base / f"out-{workers}-{sandbox}-{round_}"
                seconds, results = run(subs, workers, sandbox, course, cache, out)
                per[workers, sandbox] = min(per.get((workers, sandbox), seconds), seconds)
                for result in results:
                    if result.status != "graded" or result.total != expected[result.student]:
                        found = f"{result.student}: {result.status}, {result.total}"
                        wrong.append(f"{workers} workers, sandbox {sandbox}: {found}")
        per = {key: seconds / len(expected) for key, seconds in per.items()}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    n = len(expected)
    print(
        f"grading {n} submissions ({', '.join(VARIANTS)}; {args.copies} of each), stand-in; "
        f"best of {args.rounds} rounds per mode"
    )
    print(
        f"stand-in weights {'made' if made else 'reused'} and the grader's float64 model "
        f"built, once per run: {setup:.1f} s (not counted below)"
    )
    for (workers, sandbox), seconds in per.items():
        mode = "bubblewrap" if sandbox else "--no-sandbox"
        print(f"{workers} workers, {mode:<13} {seconds:6.2f} s per submission")
    targets = [
        Target(f"s/submission, {w} workers, bubblewrap", per[w, True], "<=", limit, "s")
        for (w, sandbox), limit in TARGETS.items()
        if sandbox and limit is not None
    ]
    overhead = per[2, True] / per[2, False] - 1
    targets.append(
        Target("sandbox overhead (2 workers)", 100 * overhead, "<=", 100 * OVERHEAD, "%")
    )
    status = report(targets)
    for line in wrong:
        print(f"unexpected grade: {line}", file=sys.stderr)
    return MISSED if wrong else status


if __name__ == "__main__":
    sys.exit(main())
