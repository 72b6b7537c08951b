"""Grading benchmark (instructors): seconds per submission with 1 and 2 workers.

``python -m lrpkit.grade_bench [--copies N]`` generates submissions from the solution notebooks
-- all correct, only Exercise 3 done, nothing done (the exercise notebooks as handed out) --
``N`` of each, grades them with ``lrpkit.grade`` once with 1 worker and once with 2, and prints
the seconds per submission side by side against the target of 5 s. The stand-in weights are
written once beforehand (a grading run does that once, whatever the number of submissions)
and reported apart. It also checks the points, so it measures real grading.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lrpkit import grade, student

TARGET = 5.0  # seconds per submission
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


def run(submissions, workers, course, cache, out):
    started = time.monotonic()
    results = grade.grade(
        submissions, out, workers=workers, course=course, standin_cache=cache, progress=False
    )
    return time.monotonic() - started, results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lrpkit.grade_bench", description=__doc__)
    parser.add_argument("--copies", type=int, default=1, help="submissions of each variant")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="lrpkit-grade-bench-"))
    try:
        course = grade.load_course()
        subs = base / "submissions"
        expected = make_submissions(subs, args.copies)
        started = time.monotonic()
        cache = grade.make_standin_cache(base / grade.STANDIN_FILE, course)
        setup = time.monotonic() - started
        rows, wrong = [], []
        for workers in args.workers:
            seconds, results = run(subs, workers, course, cache, base / f"out{workers}")
            rows.append((workers, seconds))
            for result in results:
                if result.status != "graded" or result.total != expected[result.student]:
                    wrong.append(f"{workers} workers: {result.row()}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    n = len(expected)
    print(
        f"grading {n} submissions ({', '.join(VARIANTS)}; {args.copies} of each), "
        f"stand-in VGG-16, {os.cpu_count()} CPUs"
    )
    print(f"stand-in weights written once per run: {setup:.1f} s (not counted below)")
    print(f"{'workers':>8} {'total s':>9} {'s/submission':>13}   target <= {TARGET:g} s")
    for workers, seconds in rows:
        per = seconds / n
        print(f"{workers:>8} {seconds:>9.1f} {per:>13.1f}   {'PASS' if per <= TARGET else 'MISS'}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} (timings are unreliable while other jobs run)")
    for line in wrong:
        print(f"unexpected grade: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
