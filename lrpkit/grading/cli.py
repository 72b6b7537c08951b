"""The grader's command line: ``python -m lrpkit.grading SUBMISSIONS --workers 2 --out grades``.

``python -m lrpkit.grading merge --out grades PART...`` joins the output folders of
``--shard K/N`` runs.
"""

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

import lrpkit.grading
from lrpkit.grading import secret as course_secret
from lrpkit.grading.course import ALL_EXERCISES, EXERCISES, GradingError, load_course
from lrpkit.grading.intake import collect
from lrpkit.grading.matching import Exercises
from lrpkit.grading.pipeline import grade
from lrpkit.grading.roster import read_roster
from lrpkit.grading.runner import CELL_TIMEOUT, TIMEOUT
from lrpkit.grading.sandbox import Limits, SandboxUnavailable
from lrpkit.grading.shards import Shard, ShardError, merge
from lrpkit.layout import ROOT


def parser():
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.grading", description=lrpkit.grading.__doc__.split("\n")[0]
    )
    parser.add_argument(
        "submissions",
        type=Path,
        help="the LMS's download (Canvas, Moodle: zip or folder), or a folder of <student id>"
        ".ipynb notebooks, <student id>/ folders or <student id>.zip files",
    )
    parser.add_argument(
        "--pattern",
        help="regular expression for another LMS's file names, with named groups student_id "
        "(and optionally file_id, timestamp), matched from the start of each notebook's path",
    )
    parser.add_argument(
        "--roster",
        type=Path,
        help="the LMS's gradebook export (Canvas's gradebook CSV, Moodle's grading worksheet "
        "or participants CSV): names, SIS ids, sections; a row for each student without one",
    )
    parser.add_argument(
        "--allow-unmatched",
        action="store_true",
        help="exit 0 even when files were left out (they are listed and in grades.csv)",
    )
    parser.add_argument("--out", type=Path, default=Path("grades"), help="output folder")
    parser.add_argument("--workers", type=int, default=2, help="submissions graded at once")
    parser.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per submission")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--keep", action="store_true", help="keep the sandboxes (debugging)")
    parser.add_argument(
        "--limits",
        type=Limits.parse,
        default=Limits(),
        help="sandbox limits, e.g. memory=4G,processes=512,disk=2G,cpu=30m (default: "
        + Limits().describe()
        + ")",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run student code unconfined, with your rights (recorded in grades.csv)",
    )
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="start every kernel and pytest anew instead of forking them from processes that "
        "imported torch and pytest once (slower; for debugging)",
    )
    parser.add_argument(
        "--shard", type=Shard.parse, help="K/N: grade part K of N (then `merge` the parts)"
    )
    parser.add_argument(
        "--bonus",
        action="store_true",
        help="also grade the bonus Exercise 5 (its notebook's checks, 25 points more)",
    )
    parser.add_argument(
        "--secret",
        type=Path,
        help="the course secret (default: ~/.config/lrpkit/course-secret, made on first use)",
    )
    parser.add_argument(
        "--configs",
        type=Path,
        help="an earlier grades.csv: grade each student it lists on its recorded configuration",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="kit with the solutions, checks and references (default: this one)",
    )
    return parser


def merge_parser():
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.grading merge", description="join the folders of --shard runs"
    )
    parser.add_argument("parts", type=Path, nargs="+", help="the shards' output folders")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="output folder")
    return parser


def main_merge(argv):
    args = merge_parser().parse_args(argv)
    try:
        rows = merge(args.parts, args.out)
    except ShardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{rows} submissions from {len(args.parts)} shards: {args.out / 'grades.csv'}")
    return 0


def recorded_configs(path):
    """{student: Config JSON} of an earlier grades.csv's rows that recorded one."""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["student"]: row["config"] for row in csv.DictReader(f) if row.get("config")}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return main_merge(argv[1:])
    args = parser().parse_args(argv)
    try:
        secret = course_secret.load(args.secret)
        recorded = recorded_configs(args.configs) if args.configs else None
    except (course_secret.SecretError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        exercises = ALL_EXERCISES if args.bonus else EXERCISES
        course = load_course(args.root, exercises=exercises)
        roster = read_roster(args.roster) if args.roster else None
        matcher = Exercises.from_solutions(args.root / "notebooks" / "solutions")
        intake = collect(args.submissions, args.pattern, roster, matcher)
        print("\n".join(intake.summary()))
        results = grade(
            args.submissions,
            args.out,
            args.workers,
            course=course,
            root=args.root,
            cell_timeout=args.cell_timeout,
            timeout=args.timeout,
            progress=not args.no_progress,
            keep=args.keep,
            limits=args.limits,
            sandbox=not args.no_sandbox,
            fork=not args.no_fork,
            shard=args.shard,
            secret=secret,
            recorded=recorded,
            intake=intake,
        )
    except (GradingError, SandboxUnavailable, course_secret.SecretError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = Counter(result.status for result in results)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(results)} submissions ({summary}): {args.out / 'grades.csv'}")
    if intake.unmatched and not args.allow_unmatched:
        print(
            f"error: {len(intake.unmatched)} files left out (listed above, and in grades.csv); "
            "hand them in again or pass --allow-unmatched",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
