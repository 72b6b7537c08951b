"""Grade submitted notebooks with nbval (instructors): ``make grade SUBMISSIONS=dir``.

``python -m lrpkit.grading SUBMISSIONS --workers 2 --out grades`` grades every student in
SUBMISSIONS -- a Canvas or Moodle download (zip or folder), ``<student id>.zip``, ``<student
id>/`` folders or ``<student id>.ipynb`` notebooks, nbgrader's ``submitted/``, or any layout
through ``--pattern`` (intake/) -- and writes ``grades/grades.csv`` (one row per student:
total, maximum, status, reason, the late penalty, points per exercise and per check;
gradebook.py), ``configs.jsonl``, ``canvas.csv`` and ``moodle.csv`` (lms.py) and
``grades/feedback/<name>.md`` and ``<name>.html`` (every check's
points, PASS or FAIL, diagnosis and hint; the errors in the student's own cells, quoted by
their first lines), and the class report ``report.html`` with ``similarity.csv``
(classreport.py, from grades.csv, results.jsonl and code.jsonl: details.py), which
``python -m lrpkit.grading report grades`` writes again. A folder with an earlier run is
updated, not replaced (outputs.py). The course file (``course.toml``, coursefile.py) sets
points per check, bonus, due date and late policy; the instructors' guide is
docs/instructors.md.

Each submission runs in its own kernel under ``pytest --nbval`` in a bubblewrap sandbox
(sandbox/bwrap.py: no network, read-only system and kit copies, only its own folder writable,
nothing else of the machine visible; limits.py and watchdog.py: limits on memory, processes,
disk, output and time; ``--no-sandbox`` runs it unconfined and the grades record it). pytest
and the kernel are forked into the sandbox from two zygotes (zygote.py) that imported pytest,
and torch with ipykernel, once per grading run, and confine themselves as bwrap confines what
it runs (``--no-fork`` starts them anew). The graded notebook is built here: the student's code
cells (their check cells dropped, their outputs ignored), then for every check cell of the
solution notebooks a guard cell (restores builtins and streams, re-imports the checks from the
sandbox copy, hands them the hidden configuration) and the instructor's check cell. With the
kit's checks, a check cell only prints an observation of the student's code on the submission's
hidden configuration (hidden.py), which the grader judges outside the sandbox against expected
results its reference implementation computes; a course whose checks print verdicts is graded
by comparing them with the stored PASS lines. Only checks below a solution region are graded
(one above every task, like the check of the given input X, checks given code), and a student's
unchanged copy of a given display-only cell (tag ``grade-skip``) is not run.

Submissions are data: they are read through files.py (no link followed, regular files only,
bounded size) and jsondepth.py (bounded JSON depth), and whatever fails on one submission is
its row, never the end of the run. The grader never trusts the kernel: it reads all submissions
into memory first, keeps results in memory, writes grades.csv atomically, reads cell results
from a pipe signed with a secret the kernel never sees, kills every process a run started, and
after each run compares the kit, data/reference, the solutions and the submissions (and each
sandbox's copies) with what they were, restoring any change. Runs that overlapped a change are
graded again one at a time; a submission that changes them when run alone is marked
``tampered``.

One module per step, by folder. Here: course and coursefile (checks, their points, sandbox
files), late (due date and penalty), pipeline (``grade``), cli (the command line). intake/:
files and jsondepth (reading files from outside), collect and result (the LMS's download to
one submission per student: layouts, zips, tree, matching, roster), submissions and parts
(reading notebooks; which exercise each holds). run/: notebook (the graded notebook; kernel/
holds the code it runs in the kernel), runner (one run), environment (its folders, command
line and environment), resultpipe (the signed cell records), standin (the stand-in weights
the kernels share), forked and plugin (a forked process as a Popen; pytest's side of a run),
hidden and secret (hidden configurations), protect (the watched files), scoring. sandbox/:
bwrap (the bubblewrap command line; whether it runs here), limits (what a sandbox may use),
watchdog (starting a sandbox and watching its limits), seccomp and cgroups (what confines it
further), zygote (forking pytest and kernels into it). results/: gradebook, lms, outputs,
tables, feedback and feedbackpage (grades.csv, the LMS imports, the output folder, the CSV
writer, feedback files and pages), details, classreport, pages and svgplots (what the class
report reads; the report; the pages' shell; its plots), similarity and fingerprints (pairs of
submissions whose own code is alike, MOSS-style), shards (grading on several machines).
"""

from lrpkit.grading.course import GradingError, load_course
from lrpkit.grading.pipeline import grade
from lrpkit.grading.run.scoring import Result

__all__ = ["GradingError", "Result", "grade", "load_course"]
