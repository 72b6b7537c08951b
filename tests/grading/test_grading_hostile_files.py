"""Hostile files graded in one run beside correct submissions (tiny course, real bubblewrap).

Links to the solutions (absolute, through /proc/self/cwd), to a classmate's folder, dangling
and to /dev/zero, a FIFO, a device node, a socket, a 100,000-deep JSON array, a 300 MB
notebook, a student's 2,000 nested folders left in its sandbox, exception texts with
newlines, markdown and HTML: each gets its own row naming what it is, no link earns a point,
grades.csv and every feedback file are written. Then the pipeline's own failures (a run, a
score, a check of the protected files, a feedback file) each stay with their submission.
"""

import os
import shutil
import socket
import stat
import threading
from pathlib import Path

import pytest
from crafting import (
    CELL_TIMEOUT,
    IMPORTS,
    TIMEOUT,
    code,
    good_cells,
    nb_bytes,
    read_csv,
    write_submissions,
)

from lrpkit.grading.course import Check, Course, load_course
from lrpkit.grading.intake import files
from lrpkit.grading.intake.submissions import NotebookFile, Submission, parse
from lrpkit.grading.pipeline import Gradebook, grade, grade_alone, grade_in_parallel
from lrpkit.grading.results.gradebook import Layout
from lrpkit.grading.results.outputs import OutputFolder
from lrpkit.grading.run.runner import Run, isolation
from lrpkit.grading.run.scoring import Result

ROOT_USER = os.geteuid() == 0
SCRIPT = "<script>alert(document.cookie)</script>"
NESTED = """\
import os
home = os.open(os.environ["HOME"], os.O_RDONLY)
os.mkfifo("fifo", dir_fd=home)
os.symlink("/", "root", dir_fd=home)
fd, keep = os.dup(home), []
for level in range(2000):
    os.mkdir("d", dir_fd=fd)
    if level in (5, 1000):
        keep.append(os.dup(fd))
    child = os.open("d", os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = child
os.symlink("/etc/passwd", "passwd", dir_fd=fd)
os.close(fd)
for parent in reversed(keep):  # deepest first: no permissions left on two of them
    os.chmod("d", 0o000, dir_fd=parent)
    os.close(parent)
"""
RAISES = f"raise RuntimeError('first line\\n# A heading\\n| a | b |\\n{SCRIPT}\\n**bold**')"
TOO_COMPLEX = "x = " + "-" * 100_000 + "1"  # the grader's own parser gives up (MemoryError)


