"""The whole grading run: read every submission, run them in parallel, rerun suspects, write.

``grade`` reads the course and all submissions into memory first, grades the readable ones
``workers`` at once while a ``Watch`` restores any change to the protected files after each
run, grades again one at a time the runs that changed their sandbox or overlapped a change
(marking ``tampered`` those that still change something when run alone), and writes the
output folder (lrpkit.grading.results.outputs: grades.csv, configs.jsonl, results.jsonl, canvas.csv,
moodle.csv) and the student's feedback file and page after every result, the code it
compares (code.jsonl) before any run, and the class report (classreport.py: report.html,
similarity.csv) at the end. An output folder with an earlier run is updated: only the rows
of the students graded now change.

A failure stays with its submission: whatever the grader raises while reading, running,
scoring or cleaning up one submission becomes that submission's row (status ``error`` with
the reason), a feedback file that cannot be written is said in its row, and the run goes on
to write every other result.
"""

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from lrpkit.grading.course import BONUS, GradingError, load_course
from lrpkit.grading.intake.collect import collect
from lrpkit.grading.intake.files import remove_tree
from lrpkit.grading.intake.matching import Exercises
from lrpkit.grading.intake.parts import lost_exercises
from lrpkit.grading.intake.submissions import parse
from lrpkit.grading.results import classreport, details
from lrpkit.grading.results.gradebook import Layout
from lrpkit.grading.results.outputs import OutputFolder, write_feedback
from lrpkit.grading.run import secret as course_secret
from lrpkit.grading.run.environment import CELL_TIMEOUT
from lrpkit.grading.run.hidden import HiddenChecks
from lrpkit.grading.run.protect import Watch, protected_paths
from lrpkit.grading.run.runner import TIMEOUT, Grader, kill_token
from lrpkit.grading.run.scoring import Result, score
from lrpkit.grading.run.standin import float64_path, restore_standin
from lrpkit.layout import ROOT


class Gradebook:
    """One result per submission, in discovery order, kept in memory; ``save`` writes the
    output folder, each file atomically, so it always holds whole tables."""

    def __init__(self, subs, folder, course):
        self.subs = subs
        self.folder = folder  # outputs.OutputFolder
        self.course = course
        self.lost = {}  # student -> {exercise: why its notebook cannot be used}
        self.feedback = {}  # key -> its feedback file, relative to the folder
        self.lines = {}  # key -> its results.jsonl line
        self.combined = {}
        for sub in subs:
            lost = {} if sub.problem else lost_exercises(sub, course)
            if lost and set(lost) >= set(course.exercises):  # nothing left to run
                sub.problem = "; ".join(lost.values())
            self.lost[sub.student] = lost
        folder.save_code(
            {s.student: None if s.problem else details.code_line(s.student, s.cells) for s in subs}
        )
        self.results = [_first_result(sub) for sub in subs]
        for key, result in enumerate(self.results):
            if result.status != "pending":
                self.results[key] = self.late(key, result)
                self._write_feedback(key)
                self.lines[key] = details.result_line(self.results[key])

    def gradable(self):
        """Keys (positions) of the submissions that can run."""
        return [key for key, sub in enumerate(self.subs) if not sub.problem]

    def lost_of(self, key):
        return self.lost[self.subs[key].student]

    def late(self, key, result):
        """The result with its late penalty (the course's due date and policy)."""
        rule = self.course.settings.rule
        if rule is None or result.points is None:
            return result
        sub = self.subs[key]
        return replace(result, late=rule.judge(sub.submitted, sub.late))

    def record(self, key, result):
        self.results[key] = result = self.late(key, result)
        if result.status != "pending":
            self._write_feedback(key)
        self.lines[key] = details.result_line(self.results[key])
        self.save()

    def _write_feedback(self, key):
        """Write one result's feedback file; a failure is said in its row (and stops nothing)."""
        result = self.results[key]
        try:
            self.feedback[key] = write_feedback(self.folder.out, result, self.course)
        except Exception as error:
            self.feedback[key] = ""
            note = f"no feedback file ({type(error).__name__}: {error})"
            self.results[key] = replace(result, reason=f"{result.reason}; {note}")

    def save(self):
        layout = self.folder.layout
        rows = {
            result.student: layout.row(result, sub, self.feedback.get(key, ""))
            for key, (result, sub) in enumerate(zip(self.results, self.subs))
        }
        configs = {result.student: result.config for result in self.results}
        lines = {self.subs[key].student: line for key, line in self.lines.items()}
        self.combined = self.folder.save(rows, configs, lines)

    def interrupt(self):
        """Grading stopped: the submissions still waiting stay pending, and say so."""
        for key, result in enumerate(self.results):
            if result.status == "pending":
                self.results[key] = Result.interrupted(self.subs[key])

    def finish(self):
        """The output folder as the run leaves it; feedback files of no row removed."""
        self.save()
        self.folder.remove_stale_feedback(self.combined)

    def sorted(self):
        return sorted(self.results, key=lambda r: r.student)


