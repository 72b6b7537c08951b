"""The whole grading run: read every submission, run them in parallel, rerun suspects, write.

``grade`` reads the course and all submissions into memory first, grades the readable ones
``workers`` at once while a ``Watch`` restores any change to the protected files after each
run, grades again one at a time the runs that changed their sandbox or overlapped a change
(marking ``tampered`` those that still change something when run alone), and writes
grades.csv after every result and the feedback files at the end.
"""

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lrpkit.grading import secret as course_secret
from lrpkit.grading.course import BONUS, load_course
from lrpkit.grading.hidden import HiddenChecks
from lrpkit.grading.protect import Watch, protected_paths
from lrpkit.grading.report import write_feedback, write_grades
from lrpkit.grading.runner import (
    CELL_TIMEOUT,
    TIMEOUT,
    Grader,
    float64_path,
    force_rmtree,
    kill_token,
    restore_standin,
)
from lrpkit.grading.scoring import Result, score
from lrpkit.grading.submissions import discover, parse
from lrpkit.layout import ROOT


class Gradebook:
    """One result per submission, in discovery order, kept in memory; ``save`` writes
    grades.csv atomically, so the file always holds a whole table."""

    def __init__(self, subs, out):
        self.subs = subs
        self.out = Path(out)
        self.results = [Result.rejected(s) if s.problem else Result.pending(s) for s in subs]

    def gradable(self):
        """Keys (positions) of the submissions that can run."""
        return [key for key, sub in enumerate(self.subs) if not sub.problem]

    def record(self, key, result):
        self.results[key] = result
        self.save()

    def save(self):
        write_grades(self.out, self.results)

    def interrupt(self):
        """Grading stopped: the submissions still waiting say so."""
        for key, result in enumerate(self.results):
            if result.status == "pending":
                self.results[key] = Result.interrupted(self.subs[key])

    def finish(self):
        self.save()
        write_feedback(self.out, self.results)

    def sorted(self):
        return sorted(self.results, key=lambda r: r.student)


@dataclass(frozen=True)
class Incident:
    """A change to the protected files, made after ``since`` and seen at ``seen``."""

    since: float
    seen: float

    def overlaps(self, run):
        return run.started <= self.seen and run.ended >= self.since


def run_safely(grader, sub):
    """``grader.run(sub)``, or the exception it raised (the grader's own trouble)."""
    try:
        return grader.run(sub)
    except Exception as error:
        return error


def judge(sub, outcome, grader):
    """The result of a run, or of the grader's failure to run it."""
    if isinstance(outcome, Exception):
        return Result.grader_error(sub, outcome)
    return score(sub.student, outcome, grader.cell_timeout, grader.hidden)


def grade_in_parallel(grader, book, watch, workers, progress):
    """Grade every gradable submission, ``workers`` at once, checking the protected files
    after each run. Returns the keys to grade again: runs that changed their sandbox, and
    runs that overlapped a change to the protected files (it may have disturbed them)."""
    runs, suspects, incidents = {}, set(), []
    last_clean = time.time()
    keys = book.gradable()
    bar = _progress(len(keys), progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(run_safely, grader, book.subs[key]): key for key in keys}
        for future in as_completed(futures):
            key, outcome = futures[future], future.result()
            with grader.lock:
                changed, now = watch.verify(), time.time()
                if changed:
                    incidents.append(Incident(last_clean, now))
                else:
                    last_clean = now
            if not isinstance(outcome, Exception):
                runs[key] = outcome
                if outcome.changes:
                    suspects.add(key)
            book.record(key, judge(book.subs[key], outcome, grader))
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
        outcome = run_safely(grader, sub)
        if isinstance(outcome, Exception):
            book.results[key] = Result.grader_error(sub, outcome)
            continue
        changed = watch.verify()
        result = score(sub.student, outcome, grader.cell_timeout, grader.hidden)
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
):
    """Grade every submission in ``submissions``; write out/grades.csv and out/feedback/.

    ``sandbox``/``limits``: each run in bubblewrap with these limits (False: unconfined).
    ``shard``: a ``Shard`` to grade only its part of the submissions (merge the parts with
    ``shards.merge``). ``secret``: the course secret's bytes (default: ``secret.load()``);
    ``recorded``: {student: Config JSON} to re-grade on (from an earlier grades.csv).
    ``fork``: fork kernels from a zygote (``runner.Grader``); False starts each alone.
    Returns the results, one per submission, sorted by student id.
    """
    course = course or load_course(root)
    hidden = None
    if course.hidden:
        bonus = any(check.exercise in BONUS for check in course.checks)
        secret = secret if secret is not None else course_secret.load()
        hidden = HiddenChecks(secret, recorded, bonus)
    subs = discover(submissions)
    if shard is not None:
        subs = shard.select(subs)
        shard.write_marker(out, [sub.student for sub in subs])
    book = Gradebook([parse(sub) for sub in subs], out)
    book.save()
    own_workdir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="lrpkit-grade-"))
    watch = watch_files(root, submissions, course, standin_cache, out)
    grader = None
    try:
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
            kill_token(grader.token_prefix, prefix=True)
        book.interrupt()
        raise
    finally:
        if grader is not None:
            grader.close()
        if hidden is not None:
            hidden.close()
        watch.verify()
        if own_workdir and not keep:
            force_rmtree(workdir)
        book.finish()
    return book.sorted()


def _progress(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc="grading", unit="notebook", disable=not enabled)
