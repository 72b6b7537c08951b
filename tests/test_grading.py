"""Grading with nbval (lrpkit.grade): crafted bad, correct and partial submissions.

Most tests grade the tiny course of tests/submissions_fixtures/tiny_course.py (numpy only, so
a kernel starts in about a second); the tests marked slow grade the real exercises with the
stand-in VGG-16 when their solution notebooks exist.
"""

import csv
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

from lrpkit import grade, student

sys.path.insert(0, str(Path(__file__).parent / "submissions_fixtures"))
import tiny_course  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT = 15
TIMEOUT = 60


# ---------------------------------------------------------------------------
# crafting submissions
# ---------------------------------------------------------------------------


def nb_bytes(cells):
    nb = tiny_course.notebook([tiny_course.cell(kind, src, tags) for kind, src, tags in cells])
    return nbformat.writes(nb).encode()


def code(source, tags=()):
    return ("code", source, tags)


IMPORTS = code("import numpy\n\nfrom lrpkit import checks")
WRONG_GXI = code("def gradient_x_input(model, X, c):\n    return X")


def solution_source(name):
    """The solution code of the tiny course without markers (what a good student writes)."""
    nb = nbformat.reads(
        nbformat.writes(
            tiny_course.notebook(
                [
                    tiny_course.cell("code", tiny_course.GXI),
                    tiny_course.cell("code", tiny_course.CONV),
                ]
            )
        ),
        as_version=4,
    )
    solved = student.exercise_notebook(nb, solved=range(10))
    return solved.cells[{"gxi": 0, "conv": 1}[name]].source


def good_cells():
    return [IMPORTS, code(solution_source("gxi")), code(solution_source("conv"))]