def hostile(base, course_root):
    """Write the hostile submissions beside correct ones; returns what each should say."""
    subs = base / "submissions"
    solutions = course_root / "notebooks" / "solutions"
    ex3, ex4 = solutions / "ex3_gradient_x_input.ipynb", solutions / "ex4_lrp.ipynb"
    write_submissions(
        subs,
        {
            "correct.ipynb": nb_bytes(good_cells()),
            "friend": {"ex3.ipynb": nb_bytes(good_cells()), "notes.txt": b"mine"},
            "nested.ipynb": nb_bytes([code(NESTED), *good_cells()]),
            "raises.ipynb": nb_bytes([code(RAISES), *good_cells()]),
            "complex.ipynb": nb_bytes([code(TOO_COMPLEX), *good_cells()]),
            "deep.ipynb": b"[" * 100_000 + b"]" * 100_000,
            "halfbad": {"ex3_gradient_x_input.ipynb": ex3.read_bytes()},
        },
    )
    (subs / "absolute").mkdir()
    (subs / "absolute" / ex3.name).symlink_to(ex3)
    (subs / "absolute" / ex4.name).symlink_to(ex4)
    (subs / "proc.ipynb").symlink_to(Path("/proc/self/cwd", os.path.relpath(ex4)))
    (subs / "copycat").symlink_to("friend")
    (subs / "sneaky").mkdir()
    (subs / "sneaky" / "ex3.ipynb").symlink_to("../friend/ex3.ipynb")
    (subs / "dangling.ipynb").symlink_to(base / "nowhere.ipynb")
    (subs / "zero.ipynb").symlink_to("/dev/zero")
    (subs / "halfbad" / ex4.name).symlink_to(ex4)
    os.mkfifo(subs / "fifo.ipynb")
    with open(subs / "huge.ipynb", "wb") as f:
        f.truncate(300 * 2**20)  # sparse: 300 MB that take no disk
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(subs / "socket.ipynb"))
    link = "is a symbolic link: hand in the file itself"
    expected = {
        "absolute": f"ex3_gradient_x_input.ipynb {link}; ex4_lrp.ipynb {link}",
        "proc": f"proc.ipynb {link}",
        "copycat": "copycat is a symbolic link: hand in the folder itself",
        "sneaky": f"ex3.ipynb {link}",
        "dangling": f"dangling.ipynb {link}",
        "zero": f"zero.ipynb {link}",
        "halfbad": f"ex4_lrp.ipynb {link}",
        "fifo": "fifo.ipynb is a FIFO (named pipe), not a regular file",
        "socket": "socket.ipynb is a socket, not a regular file",
        "deep": "deep.ipynb nests JSON 100,000 levels deep, more than the 100 allowed",
        "huge": "huge.ipynb is 300 MiB, more than the 50 MiB allowed: make it smaller",
    }
    if ROOT_USER:
        os.mknod(subs / "device.ipynb", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's
        expected["device"] = "device.ipynb is a character device, not a regular file"
    return subs, expected, server


@pytest.fixture(scope="module")
def graded(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    course_root = base / "course"
    shutil.copytree(tiny, course_root)
    subs, expected, server = hostile(base, course_root)
    work = base / "work"
    try:
        results = grade(
            subs,
            base / "out",
            workers=2,
            course=load_course(course_root),
            root=course_root,
            cell_timeout=CELL_TIMEOUT,
            timeout=TIMEOUT,
            progress=False,
            workdir=work,
        )
        jobs = sorted(p.name for p in (work / "jobs").iterdir())
    finally:
        server.close()
        files.remove_tree(work)  # pytest's own clean-up recurses: never leave it deep trees
    return {
        "results": {r.student: r for r in results},
        "rows": read_csv(base / "out" / "grades.csv"),
        "out": base / "out",
        "expected": expected,
        "jobs": jobs,
    }


def test_correct_submissions_keep_full_marks(graded):
    for name in ("correct", "friend"):
        row = graded["rows"][name]
        assert (row["total"], row["status"], row["sandbox"]) == ("50", "graded", isolation())


def test_every_hostile_file_gets_its_row_naming_what_it_is(graded):
    rows = graded["rows"]
    names = {"correct", "friend", "nested", "raises", "complex", *graded["expected"]}
    assert set(rows) == names
    for name, words in graded["expected"].items():
        row = rows[name]
        if name != "halfbad":  # its real ex3 notebook is graded (below)
            assert (row["status"], row["total"]) == ("invalid", "0"), (name, row)
        assert words in row["reason"], (name, row["reason"])


def test_no_linked_notebook_earns_a_point_nor_shows_the_solution(graded):
    linked = ("absolute", "proc", "copycat", "sneaky", "dangling", "zero")
    for name in linked:
        assert graded["rows"][name]["total"] == "0", graded["rows"][name]
    assert graded["rows"]["halfbad"]["ex4"] == "0", "its linked ex4 notebook earns nothing"
    texts = [(graded["out"] / "grades.csv").read_text()]
    texts += [p.read_text() for p in (graded["out"] / "feedback").glob("*.md")]
    assert not any("BEGIN SOLUTION" in text or "return X * grad" in text for text in texts)


def test_a_bad_notebook_costs_only_its_exercise(graded):
    """halfbad's ex3 notebook is a real file (a copy of the solution, its own to answer for):
    it is graded; the linked ex4 notebook costs Exercise 4, and the reason names only it."""
    row = graded["rows"]["halfbad"]
    assert (row["status"], row["ex3"], row["ex4"], row["total"]) == ("graded", "25", "0", "25")
    assert "ex4_lrp.ipynb" in row["reason"] and "ex3_gradient_x_input" not in row["reason"]


def test_nested_folders_left_in_the_sandbox_are_cleaned_up(graded):
    """2,000 nested folders (two without permissions), a FIFO and links out of the sandbox:
    the run keeps its grade and every sandbox folder is removed after its run."""
    row = graded["rows"]["nested"]
    assert (row["total"], row["status"]) == ("50", "graded"), row
    assert graded["jobs"] == []


def test_exception_texts_and_unparsable_cells_stay_in_their_row(graded):
    row = graded["rows"]["raises"]
    assert (row["total"], row["status"]) == ("50", "graded"), row
    assert "RuntimeError: first line" in row["reason"] and SCRIPT in row["reason"]
    row = graded["rows"]["complex"]
    assert (row["total"], row["status"]) == ("50", "graded"), row
    assert "complex.ipynb code cell 1" in row["reason"], row


def test_grades_and_every_feedback_file_are_written(graded):
    for name, result in graded["results"].items():
        text = (graded["out"] / graded["rows"][name]["feedback"]).read_text()
        assert text.startswith(f"# Feedback for `{name}`")
        assert result.reason.split(";")[0] in text or result.status == "graded"


def test_the_reasons_are_printed_for_the_closing_note(graded):
    for name, row in sorted(graded["rows"].items()):
        print(f"{name}: {row['total']} {row['status']}: {row['reason'][:160]}")


# ---------------------------------------------------------------------------
# the grader's own failures stay with their submission (no grading run: a stand-in grader)
# ---------------------------------------------------------------------------


class BrokenGrader:
    """Stands in for runner.Grader: fails to run some submissions, gives runs that scoring
    cannot read to others, and an empty (ungraded) run to the rest."""

    cell_timeout, hidden = 10, None

    def __init__(self):
        self.lock = threading.Lock()
        self.course = COURSE

    def run(self, sub, lost=()):
        if sub.student == "crash":
            raise RuntimeError("the sandbox folder vanished")
        if sub.student == "unscorable":
            return Run(records={0: {}}, roles=[None])  # score() trips over it
        return Run(records={}, roles=[])


class Watch:
    def __init__(self, fail=False):
        self.fail = fail

    def verify(self):
        if self.fail:
            raise OSError(28, "No space left on device")
        return []


COURSE = Course([Check(e, 1, f"{e}.ipynb", "", (), 25.0) for e in ("ex3", "ex4")], {})


def book(tmp_path, names):
    subs = [parse(Submission(n, [NotebookFile("n.ipynb", nb_bytes([IMPORTS]))])) for n in names]
    folder = OutputFolder(tmp_path / "out", Layout.of(COURSE), "Sheet")
    return Gradebook(subs, folder, COURSE)


def test_a_run_or_score_that_fails_is_that_submissions_row(tmp_path):
    gradebook = book(tmp_path, ["crash", "unscorable", "plain"])
    assert grade_in_parallel(BrokenGrader(), gradebook, Watch(), 2, False) == []
    rows = {r.student: (r.status, r.reason) for r in gradebook.results}
    assert rows["crash"] == (
        "error",
        "the grader failed on this submission (RuntimeError: the sandbox folder vanished)",
    )
    assert rows["unscorable"][0] == "error" and "AttributeError" in rows["unscorable"][1]
    assert rows["plain"] == ("error", "the notebook did not run: no output")
    assert read_csv(tmp_path / "out" / "grades.csv").keys() == {"crash", "unscorable", "plain"}


def test_protected_files_that_cannot_be_checked_are_the_rows_of_the_runs_graded_alone(tmp_path):
    gradebook = book(tmp_path, ["ann", "bob"])
    grade_alone(BrokenGrader(), gradebook, Watch(fail=True), [0])
    assert (gradebook.results[0].status, gradebook.results[1].status) == ("error", "pending")
    assert "No space left on device" in gradebook.results[0].reason


def test_a_feedback_file_that_cannot_be_written_stops_no_other(tmp_path):
    gradebook = book(tmp_path, ["ann", "bob", "cy"])
    (tmp_path / "out" / "feedback" / "bob.md").mkdir(parents=True)  # in the way
    for key, sub in enumerate(gradebook.subs):
        gradebook.record(key, Result(sub.student, {"ex3": 25.0, "ex4": 0.0}, "graded", "ok"))
    gradebook.finish()
    assert (tmp_path / "out" / "feedback" / "ann.md").is_file()
    assert (tmp_path / "out" / "feedback" / "cy.md").is_file()
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert rows["bob"]["total"] == "25" and rows["bob"]["status"] == "graded"
    assert rows["bob"]["reason"].startswith("ok; no feedback file (IsADirectoryError")
    assert rows["ann"]["reason"] == "ok"
