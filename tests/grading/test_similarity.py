"""Similar submissions (lrpkit.grading.results.similarity, fingerprints): copies found, the rest
not.

tests/grading/similarity_fixtures/ holds 20 independently written correct solutions of the
exercises' tasks (s01-s20, different styles) and planted copies of some of them (c01-c09:
renamed, reordered, recommented, dead code, reformatted, all at once, two copies of one,
half from each of two). Each is handed in as the exercise notebooks with the stubs replaced
(lrpkit.bench.similarity.fixture_cells); every one is checked to be a real solution first.
"""

import csv
import importlib.util
import random
from html.parser import HTMLParser

import classcourse
import nbformat
import pytest
import torch
import torch.nn.functional as F

import utils
from lrpkit.bench import similarity as bench
from lrpkit.grading.intake.submissions import discover
from lrpkit.grading.results import fingerprints, similarity
from lrpkit.layout import SOLUTIONS
from lrpkit.reference import perturbation

FIXTURES, INDEPENDENT = classcourse.FIXTURES, classcourse.INDEPENDENT
#: half copied from each: above every independent pair, at about half the score
PARTIAL = {("c09_s12_s16_partial", "s12"), ("c09_s12_s16_partial", "s16")}
#: (copy, original) pairs of whole copies: classcourse's, less c09 (a copy of s12 in the
#: class, which hands in no Exercise 5); c02 is handed in with its code cells in reverse order
PLANTED = classcourse.PLANTED - PARTIAL
TOL = 1e-6  # relative L2 error, as the checks allow


def key(pair):
    return tuple(sorted(pair))


@pytest.fixture(scope="module")
def notebooks():
    return bench.exercise_notebooks()


@pytest.fixture(scope="module")
def template():
    return similarity.load_template()


@pytest.fixture(scope="module")
def handed_in(notebooks):
    """{name: [code cell source]}: every fixture as handed in, and two untouched notebooks."""
    found = {p.stem: bench.fixture_cells(p, notebooks) for p in FIXTURES}
    found["c02_s07_reordered"] = found["c02_s07_reordered"][::-1]
    found["untouched1"] = found["untouched2"] = bench.code_sources(notebooks)
    return found


@pytest.fixture(scope="module")
def ranked(handed_in, template):
    return similarity.compare(handed_in, template, low=0.0)


# -- the fixtures are real solutions ---------------------------------------------------------


def load(path):
    spec = importlib.util.spec_from_file_location(f"similarity_fixture_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def relative(a, b):
    return float((a - b).norm() / b.norm())


def tiny_classifier(seed):
    torch.manual_seed(seed)
    layers = [
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 5),
    ]
    return torch.nn.Sequential(*layers).double().eval().requires_grad_(False)


@pytest.fixture(scope="module")
def convpx(notebooks):
    """The given ConvPx class of the exercise notebook (the first layer of an LRP model)."""
    source = next(
        c.source for c in notebooks["ex4_lrp.ipynb"].cells if c.source.startswith("class ConvPx")
    )
    namespace = {"torch": torch, "utils": utils}
    exec(source, namespace)
    return namespace["ConvPx"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_each_fixture_is_a_correct_solution(path, convpx):
    """Gradient x Input against autograd; Conv against the LRP-gamma gradient written out
    with conv2d_input; lrp_relevance against autograd on a model with ConvPx; the curve
    against lrpkit.reference.perturbation.curve."""
    student = load(path)
    model, c = tiny_classifier(0), 3
    X = torch.randn(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[0, c], x)
    for gxi in (student.gradient_x_input, student.gradient_x_input_ex3):
        assert relative(gxi(model, X, c).detach(), X * grad) < TOL

    torch.manual_seed(2)
    conv, gamma = torch.nn.Conv2d(4, 6, 3, padding=1).double().requires_grad_(False), 0.25
    a = torch.relu(torch.randn(1, 4, 8, 8, dtype=torch.float64)).requires_grad_(True)
    out = student.Conv(conv, gamma)(a)
    assert relative(out.detach(), conv(a).detach()) < TOL
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * g).sum(), a)
    wp = conv.weight + gamma * conv.weight.clamp(min=0)
    bp = conv.bias + gamma * conv.bias.clamp(min=0)
    zp = F.conv2d(a.detach(), wp, bp, padding=1)
    twin = torch.nn.grad.conv2d_input(a.shape, wp, g * conv(a.detach()) / zp, padding=1)
    assert relative(grad, twin) < TOL

    torch.manual_seed(3)
    first = torch.nn.Conv2d(3, 4, 3, padding=1).double().requires_grad_(False)
    head = [torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 16 * 16, 5).double()]
    lrpmodel = torch.nn.Sequential(convpx(first), *head).requires_grad_(False)
    inputs = [t.clone().requires_grad_(True) for t in (X, *utils.bounds(X))]
    grads = torch.autograd.grad(lrpmodel(tuple(inputs))[0, c], inputs)
    twin = sum(t.detach() * g for t, g in zip(inputs, grads, strict=True))
    assert relative(student.lrp_relevance(lrpmodel, X, c).detach(), twin) < TOL

    R = torch.randn(X.shape, dtype=X.dtype, generator=torch.Generator().manual_seed(4))
    curve = student.perturbation_curve(model, X, R, c, size=4, steps=6, seed=5)
    twin = perturbation.curve(model, X, R, c, 4, 6, "uniform", 5, incremental=False)[0]
    assert curve.shape == (7,) and relative(curve, twin) < TOL