def submissions(course, out_paths):
    """{file name: bytes or {file name: bytes} for a folder} of crafted submissions."""
    solutions = course / "notebooks" / "solutions"
    ex3 = (solutions / "ex3_gradient_x_input.ipynb").read_bytes()
    ex4 = (solutions / "ex4_lrp.ipynb").read_bytes()
    ex4_nb = student.exercise_notebook(student.read(solutions / "ex4_lrp.ipynb"))
    ex4_stub = student.render(ex4_nb).encode()
    check3 = tiny_course.CHECK3
    pass3 = "PASS gradient_x_input: R equals the reference"
    vandal = f"""\
import os, pathlib, shutil
import lrpkit.checks
# its own sandbox copy of the references, found the way the checks find them
shutil.rmtree(pathlib.Path(lrpkit.checks.__file__).parents[1] / "data" / "reference")
# everything it can reach by absolute paths: the real references, kit, submissions, grades
shutil.rmtree({str(course / "data" / "reference")!r})
fake = "def check_gradient_x_input(f): print({pass3!r})"
open({str(course / "lrpkit" / "checks.py")!r}, "w").write(fake)
for path in pathlib.Path({str(out_paths["submissions"])!r}).glob("*.ipynb"):
    if path.name != "vandal.ipynb":
        path.write_text("{{}}")
os.makedirs({str(out_paths["out"])!r}, exist_ok=True)
open(os.path.join({str(out_paths["out"])!r}, "grades.csv"), "w").write("hacked")
# and things near its sandbox: other sandboxes, the grader's workspace
for path in pathlib.Path("../..").glob("*/box/data/reference/*"):
    path.chmod(0o644); path.write_text("{{}}")
"""
    return {
        # correct and partially correct
        "good": {"ex3_gradient_x_input.ipynb": ex3, "ex4_lrp.ipynb": ex4},
        "good1.ipynb": nb_bytes(good_cells()),
        "only3": {"ex3_gradient_x_input.ipynb": ex3, "ex4_lrp.ipynb": ex4_stub},
        "wrong3.ipynb": nb_bytes([IMPORTS, WRONG_GXI, code(solution_source("conv"))]),
        # unreadable
        "badjson.ipynb": b'{"cells": [',
        "nbformat3.ipynb": json.dumps(
            {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
        ).encode(),
        "empty.ipynb": nb_bytes([]),
        "binary.ipynb": bytes(range(256)),
        # renamed or missing
        "renamed.ipynb": nb_bytes(
            [
                IMPORTS,
                code(solution_source("gxi").replace("def gradient_x_input", "def grad_x_input")),
                code(solution_source("conv").replace("class Conv", "class LRPConv")),
            ]
        ),
        # exceptions in its own cells (the functions are right)
        "raises.ipynb": nb_bytes(
            [IMPORTS, code("1 / 0"), *good_cells()[1:], code("undefined_name")]
        ),
        # an endless loop in a cell of its own, before correct code
        "loop.ipynb": nb_bytes([IMPORTS, code("while True:\n    pass"), *good_cells()[1:]]),
        # an endless loop inside the function the check calls
        "loopfn.ipynb": nb_bytes(
            [
                IMPORTS,
                code("def gradient_x_input(model, X, c):\n    while True:\n        pass"),
                code(solution_source("conv")),
            ]
        ),
        # enormous output: 40 MB printed, then correct code
        "flood.ipynb": nb_bytes(
            [IMPORTS, code("for i in range(400):\n    print('x' * 100_000)"), *good_cells()[1:]]
        ),
        # patching the checks, printing fake verdicts (with a wrong gradient_x_input)
        "patchfn.ipynb": nb_bytes(
            [
                IMPORTS,
                WRONG_GXI,
                code(
                    "import lrpkit.checks\n"
                    f"checks.check_gradient_x_input = lambda f: print({pass3!r})\n"
                    "lrpkit.checks.check_gradient_x_input = checks.check_gradient_x_input"
                ),
            ]
        ),
        "patchprint.ipynb": nb_bytes(
            [
                IMPORTS,
                WRONG_GXI,
                code(
                    f"import builtins\n_print = builtins.print\n"
                    f"builtins.print = lambda *a, **k: _print({pass3!r})"
                ),
            ]
        ),
        "patchstdout.ipynb": nb_bytes(
            [
                IMPORTS,
                WRONG_GXI,
                code(
                    f"import sys\nclass Fake:\n    def write(self, s):\n"
                    f"        sys.__stdout__.write(s)\n        return len(s)\n"
                    f"    def flush(self):\n        pass\nsys.stdout = Fake()\nprint({pass3!r})"
                ),
            ]
        ),
        "fakepass.ipynb": nb_bytes(
            [
                IMPORTS,
                WRONG_GXI,
                code(f"print({pass3!r})"),
                code(f"print({pass3!r})  # its own 'check' cell", ["check", "ex3"]),
                code(
                    check3.replace(
                        "checks.check_gradient_x_input(gradient_x_input)", f"print({pass3!r})"
                    )
                ),
            ]
        ),
        # the instructor's reference solution (an editable install of the kit maps lrpkit.*)
        "reference.ipynb": nb_bytes(
            [IMPORTS, code("from lrpkit.lrp import gradient_x_input"), *good_cells()[2:]]
        ),
        # forges the grader's cell records through /proc, before and after the checks
        "forger.ipynb": nb_bytes([IMPORTS, WRONG_GXI, code(FORGER)]),
        # the kernel dies
        "exits.ipynb": nb_bytes([*good_cells(), code("import os\nos._exit(3)")]),
        # deletes and overwrites what it can find
        "vandal.ipynb": nb_bytes([code(vandal), *good_cells()]),
        # a file name that is no student id
        "not an id.ipynb": nb_bytes(good_cells()),
    }


FORGER = """\
import json, os, threading, time
parent = os.getppid()
environ = open(f"/proc/{parent}/environ", "rb").read().split(b"\\0")
fd = next(e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"LRPKIT_GRADE_FD="))
pipe = open(f"/proc/{parent}/fd/{fd}", "w", buffering=1)
fake = {"event": "cell", "outcome": "passed", "seconds": 0, "stdout": "PASS", "error": None,
        "message": ""}
def forge():
    while True:
        for cell in range(30):
            pipe.write(json.dumps({**fake, "cell": cell}) + "\\n")
        time.sleep(0.005)
threading.Thread(target=forge, daemon=True).start()
"""


def write_submissions(folder, subs):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in subs.items():
        if isinstance(content, dict):
            (folder / name).mkdir()
            for inner, data in content.items():
                (folder / name / inner).write_bytes(data)
        else:
            (folder / name).write_bytes(content)


def tree_hashes(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


# ---------------------------------------------------------------------------
# one grading run of all crafted submissions (2 workers)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny course, built once (its solution notebooks are executed to store verdicts)."""
    return tiny_course.build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def graded(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("run")
    course_root = base / "course"
    shutil.copytree(tiny, course_root)
    paths = {"submissions": base / "submissions", "out": base / "out"}
    subs = submissions(course_root, paths)
    write_submissions(paths["submissions"], subs)
    before = {"course": tree_hashes(course_root), "subs": tree_hashes(paths["submissions"])}
    course = grade.load_course(course_root)
    started = time.monotonic()
    results = grade.grade(
        paths["submissions"],
        paths["out"],
        workers=2,
        course=course,
        root=course_root,
        cell_timeout=CELL_TIMEOUT,
        timeout=TIMEOUT,
        progress=False,
    )
    seconds = time.monotonic() - started
    return {
        "results": {r.student: r for r in results},
        "rows": read_csv(paths["out"] / "grades.csv"),
        "out": paths["out"],
        "subs": subs,
        "before": before,
        "after": {"course": tree_hashes(course_root), "subs": tree_hashes(paths["submissions"])},
        "seconds": seconds,
    }


def row(graded, student):
    return graded["rows"][student]


def test_one_row_per_submission_with_all_columns(graded):
    with open(graded["out"] / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "ex3", "ex4", "total", "status", "reason"]
    expected = sorted(
        Path(name).stem if name.endswith(".ipynb") else name for name in graded["subs"]
    )
    assert sorted(r["student"] for r in rows) == expected
    for r in rows:
        assert float(r["total"]) == pytest.approx(float(r["ex3"]) + float(r["ex4"]))
        assert r["status"] in {"graded", "invalid", "timeout", "tampered", "error"}
        assert r["reason"]
    assert not list(graded["out"].glob(".*tmp")), "a temporary file of the atomic write is left"


def test_feedback_file_per_student(graded):
    for name in graded["rows"]:
        text = (graded["out"] / "feedback" / f"{grade.safe_name(name)}.md").read_text()
        assert text.startswith(f"# Feedback for {name}")


def test_correct_submissions_get_full_points(graded):
    for name in ("good", "good1"):
        r = row(graded, name)
        assert (r["ex3"], r["ex4"], r["total"], r["status"]) == ("25", "25", "50", "graded"), r
        assert r["reason"] == "all checks passed"
    text = (graded["out"] / "feedback" / "good.md").read_text()
    assert "ex3 check 1 (25 P): PASS -- PASS gradient_x_input" in text
    assert text.count("(12.5 P): PASS") == 2


def test_only_exercise_3_right(graded):
    r = row(graded, "only3")
    assert (r["ex3"], r["ex4"], r["total"], r["status"]) == ("25", "0", "25", "graded")
    assert "NotImplementedError" in r["reason"] and "Exercise 4" in r["reason"]


def test_wrong_values_get_the_checks_hint(graded):
    r = row(graded, "wrong3")
    assert (r["ex3"], r["ex4"]) == ("0", "25")
    assert "hint: multiply the gradient by the input" in r["reason"]
    text = (graded["out"] / "feedback" / "wrong3.md").read_text()
    assert "FAIL -- FAIL gradient_x_input: wrong values" in text


@pytest.mark.parametrize(
    "name, words",
    [
        ("badjson", "not valid JSON"),
        ("nbformat3", "nbformat 3"),
        ("empty", "empty notebook"),
        ("binary", "not UTF-8"),
        ("not an id", "not a student id"),
    ],
)
def test_unreadable_submissions_get_a_row_with_the_reason(graded, name, words):
    r = row(graded, name)
    assert (r["status"], r["total"]) == ("invalid", "0")
    assert words in r["reason"]


def test_renamed_function_and_class(graded):
    r = row(graded, "renamed")
    assert (r["ex3"], r["ex4"], r["status"]) == ("0", "0", "graded")
    assert "`gradient_x_input` is not defined" in r["reason"]
    assert "`Conv` is not defined" in r["reason"]


def test_exceptions_in_own_cells_do_not_stop_the_checks(graded):
    r = row(graded, "raises")
    assert (r["total"], r["status"]) == ("50", "graded")
    text = (graded["out"] / "feedback" / "raises.md").read_text()
    assert "ZeroDivisionError" in text and "`undefined_name` is not defined" in text


def test_endless_loop_in_a_cell_is_stopped_and_grading_goes_on(graded):
    r = row(graded, "loop")
    assert (r["total"], r["status"]) == ("50", "graded"), r
    assert "endless loop" in (graded["out"] / "feedback" / "loop.md").read_text()


def test_endless_loop_in_the_checked_function(graded):
    r = row(graded, "loopfn")
    assert (r["ex3"], r["ex4"], r["status"]) == ("0", "25", "graded"), r
    assert "endless loop" in r["reason"]


def test_enormous_output_is_cut(graded):
    r = row(graded, "flood")
    assert (r["total"], r["status"]) == ("50", "graded"), r
    assert (graded["out"] / "feedback" / "flood.md").stat().st_size < 10_000


@pytest.mark.parametrize("name", ["patchfn", "patchprint", "patchstdout", "fakepass", "forger"])
def test_patched_checks_and_fake_pass_lines_earn_nothing(graded, name):
    r = row(graded, name)
    assert (r["ex3"], r["ex4"], r["status"]) == ("0", "0", "graded"), r
    assert "FAIL gradient_x_input: wrong values" in r["reason"] or "differs" in r["reason"]


def test_the_reference_solution_is_out_of_reach(graded):
    r = row(graded, "reference")
    assert (r["ex3"], r["ex4"]) == ("0", "25"), r
    text = (graded["out"] / "feedback" / "reference.md").read_text()
    assert "No module named 'lrpkit.lrp'" in text


def test_a_dying_kernel_is_reported(graded):
    r = row(graded, "exits")
    assert (r["total"], r["status"]) == ("0", "graded"), r
    assert "kernel" in r["reason"]


def test_vandal_changes_nothing_and_is_marked(graded):
    r = row(graded, "vandal")
    assert (r["status"], r["total"]) == ("tampered", "0"), r
    # the course (kit, references, solutions) and every submission are as before
    assert graded["after"]["course"] == graded["before"]["course"]
    assert graded["after"]["subs"] == graded["before"]["subs"]
    # the graded results of the others are those of a quiet run
    for name in ("good", "good1", "raises"):
        assert row(graded, name)["total"] == "50"
    kept = list((graded["out"] / "changed-files").iterdir())
    assert kept, "the changed files are kept for the instructor to look at"


def test_grading_run_time(graded):
    # 23 submissions, 2 workers, including the loops' timeouts and the vandal's reruns.
    assert graded["seconds"] < 300


# ---------------------------------------------------------------------------
# smaller runs and units
# ---------------------------------------------------------------------------


def test_per_submission_timeout_kills_everything(tiny, tmp_path):
    subs = tmp_path / "subs"
    write_submissions(
        subs,
        {
            "slow.ipynb": nb_bytes(
                [
                    code(
                        "import subprocess\n"
                        "subprocess.Popen(['sleep', '300.4242'], start_new_session=True)"
                    ),
                    *[code("import time\ntime.sleep(4)") for _ in range(4)],
                    *good_cells(),
                ]
            ),
        },
    )
    course = grade.load_course(tiny)
    started = time.monotonic()
    [result] = grade.grade(
        subs,
        tmp_path / "out",
        workers=1,
        course=course,
        root=tiny,
        cell_timeout=CELL_TIMEOUT,
        timeout=8,
        progress=False,
    )
    assert time.monotonic() - started < 40
    assert (result.status, result.total) == ("timeout", 0)
    assert "per-submission limit" in result.reason
    import psutil

    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.info["cmdline"] == ["sleep", "300.4242"]:
                leftovers.append(proc)
        except psutil.Error:
            pass
    assert not leftovers, "a process the submission started survived"


def test_graded_notebook_drops_student_checks_and_carries_expected_outputs(tiny, tmp_path):
    course = grade.load_course(tiny)
    sub = grade.Submission(
        "s",
        [
            (
                "s.ipynb",
                nb_bytes(
                    [
                        IMPORTS,
                        WRONG_GXI,
                        code("print('PASS')", ["check", "ex3"]),
                        code("checks.check_gradient_x_input(gradient_x_input)"),
                    ]
                ),
            )
        ],
    )
    grade.parse(sub)
    nb, roles = grade.graded_notebook(sub, course.checks, tmp_path)
    assert [r for r, _ in roles].count("student") == 2
    assert [r for r, _ in roles].count("check") == len(course.checks) == 3
    for cell, (role, what) in zip(nb.cells, roles, strict=True):
        if role == "check":
            assert cell.source == what.source and cell.execution_count
            assert cell.outputs[0]["text"].startswith("PASS")
        else:
            assert not cell.outputs and "nbval-ignore-output" in cell.metadata["tags"]


def test_unchanged_display_cells_are_skipped(tiny, tmp_path):
    course = grade.load_course(tiny)
    assert course.skip == {tiny_course.DISPLAY}
    changed = tiny_course.DISPLAY + "\ngradient_x_input = 1"
    sub = grade.Submission(
        "s", [("s.ipynb", nb_bytes([IMPORTS, code(tiny_course.DISPLAY + "  \n"), code(changed)]))]
    )
    grade.parse(sub)
    nb, roles = grade.graded_notebook(sub, course.checks, tmp_path, skip=course.skip)
    sources = [c.source for c, (role, _) in zip(nb.cells, roles, strict=True) if role == "student"]
    assert sources == [IMPORTS[1], changed], "the unchanged copy is skipped, the edited one runs"


def test_points_are_split_over_an_exercises_checks(tiny):
    """ex4's two checks share its 25 points; ex3's check of given code (above the task) is
    not graded, so its one graded check gets all 25."""
    checks = grade.load_course(tiny).checks
    assert "check_reference" not in "".join(c.source for c in checks)
    by = {e: [c.points for c in checks if c.exercise == e] for e in grade.EXERCISES}
    assert by == {"ex3": [25.0], "ex4": [12.5, 12.5]}


def test_unexecuted_solutions_are_refused(tiny, tmp_path):
    shutil.copytree(tiny, tmp_path / "c")
    path = tmp_path / "c" / "notebooks" / "solutions" / "ex4_lrp.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nbformat.write(nb, str(path))
    with pytest.raises(grade.GradingError, match="no stored output"):
        grade.load_course(tmp_path / "c")


def test_write_atomic_replaces_whole_files(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old")
    grade.write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_watch_restores_changed_and_deleted_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("A")
    b.write_text("B")
    watch = grade.Watch([a, b], quarantine=tmp_path / "q")
    assert watch.verify() == []
    a.write_text("changed")
    b.unlink()
    assert sorted(watch.verify()) == [a, b]
    assert (a.read_text(), b.read_text()) == ("A", "B")
    assert [p.read_text() for p in (tmp_path / "q").iterdir()] == ["changed"]
    a.touch()  # same content: not a change
    assert watch.verify() == []


def test_command_line(tiny, tmp_path):
    subs = tmp_path / "subs"
    write_submissions(subs, {"ann.ipynb": nb_bytes(good_cells()), "bad.ipynb": b"nope"})
    args = [
        str(subs),
        "--workers",
        "1",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
        "--cell-timeout",
        "20",
        "--timeout",
        "60",
        "--root",
        str(tiny),
    ]
    assert grade.main(args) == 0
    rows = read_csv(tmp_path / "o" / "grades.csv")
    assert (rows["ann"]["total"], rows["bad"]["status"]) == ("50", "invalid")
    assert grade.main([str(tmp_path / "missing"), "--root", str(tiny), "--no-progress"]) == 2


@pytest.mark.parametrize(
    "source, dropped",
    [
        ("from lrpkit import checks\n\nchecks.check_gradient_x_input(gradient_x_input)", True),
        ("import lrpkit.checks as checks\nchecks.check_conv(Conv)  # mine", True),
        ("from lrpkit.checks import check_conv\ncheck_conv(Conv)", True),
        ("_ = checks.check_input(X)", True),
        ("_ = gradient_x_input(model, X, c)", False),
        ("def check_gradient_x_input(f):\n    print('PASS')", False),
        (
            "R = gradient_x_input(model, X, c)\nchecks.check_gradient_x_input(gradient_x_input)",
            False,
        ),
        ("from lrpkit import checks", False),
        ("checks.check(", False),
    ],
)
def test_untagged_check_cells_are_recognised(source, dropped):
    assert grade.is_check(source) is dropped


# ---------------------------------------------------------------------------
# the real exercises: stand-in VGG-16, the kit's checks and references
# ---------------------------------------------------------------------------


def real_course(base, castle_file):
    """A copy of the kit's course (grading watches and restores its files: never the kit's)."""
    (base / "data").mkdir(parents=True)
    shutil.copyfile(castle_file, base / "data" / "castle.jpg")
    for name in (*grade.KIT, "data/reference", "notebooks/solutions"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, base / name)
        elif source.is_file():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, base / name)
    return base


@pytest.fixture(scope="module")
def real(tmp_path_factory, castle_file):
    from lrpkit import grade_bench

    base = tmp_path_factory.mktemp("real")
    course_root = real_course(base / "course", castle_file)
    expected = grade_bench.make_submissions(
        base / "submissions", 1, solutions=course_root / "notebooks" / "solutions"
    )
    results = grade.grade(
        base / "submissions", base / "out", workers=2, root=course_root, progress=False
    )
    return {"results": {r.student: r for r in results}, "expected": expected, "out": base / "out"}


@pytest.mark.slow
def test_real_exercises_are_graded_with_the_stand_in(real):
    """All correct: 50; only Exercise 3: 25; the exercises as handed out: 0."""
    got = {name: (r.status, r.points["ex3"], r.total) for name, r in real["results"].items()}
    assert got == {
        "correct01": ("graded", 25, 50),
        "only301": ("graded", 25, 25),
        "none01": ("graded", 0, 0),
    }
    assert len(read_csv(real["out"] / "grades.csv")) == len(real["expected"])


@pytest.mark.slow
def test_real_feedback_gives_each_checks_verdict(real):
    text = (real["out"] / "feedback" / "only301.md").read_text()
    assert "PASS check_gradient_x_input" in text
    assert "FAIL check_conv" in text and "NotImplementedError" in text
    n_checks = len(grade.load_checks(ROOT / "notebooks" / "solutions"))
    assert text.count("- ex3 check") + text.count("- ex4 check") == n_checks
