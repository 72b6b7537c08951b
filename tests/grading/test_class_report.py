"""The class report, the feedback pages and similarity on one graded class (the acceptance).

conftest.class_run grades the 45 submissions of classcourse.py (correct ones, typical
mistakes, 20 independent solutions, planted copies, a failing cell, a memory hog, an empty
submission) in one sandboxed run. Here report.html is read back (html.parser) and every number
it shows is recomputed from grades.csv and results.jsonl; the planted copies must head the
similarity list with no independent pair flagged; every feedback file and page is searched
for the hidden configuration's values.
"""

import json
import re
import shutil
import statistics
from html.parser import HTMLParser

import pytest
from classcourse import INDEPENDENT, MISTAKES, PLANTED, RAISES, SLIPS
from crafting import read_csv

from lrpkit.grading import cli
from lrpkit.grading.results import details, similarity, tables
from lrpkit.grading.results.classreport import DIAGNOSES, EXAMPLES, mask
from lrpkit.grading.results.feedback import number, page_name
from lrpkit.grading.results.gradebook import Layout
from lrpkit.grading.results.outputs import read_configs
from lrpkit.grading.run.runner import isolation
from lrpkit.selfcheck import config as grading_config

pytestmark = pytest.mark.slow


class Page(HTMLParser):
    """A page read back: the text of every element with an id, every table's rows (cell
    texts) by id, every link, and the tags used."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.ids, self.tables, self.links, self.tags = {}, {}, [], set()
        self._open, self._table, self._row, self._cell = [], None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag in ("br", "meta", "img", "input", "hr", "link"):
            return
        self._open.append([tag, attrs.get("id"), []])
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id") or f"#{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a":
            self.links.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if tag in ("br", "meta", "img", "input", "hr", "link"):
            return
        opened, ident, text = self._open.pop()
        assert opened == tag, (opened, tag)
        if ident:
            self.ids[ident] = " ".join("".join(text).split())
        if self._open:
            self._open[-1][2].extend(text)
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(text).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._open:
            self._open[-1][2].append(data)


@pytest.fixture(scope="module")
def out(class_run):
    return class_run.out


@pytest.fixture(scope="module")
def rows(out):
    return read_csv(out / "grades.csv")


@pytest.fixture(scope="module")
def layout(out):
    return Layout.read(*tables.read_csv(out / "grades.csv"))[0]


@pytest.fixture(scope="module")
def results(out):
    return details.read_results(out / "results.jsonl")


@pytest.fixture(scope="module")
def report(out):
    return Page((out / "report.html").read_text(encoding="utf-8"))


def key(a, b):
    return tuple(sorted((a, b)))


def with_points(rows):
    return [row for row in rows.values() if row["total"] != ""]


# -- the run --------------------------------------------------------------------------------


def test_full_marks_on_twenty_different_hidden_configurations(class_run, rows):
    """The correct solutions (the kit's, the independent ones, their copies) each get full
    marks on a hidden configuration of their own: at least 20 different ones, graded end to
    end (tests/test_checks_drawn.py prints the worst float64 errors on drawn ones)."""
    configs = read_configs(class_run.out / "configs.jsonl")
    full = {configs[s] for s, row in rows.items() if row["total"] == "50"}
    assert len(full) >= 20, len(full)


def test_one_run_graded_the_whole_class(class_run, rows, results):
    assert len(class_run.students) >= 40 and sorted(rows) == class_run.students
    assert rows["empty"]["status"] == "invalid"
    for student in ("correct", "hog", *INDEPENDENT):
        failed = {k for k, v in results[student]["checks"].items() if not v["passed"]}
        if student in SLIPS:  # the kit's checks are stricter than the fixtures' own tests
            check, words = SLIPS[student]
            assert failed == {check} and words in results[student]["checks"][check]["what"]
        else:
            assert (rows[student]["total"], rows[student]["status"]) == ("50", "graded"), student

    def verdicts(student):
        return rows[student]["total"], {
            k: v["passed"] for k, v in results[student]["checks"].items()
        }

    for copy, original in PLANTED:  # a copy earns what its original earns, slips included
        assert verdicts(copy) == verdicts(original), (copy, original)
    for student in MISTAKES:
        assert float(rows[student]["total"]) < 50, student
    negative = rows["gamma-negative"]["ex4"]
    assert (rows["raises"]["ex3"], rows["raises"]["ex4"]) == ("25", negative) != ("25", "25")
    assert set(results) == set(rows)
    # the sandbox as recorded on this machine: "bubblewrap, seccomp" and the cgroup version
    assert {row["sandbox"] for s, row in rows.items() if s != "empty"} == {isolation()}


# -- report.html's numbers are grades.csv's ------------------------------------------------


def test_totals_equal_grades_csv(report, rows, layout):
    totals = [float(row["total"]) for row in with_points(rows)]
    assert report.ids["submissions"] == str(len(rows))
    assert report.ids["with-points"] == str(len(totals)) == str(len(rows))  # invalid: 0
    assert report.ids["mean"] == number(statistics.fmean(totals))
    assert report.ids["median"] == number(statistics.median(totals))
    assert report.ids["possible"] == layout.maximum == "50"
    statuses = {status: int(count) for status, count in report.tables["statuses"][1:]}
    counts = {}
    for row in rows.values():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    assert statuses == counts and statuses["invalid"] == 1
    assert report.tags >= {"svg", "table", "section"}


def test_pass_rates_equal_grades_csv(report, rows, layout):
    table = report.tables["pass-rates"]
    assert table[0] == ["Check", "Points", "Passed", "Of", "Pass rate"]
    assert [line[0] for line in table[1:]] == list(layout.checks)
    scored = with_points(rows)
    for check, points, passed, of, rate in table[1:]:
        earned = sum(float(row[check]) == float(layout.possible[check]) for row in scored)
        assert (points, passed, of) == (layout.possible[check], str(earned), str(len(scored)))
        assert rate == f"{earned / len(scored):.0%}"


def test_every_student_has_a_row_linked_to_their_feedback_page(report, rows, layout, out):
    table = report.tables["students"]
    assert table[0] == ["Student", "Total", *layout.exercises, "Status", "Reason"]  # no names
    shown = {line[0]: line for line in table[1:]}
    assert sorted(shown) == sorted(rows)
    for student, row in rows.items():
        line = shown[student]
        assert line[1:4] == [row["total"], row["ex3"], row["ex4"]]
        assert (line[4], line[5]) == (row["status"], " ".join(row["reason"].split()))
        assert page_name(row["feedback"]) in report.links
        assert (out / page_name(row["feedback"])).is_file()


def test_each_check_lists_its_most_frequent_diagnoses_with_examples(report, results, out):
    """Each check's failed verdicts in results.jsonl, grouped by their masked diagnosis: the
    report shows the most frequent with their counts and three example students."""
    text = (out / "report.html").read_text(encoding="utf-8")
    for check in report.tables["pass-rates"][1:]:
        failed = {}
        for student, record in results.items():
            verdict = record["checks"].get(check[0])
            if verdict and not verdict["passed"]:
                group = (mask(verdict["what"]), verdict["hint"])
                failed.setdefault(group, []).append(student)
        block = re.search(rf'data-check="{re.escape(check[0])}">(.*?)</div>', text, re.S)
        if not failed:
            assert block is None
            continue
        items = Page(block[1])
        counts = re.findall(r'<strong class="count">(\d+)</strong>', block[1])
        expected = sorted(failed.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:DIAGNOSES]
        assert [int(c) for c in counts] == [len(students) for _, students in expected]
        for (_, students), link_block in zip(expected, block[1].split('class="diagnosis"')[1:]):
            links = re.findall(r'href="feedback/([^"]+)\.html"', link_block)
            assert links == sorted(students)[:EXAMPLES]
        assert items.tags >= {"ol", "li", "a"}
    # the typical mistakes are named where a lecturer looks for them
    conv = re.search(r'data-check="ex4.check_conv">(.*?)</div>', text, re.S)[1]
    assert "negative weights" in conv and "feedback/gamma-negative.html" in conv


def test_time_section_equals_results_jsonl(report, results, rows):
    ran = {s: r["seconds"] for s, r in results.items() if rows[s]["status"] != "invalid"}
    assert report.ids["ran"] == str(len(ran)) == str(len(rows) - 1)
    assert report.ids["seconds-max"] == f"{max(ran.values()):.1f}"
    assert report.ids["seconds-median"] == f"{statistics.median(ran.values()):.1f}"
    slowest = sorted(ran.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    table = report.tables["slowest"][1:]
    assert [(line[0], line[1]) for line in table] == [(s, f"{v:.1f}") for s, v in slowest]
    limits = {line[0]: line[2] for line in report.tables["limits"][1:]}
    assert limits == {"hog": "memory limit 4 GiB exceeded"}
    assert results["hog"]["limits"] == ["memory limit 4 GiB exceeded"]


# -- similarity ---------------------------------------------------------------------------


def test_planted_copies_head_the_similarity_list_and_no_independent_pair_is_flagged(out, report):
    text = (out / "report.html").read_text(encoding="utf-8")
    shown = re.findall(r'<details class="pair"><summary>(\S+) and (\S+): score', text)
    planted = {key(*pair) for pair in PLANTED}
    assert {key(a, b) for a, b in shown} == planted
    fields, pairs = tables.read_csv(out / "similarity.csv")
    assert tuple(fields) == similarity.CSV_COLUMNS
    ranked = [key(p["student_a"], p["student_b"]) for p in pairs]
    assert set(ranked[: len(planted)]) == planted, ranked
    scores = [float(p["score"]) for p in pairs]
    assert scores == sorted(scores, reverse=True)
    others = [
        float(p["score"]) for p in pairs if key(p["student_a"], p["student_b"]) not in planted
    ]
    assert max(others, default=0.0) < similarity.REPORT
    # the shared lines are shown side by side, each with its cell and line
    assert "side-by-side" in text and "ex3_gradient_x_input.ipynb code cell" in text


# -- the report command --------------------------------------------------------------------


def test_the_report_command_writes_the_same_report_from_the_folder_alone(out, tmp_path, capsys):
    copy = tmp_path / "grades"
    shutil.copytree(out, copy)
    (copy / "report.html").unlink()
    (copy / "similarity.csv").unlink()
    assert cli.main(["report", str(copy)]) == 0
    assert "class report:" in capsys.readouterr().out
    assert (copy / "report.html").read_bytes() == (out / "report.html").read_bytes()
    assert (copy / "similarity.csv").read_bytes() == (out / "similarity.csv").read_bytes()


# -- feedback pages -------------------------------------------------------------------------


def test_feedback_says_pass_or_fail_once_with_diagnosis_and_hint(out, rows):
    for student, row in rows.items():
        md = (out / row["feedback"]).read_text(encoding="utf-8")
        page = (out / page_name(row["feedback"])).read_text(encoding="utf-8")
        assert "FAIL -- `FAIL" not in md and "PASS -- `PASS" not in md
        assert not re.search(r"(PASS|FAIL)\W+(PASS|FAIL)", Page(page).ids.get("checks-ex3", ""))
        for tag in ("<script", "<link", "<img", "http://", "https://", "@import", "url("):
            assert tag not in page, (student, tag)
    md = (out / rows["gamma-negative"]["feedback"]).read_text(encoding="utf-8")
    line = r"ex4 check 1, check_conv \(8\.33 P\): FAIL -- `[^`]*negative weights[^`]*`\. Hint: `"
    assert re.search(line, md), md
    page = Page((out / page_name(rows["gamma-negative"]["feedback"])).read_text(encoding="utf-8"))
    conv = [line for line in page.tables["checks-ex4"] if "check_conv" in line[0]]
    assert conv[0][1:3] == ["0 / 8.33", "FAIL"] and "negative weights" in conv[0][3]
    assert conv[0][4] and "Hint" not in conv[0][4]


def test_errors_in_own_cells_are_quoted_with_the_cells_first_lines(out, rows):
    first = RAISES.splitlines()
    md = (out / rows["raises"]["feedback"]).read_text(encoding="utf-8")
    assert "the cell that begins with\n\n  ```\n  " + "\n  ".join(first[:3]) + "\n  ```" in md
    assert "IndexError" in md and not re.search(r"code cell \d", md)
    page = (out / page_name(rows["raises"]["feedback"])).read_text(encoding="utf-8")
    assert '<pre class="excerpt"># try another class\nR_other = gradient_x_input(' in page
    assert not re.search(r"code cell \d", page)
    hog = (out / page_name(rows["hog"]["feedback"])).read_text(encoding="utf-8")
    assert "keep every heatmap in memory" in hog and "memory limit 4 GiB exceeded" in hog


def whole(text):
    """A regex of a number standing alone (not a part of a longer number or name)."""
    return rf"(?<![\w.]){text}(?![\w]|\.\d)"


#: numbers the kit's own texts name whatever the configuration: the image size, the sheet's
#: class, the self-checks' crop and probe, VGG-16's channels and classes, the sheet's gammas
PUBLIC = grading_config.Config.public()
CONSTANTS = {
    grading_config.SIZE, grading_config.CROP, PUBLIC.top, PUBLIC.c, PUBLIC.c2,
    PUBLIC.probe_seed, 1000, *grading_config.CHANNELS,
}  # fmt: skip
PUBLIC_GAMMAS = {
    form(g) for g in (*PUBLIC.gammas, PUBLIC.probe_gamma) for form in (repr, "{:.3g}".format)
}


def forms(value):
    """A float as a text could write it: in full, or with 3, 4 or 6 significant digits;
    forms with fewer than 3 significant digits are everywhere (0.01, 2.5) and left out."""
    texts = {repr(value), f"{value:.3g}", f"{value:.4g}", f"{value:.6g}"}
    return {t for t in texts if len(re.sub(r"\D", "", t.split("e")[0]).lstrip("0")) >= 3}


def hidden_values(cfg):
    """Regexes of one hidden configuration's values, as a text could show them: whole
    numbers of 3 or more digits (top, left, the classes, the probe seed), the gammas in
    ``forms``, the crop and probe shapes as the checks' messages write shapes. Shorter
    numbers are everywhere (points, line numbers) and the CONSTANTS and PUBLIC_GAMMAS are
    the kit's own texts: neither is searched."""
    found = []
    for name in ("top", "left", "c", "c2", "probe_seed"):
        value = getattr(cfg, name)
        if value >= 100 and value not in CONSTANTS:
            found.append((name, whole(value)))
    for name, value in [*(("gammas", g) for g in cfg.gammas), ("probe_gamma", cfg.probe_gamma)]:
        found += [(name, whole(re.escape(t))) for t in forms(value) - PUBLIC_GAMMAS]
    if cfg.size != PUBLIC.size:
        found.append(("size", rf"\b{cfg.size} x {cfg.size}\b|\b{cfg.size}, {cfg.size}\)"))
    out_channels, in_channels, kernel, n = cfg.probe_shape
    found.append(("probe_shape", rf"\(1, {out_channels}, {n}, {n}\)"))
    found.append(("probe_shape", rf"\({out_channels}, {in_channels}, {kernel}, {kernel}\)"))
    return found


class Text(HTMLParser):
    """A page's text as a reader sees it (the style sheet left out)."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.parts, self.style = [], False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.style = tag == "style"

    def handle_endtag(self, tag):
        self.style = False

    def handle_data(self, data):
        if not self.style:
            self.parts.append(data)


def leaks(out, rows, student, cfg):
    """The hidden values of ``cfg`` found in a student's feedback file and page."""
    md = (out / rows[student]["feedback"]).read_text(encoding="utf-8")
    page = (out / page_name(rows[student]["feedback"])).read_text(encoding="utf-8")
    return [
        (student, name, needle, kind)
        for kind, text in (("md", md), ("html", " ".join(Text(page).parts)))
        for name, needle in hidden_values(cfg)
        if re.search(needle, text)
    ]


#: a result shaped unlike X: lrpkit/selfcheck/judge.py's message names the sizes of the
#: shapes (H, W)
#: and must not show their values, the hidden crop's size
SHAPE_MISTAKE = "channels-summed"


def test_no_feedback_file_shows_the_hidden_configuration(out, rows):
    configs = read_configs(out / "configs.jsonl")
    assert len(configs) == len(rows) - 1  # every student who ran; not the empty one
    searched = 0
    for student, text in configs.items():
        if student == SHAPE_MISTAKE:
            continue  # the next test
        cfg = grading_config.Config.from_json(text)
        needles = hidden_values(cfg)
        assert len(needles) >= 8, needles
        # the search finds them where they are: in configs.jsonl's own line
        line = json.dumps(json.loads(text))
        assert re.search(whole(cfg.probe_seed), line)
        assert all(re.search(whole(re.escape(repr(g))), line) for g in cfg.gammas)
        assert leaks(out, rows, student, cfg) == []
        searched += 1
    assert searched == len(configs) - 1


def test_a_result_of_the_wrong_shape_does_not_show_the_hidden_crop_size(out, rows):
    """The shape messages name the sizes (H, W), never the hidden configuration's values."""
    cfg = grading_config.Config.from_json(read_configs(out / "configs.jsonl")[SHAPE_MISTAKE])
    assert cfg.size != PUBLIC.size  # else the search would leave the size out
    text = (out / rows[SHAPE_MISTAKE]["feedback"]).read_text(encoding="utf-8")
    assert "do not sum over the colour channels" in text
    assert "has shape (1, 1, H, W), but the X it was given has shape (1, 3, H, W)" in text
    assert leaks(out, rows, SHAPE_MISTAKE, cfg) == []