# -- copies found, independent work not ----------------------------------------------------


def test_every_fixture_is_an_independent_solution_or_a_planted_copy():
    """Every copy in similarity_fixtures/ is in PLANTED or PARTIAL, every original is one of
    the independent solutions, and none is left out."""
    copies = {p.stem for p in FIXTURES if p.stem.startswith("c")}
    assert {copy for copy, _ in PLANTED | PARTIAL} == copies
    assert {original for _, original in PLANTED | PARTIAL} <= set(INDEPENDENT) | copies
    assert len(INDEPENDENT) == 20 and len(copies) == 9


def test_every_planted_pair_ranks_above_every_independent_pair(ranked):
    scores = {key((p.a, p.b)): p.score for p in ranked}
    planted = {key(pair) for pair in PLANTED}
    copies = {key(pair) for pair in PLANTED | PARTIAL}
    assert planted <= scores.keys()
    independent = [score for pair, score in scores.items() if pair not in copies]
    lowest_copy = min(scores[pair] for pair in copies)
    assert lowest_copy > max(independent), sorted(scores.items(), key=lambda kv: -kv[1])[:15]
    # The report lists exactly the planted pairs (the half copies score about half).
    listed = {key((p.a, p.b)) for p in similarity.flagged(ranked)}
    assert planted <= listed <= copies
    assert all(0.3 < scores[key(pair)] < 0.7 for pair in PARTIAL)
    assert max(independent) < similarity.REPORT / 2


def test_shared_lines_are_the_copied_lines_side_by_side(ranked):
    pair = next(p for p in ranked if key((p.a, p.b)) == key(("c01_s03_renamed", "s03")))
    assert (pair.a, pair.b) == ("c01_s03_renamed", "s03") and pair.score > 0.9
    texts = {(left.text.strip(), right.text.strip()) for left, right in pair.shared}
    assert ("selector[0, c] = 1.0", "onehot[0, c] = 1.0") in texts
    assert ("rng.manual_seed(seed)", "gen.manual_seed(seed)") in texts
    # given lines are never shown as shared
    assert not any("lrpmodel.forward((X, L, H))" in left.text for left, _ in pair.shared)
    for left, right in pair.shared:
        assert left.cell.startswith("cell ") and left.number >= 1 and right.number >= 1


def test_untouched_notebooks_share_nothing_of_their_own(handed_in, template, ranked):
    """The template's lines alone never make two submissions similar: without the
    template the two untouched notebooks are identical (score 1), with it they have no
    fingerprint at all."""
    untouched = handed_in["untouched1"]
    assert similarity.document(untouched, template).prints == {}
    both = {"u1": untouched, "u2": untouched}
    assert similarity.compare(both, template, low=0.0) == []
    assert similarity.compare(both, frozenset(), low=0.0)[0].score == 1.0
    assert not [p for p in ranked if {p.a, p.b} & {"untouched1", "untouched2"}]


