"""The grader's command line: ``python -m lrpkit.grading SUBMISSIONS --workers 2 --out grades``.

``python -m lrpkit.grading merge --out grades PART...`` joins the output folders of
``--shard K/N`` runs; ``python -m lrpkit.grading report grades`` writes the class report
(report.html, similarity.csv) of an output folder again. The command line says no rather
than guess: options are never abbreviated, numbers are checked, files it is given must
exist, and every error names what to do. The options come in groups (``parser``): each step
of the workflow adds its own.
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import lrpkit.grading
from lrpkit.grading import coursefile
from lrpkit.grading.course import GradingError, load_course
from lrpkit.grading.intake.collect import collect
from lrpkit.grading.intake.matching import Exercises
from lrpkit.grading.intake.roster import read_roster
from lrpkit.grading.late import LateError, Policy, parse_time, read_times
from lrpkit.grading.pipeline import grade
from lrpkit.grading.results import classreport
from lrpkit.grading.results.gradebook import Layout
from lrpkit.grading.results.outputs import OutputError, OutputFolder, read_configs
from lrpkit.grading.results.shards import Shard, ShardError, merge
from lrpkit.grading.run import secret as course_secret
from lrpkit.grading.run.environment import CELL_TIMEOUT
from lrpkit.grading.run.runner import TIMEOUT
from lrpkit.grading.sandbox.bwrap import SandboxUnavailable
from lrpkit.grading.sandbox.limits import Limits
from lrpkit.layout import ROOT

ERRORS = (
    GradingError,
    SandboxUnavailable,
    course_secret.SecretError,
    coursefile.CourseFileError,
    LateError,
    OutputError,
)


def checked(parse):
    """An argparse type from a parser function: its ValueError's message becomes argparse's
    error (``argument --shard: --shard takes K/N ...``) instead of 'invalid parse value'."""

    def convert(text):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def at_least_one(text):
    """A whole number, 1 or more (``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def seconds(text):
    """A positive number of seconds (``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds (got {text})")
    return value


def existing_file(text):
    """A path to a file that exists (``--configs``, ``--course``, ``--times``, ``--roster``)."""
    path = Path(text)
    if not path.is_file():
        reason = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise argparse.ArgumentTypeError(f"{text} {reason}")
    return path


def _course_options(parser):
    group = parser.add_argument_group("the course")
    group.add_argument(
        "--course",
        type=existing_file,
        help="the course file (points per check, bonus, due date, LMS assignment; default: "
        f"{coursefile.NAME} beside the submissions folder, if there is one)",
    )
    group.add_argument(
        "--bonus",
        action="store_true",
        help="also grade the bonus Exercise 5 (its points are extra credit)",
    )
    group.add_argument(
        "--secret",
        type=Path,
        help="the course secret (default: ~/.config/lrpkit/course-secret, made on first use)",
    )
    group.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="kit with the solutions, checks and references (default: this one)",
    )


def _intake_options(parser):
    group = parser.add_argument_group("reading the submissions")
    group.add_argument(
        "--pattern",
        help="regular expression for another LMS's file names, with named groups student_id "
        "(and optionally file_id, timestamp), matched from the start of each notebook's path",
    )
    group.add_argument(
        "--roster",
        type=existing_file,
        help="the LMS's gradebook export (Canvas's gradebook CSV, Moodle's grading worksheet "
        "or participants CSV): names, SIS ids, sections; a row for each student without one",
    )
    group.add_argument(
        "--allow-unmatched",
        action="store_true",
        help="exit 0 even when files were left out (they are listed and in grades.csv)",
    )


def _selection_options(parser):
    group = parser.add_argument_group("which submissions, on which configurations")
    group.add_argument(
        "--only",
        nargs="+",
        metavar="ID",
        help="re-grade only these students (on the configurations recorded in the --out "
        "folder's configs.jsonl); the folder's other rows stay as they are",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="grade only the students the --out folder has no finished row for (after an "
        "interrupted run)",
    )
    group.add_argument(
        "--shard",
        type=checked(Shard.parse),
        help="K/N: grade part K of N (then `merge` the parts)",
    )
    group.add_argument(
        "--configs",
        type=existing_file,
        help="configs.jsonl (or a grades.csv of an older kit): grade each student it lists on "
        "its recorded configuration",
    )


def _late_options(parser):
    group = parser.add_argument_group("late submissions")
    group.add_argument(
        "--due",
        type=checked(lambda text: parse_time(text, "--due")),
        help="the due date, ISO 8601 (2025-06-30T23:59:00+02:00; no offset: local time)",
    )
    group.add_argument(
        "--late",
        type=checked(Policy.parse),
        metavar="POLICY",
        help="the late penalty, e.g. 10%%/day, 5%%/hour,max=3d, 10%%/day,grace=15m,cap=30%%, "
        "zero or none (default: none; needs --due)",
    )
    group.add_argument(
        "--times",
        type=existing_file,
        metavar="FILE",
        help="a CSV with columns student and submitted (ISO 8601): when each was handed in, "
        "over what the LMS's download says",
    )


def _running_options(parser):
    group = parser.add_argument_group("running")
    group.add_argument(
        "--workers", type=at_least_one, default=2, help="submissions graded at once (default 2)"
    )
    group.add_argument(
        "--cell-timeout", type=seconds, default=CELL_TIMEOUT, help="seconds per cell"
    )
    group.add_argument("--timeout", type=seconds, default=TIMEOUT, help="seconds per submission")
    group.add_argument(
        "--limits",
        type=checked(Limits.parse),
        default=Limits(),
        help="sandbox limits, e.g. memory=4G,processes=512,disk=2G,cpu=30m (default: "
        + Limits().describe()
        + ")",
    )
    group.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run student code unconfined, with your rights (recorded in grades.csv)",
    )
    group.add_argument(
        "--no-fork",
        action="store_true",
        help="start every kernel and pytest anew instead of forking them from processes that "
        "imported torch and pytest once (slower; for debugging)",
    )
    group.add_argument("--keep", action="store_true", help="keep the sandboxes (debugging)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def parser():
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.grading",
        description=lrpkit.grading.__doc__.split("\n")[0],
        epilog="python -m lrpkit.grading merge --help: joining the folders of --shard runs; "
        "python -m lrpkit.grading report --help: the class report of an output folder",
        allow_abbrev=False,
    )
    parser.add_argument(
        "submissions",
        type=Path,
        help="the LMS's download (Canvas, Moodle: zip or folder), or a folder of <student id>"
        ".ipynb notebooks, <student id>/ folders or <student id>.zip files",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("grades"),
        help="output folder (default: grades); one with an earlier run is updated",
    )
    _intake_options(parser)
    _course_options(parser)
    _selection_options(parser)
    _late_options(parser)
    _running_options(parser)
    return parser


def merge_parser():
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.grading merge",
        description="join the output folders of --shard runs",
        allow_abbrev=False,
    )
    parser.add_argument("parts", type=Path, nargs="+", help="the shards' output folders")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="output folder")
    return parser


def main_merge(argv):
    args = merge_parser().parse_args(argv)
    try:
        rows, summary = merge(args.parts, args.out)
    except ShardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{rows} submissions from {len(args.parts)} shards: {args.out / 'grades.csv'}")
    print(f"class report: {args.out / classreport.REPORT}")
    for line in summary.lines(args.out):
        print(line)
    return 0


def report_parser():
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.grading report",
        description="write the class report (report.html) and similarity.csv of an output "
        "folder again, from its grades.csv, results.jsonl and code.jsonl (every grading run "
        "and merge writes them too)",
        allow_abbrev=False,
    )
    parser.add_argument("folder", type=Path, help="a grading run's output folder (--out)")
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="kit whose exercise notebooks the students started from: their given lines are "
        "never counted as similar (default: this one)",
    )
    return parser


def main_report(argv):
    args = report_parser().parse_args(argv)
    try:
        path = classreport.write_report(args.folder, args.root)
    except classreport.ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"class report: {path}; pairs of similar code: {args.folder / classreport.SIMILARITY}")
    return 0


def settings(args):
    """The course file's settings (--course, or course.toml beside the submissions) with the
    command line's --bonus, --due and --late over them."""
    path = args.course or coursefile.find(args.submissions)
    found = coursefile.read(path) if path is not None else coursefile.Settings()
    return found.overridden(bonus=args.bonus, due=args.due, policy=args.late)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return main_merge(argv[1:])
    if argv[:1] == ["report"]:
        return main_report(argv[1:])
    command = parser()
    args = command.parse_args(argv)
    if args.only and (args.shard or args.resume):
        command.error("--only re-grades single students: not with --shard or --resume")
    try:
        course_settings = settings(args)
        if course_settings.path is not None:
            print(f"course file: {course_settings.path}")
        secret = course_secret.load(args.secret)
        recorded = read_configs(args.configs) if args.configs else None
        times = read_times(args.times) if args.times else None
        course = load_course(args.root, settings=course_settings)
        folder = OutputFolder(args.out, Layout.of(course), course_settings.canvas_column)
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
            only=args.only,
            resume=args.resume,
            times=times,
            folder=folder,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: the rows not graded yet are pending in {args.out / 'grades.csv'}; "
            "finish them with the same command and --resume",
            file=sys.stderr,
        )
        return 130
    except ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = Counter(result.status for result in results)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"{len(results)} submissions ({summary}): {args.out / 'grades.csv'}")
    print(f"class report: {args.out / classreport.REPORT}")
    for line in folder.summary.lines(args.out):
        print(line)
    unknown = sorted(set(times or ()) - {result.student for result in results})
    if unknown and not (args.only or args.shard or args.resume):
        print(f"--times names students without a submission: {', '.join(unknown[:10])}")
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
