"""Crafting submissions for the grading tests: cells, notebooks, and the crafted bad ones.

Most tests grade the tiny course of tests/submissions_fixtures/tiny_course.py (numpy only, so
a kernel starts in about a second).
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

import nbformat

from lrpkit.authoring import student
from lrpkit.grading.course import KIT
from lrpkit.grading.results import tables
from lrpkit.grading.results.gradebook import Layout

sys.path.insert(0, str(Path(__file__).parents[1] / "submissions_fixtures"))
import tiny_course  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CELL_TIMEOUT = 15
TIMEOUT = 60


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
import lrpkit.selfcheck.checks
# its own sandbox copy of the references, found the way the checks find them
shutil.rmtree(pathlib.Path(lrpkit.selfcheck.checks.__file__).parents[2] / "data" / "reference")
# everything it can reach by absolute paths: the real references, kit, submissions, grades
shutil.rmtree({str(course / "data" / "reference")!r})
fake = "def check_gradient_x_input(f): print({pass3!r})"
open({str(course / "lrpkit" / "selfcheck" / "checks.py")!r}, "w").write(fake)
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
                    "import lrpkit.selfcheck.checks\n"
                    f"checks.check_gradient_x_input = lambda f: print({pass3!r})\n"
                    "lrpkit.selfcheck.checks.check_gradient_x_input = checks.check_gradient_x_input"
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
            [IMPORTS, code("from lrpkit.reference.lrp import gradient_x_input"), *good_cells()[2:]]
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
    """{student: row} of a grades.csv the grader wrote (the points-possible row left out)."""
    _, rows = Layout.read(*tables.read_csv(path))
    return {row["student"]: row for row in rows}


def real_course(base, castle_file):
    """A copy of the kit's course (grading watches and restores its files: never the kit's)."""
    (base / "data").mkdir(parents=True)
    shutil.copyfile(castle_file, base / "data" / "castle.jpg")
    for name in (*KIT, "data/reference", "notebooks/solutions"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, base / name)
        elif source.is_file():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, base / name)
    return base