def test_what_everyone_writes_is_ignored(handed_in, template):
    """A block every student has (here: the solution notebook's Exercise 5 as an extra
    cell) is too common to count: no pair shares more fingerprints with it than without it
    (and its fingerprints leave each student's set), none reaches the report. Without the
    filter it would pair up all the independent solutions."""
    solution = nbformat.read(str(SOLUTIONS / "ex5_faithfulness.ipynb"), as_version=4)
    block = next(c.source for c in solution.cells if "def perturbation_curve" in c.source)
    alone = {s: handed_in[s] for s in INDEPENDENT}
    everyone = {s: [*cells, block] for s, cells in alone.items()}
    before = {(p.a, p.b): p for p in similarity.compare(alone, template, low=0.0)}
    after = similarity.compare(everyone, template, low=0.0)
    assert all(p.count <= before[p.a, p.b].count for p in after)
    assert max(p.score for p in after) < similarity.REPORT
    unfiltered = similarity.compare(everyone, template, low=0.0, common=1.0)
    assert len(unfiltered) == len(INDEPENDENT) * (len(INDEPENDENT) - 1) // 2
    assert min(p.score for p in unfiltered) > similarity.REPORT


def test_the_benchmark_disguises_are_found(handed_in, template):
    """Every fixture beside a copy with all of the benchmark's disguises applied at once
    (renamed, dead code, new comments, ast.unparse, reordered): the 20 copies are the top
    20 pairs, and the only ones in the report."""
    rng = random.Random(0)
    given = set(handed_in["untouched1"])
    found = {}
    for name in INDEPENDENT:
        found[name] = handed_in[name]
        found["copy_" + name] = [
            s if s in given else bench.disguise(s, rng, chance=1.0) for s in handed_in[name]
        ]
    assert found["copy_s01"] != found["s01"]
    flagged = similarity.flagged(similarity.compare(found, template))
    assert sorted((p.a, p.b) for p in flagged) == sorted(("copy_" + s, s) for s in INDEPENDENT)


def test_code_that_does_not_tokenize_is_read_line_by_line(handed_in, template):
    broken = [
        "def f(:\n    x = 'unterminated\n",
        "if True:\n  a = 1\n    b = 2\n",  # inconsistent indentation
        "x = (1,\n",  # an unclosed bracket
        "%timeit f()\n!pip install torch\nprint(f'{x!r:>3}')\n",
        "model?\n",
    ]
    for source in broken:
        assert isinstance(fingerprints.lex(source), list)
    assert [t.norm for t in fingerprints.lex(broken[0])[:5]] == ["def", "N", "(", ":", "N"]
    # A copy with a syntax error added is still a copy.
    original = handed_in["s10"]
    copy = [source.replace("return vjp * X", "return vjp * X)") for source in original]
    assert copy != original
    pairs = similarity.compare({"s10": original, "copy": copy}, template)
    assert pairs and pairs[0].score > 0.9


def test_normalisation_names_literals_comments_and_methods():
    def norms(source):
        return [t.norm for t in fingerprints.lex(source) if t.norm]

    a = 'def f(model, X, c):\n    """Doc."""\n    x = X.detach()  # leaf\n    return x * 2.0\n'
    b = "def g(net, inp, k):\n    y = inp.detach()\n\n    return y * 3\n"
    assert norms(a) == norms(b)
    assert "detach" in norms(a) and "N" in norms(a) and "1" in norms(a)
    assert norms("x.backward()") != norms("x.detach()")  # the method called counts
    assert norms("f(a, b,)") == norms("f(a, b)")  # trailing commas and ; are layout
    assert norms("a = 1; b = 2") == norms("a = 1\nb = 2")
    assert norms("s = f'{x} and {y!r}'") == norms("s = 'text'")


def test_template_lines_ignore_whitespace_and_comments():
    given = fingerprints.template(["X = X.detach().requires_grad_(True)  # a fresh leaf\n"])
    mine = "X  =  X.detach().requires_grad_( True )\nreturn X * X.grad  # mine\n"
    own = fingerprints.own_tokens(mine, given)
    assert {t.line for t in own} == {2} and own[0].text == "return"


def literal_winnow(hashes, w):
    """Winnowing as the paper defines it: every window of w positions (or the whole
    sequence where it is shorter) keeps its rightmost minimal position."""
    n = len(hashes)
    windows = [range(s, s + w) for s in range(n - w + 1)] or ([range(n)] if n else [])
    kept = set()
    for window in windows:
        smallest = min(hashes[i] for i in window)
        kept.add(max(i for i in window if hashes[i] == smallest))
    return sorted(kept)