@dataclass(frozen=True)
class Incident:
    """A change to the protected files, made after ``since`` and seen at ``seen``."""

    since: float
    seen: float

    def overlaps(self, run):
        return run.started <= self.seen and run.ended >= self.since


def _first_result(sub):
    """A submission's result before it runs: pending, or rejected with its problem (status
    error where the problem is the grader's own failure to read it)."""
    if not sub.problem:
        return Result.pending(sub)
    return Result.rejected(sub, "error" if sub.failed else "invalid")


def run_safely(grader, sub, lost=()):
    """``grader.run(sub, lost)``, or the exception it raised (the grader's own trouble)."""
    try:
        return grader.run(sub, lost)
    except Exception as error:
        return error


def judge(sub, outcome, grader, lost=None):
    """The result of a run, or of the grader's failure to run it."""
    if isinstance(outcome, Exception):
        return Result.grader_error(sub, outcome)
    try:
        checks = grader.course.checks
        return score(sub.student, outcome, grader.cell_timeout, grader.hidden, lost, checks)
    except Exception as error:
        return Result.grader_error(sub, error)


def verify(watch):
    """``watch.verify()``: the protected files that changed (and are restored), or [the
    exception] where checking or restoring them failed (treated as a change)."""
    try:
        return watch.verify()
    except Exception as error:
        return [error]


