"""The class report without a grading run (lrpkit.grading.results.classreport, details, outputs).

An output folder is written the way a run writes it (OutputFolder, write_feedback) from
made-up results, some with hostile text; then report.html is made from the folder alone.
The acceptance on a real graded class is test_class_report.py.
"""

import re

import pytest

from lrpkit.grading.course import Check, Course
from lrpkit.grading.intake.submissions import CodeCell, Submission
from lrpkit.grading.results import classreport, details
from lrpkit.grading.results.gradebook import Layout
from lrpkit.grading.results.outputs import OutputFolder, write_feedback
from lrpkit.grading.run.scoring import Note, Result, Verdict

EX3 = Check("ex3", 1, "ex3.ipynb", "checks.check_gradient_x_input(f)", (), 25.0, "ex3.check_gxi")
EX4 = Check("ex4", 1, "ex4.ipynb", "checks.check_conv(Conv)", (), 25.0, "ex4.check_conv")
COURSE = Course([EX3, EX4], {})
HOSTILE = "<script>alert(1)</script>"
MEMORY = "memory limit 4 GiB exceeded"
HOG = Note("ex3.ipynb code cell 3", "big = [0] * 10**12", f"{MEMORY} (MemoryError: )")
DIFFERS = "FAIL check_gxi: the result differs (relative L2 error {}). Hint: multiply by X"


def result(student, ok3, ok4, text3="", seconds=2.0, notes=(), status="graded", reason=""):
    verdicts = [
        Verdict(EX3, ok3, "PASS check_gxi: right" if ok3 else text3),
        Verdict(EX4, ok4, "PASS check_conv: right" if ok4 else f"FAIL check_conv: {HOSTILE}"),
    ]
    points = {"ex3": 25.0 * ok3, "ex4": 25.0 * ok4}
    checks = {EX3.key: points["ex3"], EX4.key: points["ex4"]}
    return Result(
        student, points, status, reason, verdicts, list(notes), seconds, "bubblewrap",
        checks=checks,
    )  # fmt: skip


@pytest.fixture
def folder(tmp_path):
    out = tmp_path / "grades"
    layout = Layout.of(COURSE)
    results = [
        result("ann", True, True, seconds=3.5),
        result("bob", False, True, DIFFERS.format("0.37"), seconds=1.25),
        result("cy", False, True, DIFFERS.format("4.1e-02")),
        result("dee", False, False, DIFFERS.format("0.9"), reason=HOSTILE),
        result("eve", False, True, DIFFERS.format("12")),
        result("fay", False, True, "FAIL check_gxi: R is X. Hint: multiply X by the gradient"),
        result("gus", True, True, seconds=9.0, status="limit", reason=MEMORY, notes=[HOG]),
        Result.rejected(Submission("hal", [], problem="hal.ipynb is empty")),
    ]
    folder = OutputFolder(out, layout, "Sheet")
    own = "def f(a, b):\n    return [x * a + b for x in range(a)]\n" * 3
    renamed = own.replace("f(a, b)", "g(p, q)").replace("x * a + b", "y * p + q")
    code = {
        "ann": [CodeCell("ex3.ipynb code cell 1", own)],
        "bob": [CodeCell("ex3.ipynb code cell 1", renamed.replace("range(a)", "range(p)"))],
        "cy": [CodeCell("ex3.ipynb code cell 1", f"s = {HOSTILE!r}\nprint(s)")],
    }
    folder.save_code({s: details.code_line(s, cells) for s, cells in code.items()})
    rows, lines = {}, {}
    for r in results:
        name = write_feedback(out, r, COURSE)
        rows[r.student] = layout.row(r, Submission(r.student, [], name=HOSTILE[:8]), name)
        lines[r.student] = details.result_line(r)
    folder.save(rows, {}, lines)
    return out


def test_a_report_from_the_folder_alone(folder):
    path = classreport.write_report(folder)
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("<svg") == 3  # totals, pass rates, seconds
    for student in ("ann", "bob", "hal"):
        assert f'<a href="feedback/{student}.html">{student}</a>' in text
    assert (folder / "feedback" / "hal.html").is_file()
    # the five failed ex3 verdicts: one diagnosis with its numbers masked (4 students, three
    # shown), one other; the ex4 failure once
    ex3 = re.search(r'data-check="ex3.check_gxi">(.*?)</div>', text, re.S)[1]
    counts = re.findall(r'<strong class="count">(\d+)</strong>', ex3)
    assert counts == ["4", "1"]
    assert "the result differs (relative L2 error …)" in ex3 and " and 1 more" in ex3
    assert re.findall(r'href="feedback/(\w+).html"', ex3) == ["bob", "cy", "dee", "fay"]
    # time: the limit hit; the empty submission never ran
    assert re.search(r'id="ran">7<', text) and re.search(r'id="seconds-max">9.0<', text)
    assert "memory limit 4 GiB exceeded" in re.search(r'id="limits">(.*?)</table>', text, re.S)[1]
    # similarity: ann's and bob's code are one with other names; cy's alone
    assert "ann and bob: score 100%" in text
    csv = (folder / "similarity.csv").read_text(encoding="utf-8")
    assert csv.splitlines()[1].startswith("ann,bob,1.000,")


def test_the_same_folder_gives_the_same_report(folder):
    first = classreport.write_report(folder).read_bytes()
    assert classreport.write_report(folder).read_bytes() == first


def test_a_folder_without_grades_is_refused(tmp_path):
    with pytest.raises(classreport.ReportError, match="grading run's output folder"):
        classreport.write_report(tmp_path)


def test_limits_hit_are_found_in_reasons_notes_and_verdicts():
    r = result("x", False, True, "FAIL check_gxi: took longer than 120 s and was stopped")
    r.notes = [Note("c", "", "process limit 512 exceeded (BlockingIOError: x)")]
    assert details.limits_hit(r) == ["process limit 512 exceeded", "cell time limit 120 s exceeded"]
    timeout = Result("t", {}, "timeout", "stopped after the per-submission limit of 600 s")
    assert details.limits_hit(timeout) == ["stopped after the per-submission limit of 600 s"]
    assert details.limits_hit(result("y", True, True)) == []


def test_the_report_command(folder, tmp_path, capsys):
    from lrpkit.grading import cli

    (folder / "report.html").unlink(missing_ok=True)
    assert cli.main(["report", str(folder)]) == 0
    assert (folder / "report.html").is_file() and (folder / "similarity.csv").is_file()
    assert f"class report: {folder / 'report.html'}" in capsys.readouterr().out
    assert cli.main(["report", str(tmp_path / "nothing")]) == 2
    assert "grading run's output folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # options are never abbreviated
        cli.main(["report", str(folder), "--ro", "."])
    with pytest.raises(SystemExit) as done:
        cli.main(["report", "--help"])
    assert done.value.code == 0 and "report.html" in capsys.readouterr().out