def test_winnowing_against_the_literal_definition_and_its_guarantee():
    rng = random.Random(0)
    for _ in range(200):
        hashes = [rng.randrange(8) for _ in range(rng.randrange(0, 30))]
        for w in (1, 3, 4):
            assert fingerprints.winnow(hashes, w) == literal_winnow(hashes, w)
    k, w = fingerprints.K, fingerprints.W
    words = ["a", "b", "c", "d", "e", "f"]
    for _ in range(200):
        shared = [rng.choice(words) for _ in range(k + w - 1)]
        one = [rng.choice(words) for _ in range(rng.randrange(20))] + shared
        two = shared + [rng.choice(words) for _ in range(rng.randrange(20))]
        prints = [
            {f.hash for f in fingerprints.fingerprints(fingerprints.lex(" ".join(tokens)))}
            for tokens in (one, two)
        ]
        assert prints[0] & prints[1], (one, two)


def test_student_code_from_notebook_files(tmp_path, notebooks, template):
    """Submissions read as grading reads them: folders of notebooks, check cells dropped,
    lines labelled with the notebook and code cell."""
    for name in ("s04", "c01_s03_renamed", "s03"):
        code = bench.sections((bench.FIXTURES / f"{name}.py").read_text())
        (tmp_path / name).mkdir()
        for file, nb in bench.filled_notebooks(code, notebooks).items():
            nbformat.write(nb, str(tmp_path / name / file))
    found = similarity.student_code(discover(tmp_path))
    assert sorted(found) == ["c01_s03_renamed", "s03", "s04"]
    assert not any("checks.check_" in cell.source for cell in found["s03"])
    pairs = similarity.flagged(similarity.compare(found, template))
    assert [(p.a, p.b) for p in pairs] == [("c01_s03_renamed", "s03")]
    cells = {left.cell for left, _ in pairs[0].shared}
    assert "ex3_gradient_x_input.ipynb code cell 5" in cells


def test_similarity_csv_is_safe_in_a_spreadsheet(tmp_path):
    pairs = [
        similarity.Pair("=HYPERLINK(1)", "bob", 0.9, 0.8, 9, 10, 11),
        similarity.Pair("+ann", "-carl", 0.25, 0.1, 3, 12, 20),
    ]
    path = tmp_path / "similarity.csv"
    similarity.write_similarity_csv(path, pairs)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert tuple(rows[0]) == similarity.CSV_COLUMNS
    assert rows[0]["student_a"] == "'=HYPERLINK(1)" and rows[0]["score"] == "0.900"
    assert (rows[1]["student_a"], rows[1]["student_b"]) == ("'+ann", "'-carl")
    assert rows[1]["shared"] == "3" and rows[1]["size_b"] == "20"


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag


def test_pairs_html_escapes_what_students_wrote():
    line = similarity.Line("<b>cell</b>", 3, "x = '<script>alert(1)</script>' & y")
    pair = similarity.Pair("<img src=x>", "bob", 0.91, 0.8, 9, 10, 11, ((line, line),))
    fragment = similarity.pairs_html([pair])
    assert "<script>" not in fragment and "<img" not in fragment and "<b>" not in fragment
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment and "&amp; y" in fragment
    assert "&lt;img src=x&gt; and bob: score 91%" in fragment
    tags = Tags()
    tags.feed(fragment)
    assert tags.open == [] and tags.tags.count("tr") == 1 + 1  # header row, one shared line
    assert "No pair" in similarity.pairs_html([])


def test_the_benchmark_runs_on_a_few_submissions(tmp_path):
    """The benchmark's synthetic submissions, written as notebooks, and its similarity run
    (what it times): every submission read, similarity.csv and the fragment written."""
    made = bench.synthetic(8, seed=1)
    assert len(made) == 8 and all(len(nbs) == 3 for nbs in made.values())
    bench.write(made, tmp_path / "submissions")
    figures = bench.similarity_run(tmp_path / "submissions", tmp_path)
    rows = list(csv.DictReader((tmp_path / "similarity.csv").open(encoding="utf-8")))
    assert figures["pairs"] == len(rows) and figures["flagged"] <= len(rows)
    assert all(float(row["score"]) >= similarity.LISTED for row in rows)
    assert (tmp_path / "similar.html").read_text().startswith('<section class="similarity">')