def grade_in_parallel(grader, book, watch, workers, progress):
    """Grade every gradable submission, ``workers`` at once, checking the protected files
    after each run. Returns the keys to grade again: runs that changed their sandbox, and
    runs that overlapped a change to the protected files (it may have disturbed them)."""
    runs, suspects, incidents = {}, set(), []
    last_clean = time.time()
    keys = book.gradable()
    bar = _progress(len(keys), progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {
            pool.submit(run_safely, grader, book.subs[key], book.lost_of(key)): key for key in keys
        }
        for future in as_completed(futures):
            key, outcome = futures[future], future.result()
            with grader.lock:
                changed, now = verify(watch), time.time()
                if changed:
                    incidents.append(Incident(last_clean, now))
                else:
                    last_clean = now
            if not isinstance(outcome, Exception):
                runs[key] = outcome
                if outcome.changes:
                    suspects.add(key)
            book.record(key, judge(book.subs[key], outcome, grader, book.lost_of(key)))
            bar.update(1)
    bar.close()
    for incident in incidents:
        suspects |= {key for key, run in runs.items() if incident.overlaps(run)}
    return sorted(suspects)


def grade_alone(grader, book, watch, keys):
    """Grade these submissions again, one at a time; one that still changes files it must
    not touch is marked tampered."""
    for key in keys:
        sub = book.subs[key]
        outcome = run_safely(grader, sub, book.lost_of(key))
        changed = verify(watch)
        trouble = [error for error in changed if isinstance(error, Exception)]
        if isinstance(outcome, Exception) or trouble:
            error = outcome if isinstance(outcome, Exception) else trouble[0]
            book.record(key, Result.grader_error(sub, error))
            continue
        result = judge(sub, outcome, grader, book.lost_of(key))
        if outcome.changes or changed:
            names = sorted({*outcome.changes, *(path.name for path in changed)})
            result = Result.tampered(result, names)
        book.record(key, result)


def watch_files(root, submissions, course, standin_cache, out):
    """A Watch over the files no submission may change; changed ones go to out/changed-files."""
    paths = protected_paths(root, submissions)
    paths += [Path(standin_cache), float64_path(standin_cache)] if standin_cache else []
    restore_big = partial(restore_standin, course=course)
    return Watch(paths, restore_big=restore_big, quarantine=Path(out) / "changed-files")


def select(subs, folder, only=None, resume=False, submissions=""):
    """The submissions to grade now: all, or ``only`` these students (of an earlier run in
    the folder), or (``resume``) those the folder has no finished row for."""
    if only:
        if not folder.earlier.rows:
            raise GradingError(
                f"--only re-grades students of an earlier run, but {folder.out} holds none"
            )
        missing = sorted(set(only) - {sub.student for sub in subs})
        if missing:
            raise GradingError(f"--only: no submission of {', '.join(missing)} in {submissions}")
        return [sub for sub in subs if sub.student in set(only)]
    if resume:
        done = {s for s, row in folder.earlier.rows.items() if row["status"] != "pending"}
        return [sub for sub in subs if sub.student not in done]
    return subs


def grade(
    submissions,
    out,
    workers=2,
    course=None,
    root=ROOT,
    cell_timeout=CELL_TIMEOUT,
    timeout=TIMEOUT,
    progress=True,
    standin_cache=None,
    keep=False,
    workdir=None,
    limits=None,
    sandbox=True,
    shard=None,
    secret=None,
    recorded=None,
    fork=True,
    intake=None,
    only=None,
    resume=False,
    times=None,
    folder=None,
):
    """Grade every submission in ``submissions``; write the output folder ``out``.

    ``sandbox``/``limits``: each run in bubblewrap with these limits (False: unconfined).
    ``shard``: a ``Shard`` to grade only its part of the submissions (merge the parts with
    ``shards.merge``). ``secret``: the course secret's bytes (default: ``secret.load()``);
    ``recorded``: {student: Config JSON} to re-grade on (default: the output folder's
    configs.jsonl, for the students it has). ``fork``: fork kernels from a zygote
    (``runner.Grader``); False starts each alone. ``only``: student ids to re-grade (of an
    earlier run in ``out``); ``resume``: grade the students ``out`` has no finished row for;
    ``times``: {student: when handed in}, over what the intake knows; ``folder``: the
    outputs.OutputFolder of ``out`` (made here when None). Returns this run's results, one
    per submission graded now, sorted by student id. ``intake``: the ``result.Intake`` of
    ``submissions`` when already collected (with a --pattern or --roster); default:
    ``intake.collect(submissions)``.
    """
    course = course or load_course(root)
    folder = folder or OutputFolder(out, Layout.of(course), course.settings.canvas_column)
    recorded = {**folder.earlier.configs, **(recorded or {})}
    if intake is None:
        solutions = Path(root) / "notebooks" / "solutions"
        intake = collect(submissions, exercises=Exercises.from_solutions(solutions))
    subs = select(intake.submissions, folder, only, resume, submissions)
    for sub in subs:
        if times and sub.student in times:
            sub.submitted = times[sub.student]
    hidden = None
    if course.hidden:
        bonus = any(check.exercise in BONUS for check in course.checks)
        secret = secret if secret is not None else course_secret.load()
        hidden = HiddenChecks(secret, recorded, bonus)
    if shard is not None:
        subs = shard.select(subs)
        shard.write_marker(out, [sub.student for sub in subs])
    book = Gradebook([parse(sub) for sub in subs], folder, course)
    book.save()
    own_workdir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="lrpkit-grade-"))
    watch = watch_files(root, submissions, course, standin_cache, out)
    grader = None
    try:
        if hidden is not None:
            hidden.share_the_cpus()
        grader = Grader(
            course,
            workdir,
            cell_timeout,
            timeout,
            workers,
            standin_cache,
            keep,
            limits,
            sandbox,
            hidden,
            fork,
        )
        if grader.cache is not None and standin_cache is None:
            watch.add(grader.cache)
            watch.add(grader.cache64)
        if hidden is not None:
            hidden.prefetch(book.subs[key].student for key in book.gradable())
        suspects = grade_in_parallel(grader, book, watch, workers, progress)
        grade_alone(grader, book, watch, suspects)
    except BaseException:
        if grader is not None:
            _attempt("killing the runs", kill_token, grader.token_prefix, prefix=True)
        book.interrupt()
        raise
    finally:
        if grader is not None:
            _attempt("ending the zygotes", grader.close)
        if hidden is not None:
            _attempt("ending the hidden configurations", hidden.close)
        _attempt("restoring the protected files", watch.verify)
        if own_workdir and not keep:
            _attempt("removing the grading folder", remove_tree, workdir)
        book.finish()
    _attempt(
        "writing the class report (python -m lrpkit.grading report)",
        classreport.write_report,
        out,
        root,
    )
    return book.sorted()


def _attempt(what, step, *args, **kwargs):
    """One step of ending a run; its failure is said on stderr, so the results are still
    written (and an exception already on its way is not replaced)."""
    try:
        step(*args, **kwargs)
    except Exception as error:
        print(f"warning: {what} failed ({type(error).__name__}: {error})", file=sys.stderr)


def _progress(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc="grading", unit="notebook", disable=not enabled)
