"""A class of 45 submissions of the real course, graded in ONE sandboxed run (the acceptance).

- ``correct`` (the solution notebooks) and the typical mistakes (``MISTAKES``, one edit of the
  solution notebooks each, and ``channel-slip``), which tests/grading/test_grading_mistakes.py
  checks one by one;
- the 20 independently written solutions of tests/grading/similarity_fixtures/ (``s01``-
  ``s20``) and the 9 planted copies (``c01``-``c09``), handed in as the exercise notebooks
  with the tasks filled in (lrpkit.bench.similarity). The grader's checks are stricter than
  the fixtures' own tests (``SLIPS``): ``s14`` (and its copy ``c04``) fails for an X that
  already requires grad, ``s10`` computes its gamma factor in float32;
- ``raises`` (a cell of its own that fails in Exercise 3, and the ``gamma-negative`` mistake
  in Exercise 4), ``hog`` (correct, plus a cell that runs into the sandbox's memory limit) and
  ``empty`` (two empty notebooks: invalid).

Most of them run in a few seconds: the given display-only cells are skipped, the checks
run on small crops. conftest.py's session fixture ``class_run`` grades it once for every
test that needs it (the mistakes, the class report, the feedback pages, the browser).
"""

import shutil

import nbformat
from curve_cases import CURVE_MUTANTS

from lrpkit.bench import similarity as bench
from lrpkit.layout import SOLUTIONS

SECRET = b"the course secret of the mistake tests"
EX3, EX4, EX5 = "ex3_gradient_x_input.ipynb", "ex4_lrp.ipynb", "ex5_faithfulness.ipynb"
GXI = "def gradient_x_input(model, X, c):"
CONV = "class Conv(torch.nn.Module):"
#: student -> (notebook, a line of the cell to edit, old text, new text, exercise broken,
#: words the feedback must contain)
MISTAKES = {
    "stored-gxi": (
        EX3, GXI, "return X * X.grad", "return torch.from_numpy(checks.stored()['gxi'])",
        "ex3", "the self-check's stored reference",
    ),
    "callers-x": (
        EX3, GXI, "X = X.detach().requires_grad_(True)", "X.requires_grad_(True)",
        "ex3", "requires_grad",
    ),
    "global-class": (EX3, GXI, "[0, c]", "[0, c1]", "ex3", "class"),
    "gradient-only": (EX3, GXI, "return X * X.grad", "return X.grad", "ex3", "gradient alone"),
    "channels-summed": (
        EX3, GXI, "return X * X.grad", "return (X * X.grad).sum(1, keepdim=True)", "ex3",
        "do not sum over the colour channels",
    ),
    "float32": (
        EX3, GXI, "X = X.detach().requires_grad_(True)",
        "X = X.detach().float().requires_grad_(True)", "ex3", "(model, X, c)",
    ),
    "gamma-negative": (
        EX4, CONV, "p + gamma * p.clamp(min=0)", "p + gamma * p", "ex4", "negative weights",
    ),
    "not-detached": (
        EX4, CONV, "return zp * (z / zp).detach()", "return zp * (z / zp)", "ex4", "detach",
    ),
    "reversed-gammas": (
        EX4, "lrpmodel = utils.load_vgg16()", "10 ** (-0.0))", "10 ** (-2.0))", "ex4",
        "behaves like LRP-gamma with gamma 0.01",
    ),
    "no-bounds": (
        EX4, "def lrp_relevance(", "return X * X.grad + L * L.grad + H * H.grad",
        "return X * X.grad", "ex4", "L * L.grad",
    ),
    "kit-relevance": (
        EX4, "def lrp_relevance(", "return X * X.grad + L * L.grad + H * H.grad",
        "return checks.observe.relevance(lrpmodel, X, c)", "ex4", "kit's own selfcheck/observe.py",
    ),
}  # fmt: skip
FIXTURES = sorted(bench.FIXTURES.glob("[sc][0-9][0-9]*.py"))
INDEPENDENT = sorted(p.stem for p in FIXTURES if p.stem.startswith("s"))
#: the planted copies and their originals; c09 has Exercises 3 and 4 of s12 word for word
#: (and Exercise 5 of s16, which is not handed in here)
PLANTED = {
    ("c09_s12_s16_partial", "s12"),
    ("c01_s03_renamed", "s03"),
    ("c02_s07_reordered", "s07"),
    ("c03_s11_comments", "s11"),
    ("c04_s14_deadcode", "s14"),
    ("c05_s18_reformatted", "s18"),
    ("c06_s05_everything", "s05"),
    ("c07_s09_renamed", "s09"),
    ("c08_s09_dead_reformatted", "s09"),
    ("c07_s09_renamed", "c08_s09_dead_reformatted"),
}
#: independent solutions the grader finds a slip in: (the check that fails, words of its
#: diagnosis). s14: X.clone() of an X that requires grad is no leaf, its .grad stays None;
#: s10: gamma * (w > 0) is float32, off by more than the checks' 1e-6 for some gammas
SLIPS = {
    "s14": ("ex3.check_gradient_x_input", "for an X that requires grad raised TypeError"),
    "s10": ("ex4.check_conv", "Conv's gradient differs from LRP-gamma's"),
}
#: a cell of its own that fails, after correct code: its first lines are quoted in feedback
RAISES = "# try another class\nR_other = gradient_x_input(model, X, 5000)\nprint(R_other.sum())"
#: a cell that asks for more memory than the sandbox allows (8 GiB > 4 GiB)
HOG = "# keep every heatmap in memory\ncache = bytearray(8 * 2**30)"


def edited(name, marker, old, new):
    """A solution notebook's text with one edit in the code cell holding ``marker``."""
    nb = nbformat.read(SOLUTIONS / name, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1 and old in cells[0].source, (name, marker, old)
    cells[0].source = cells[0].source.replace(old, new)
    return nbformat.writes(nb)


def with_cell(name, source):
    """A solution notebook's text with one more code cell at its end."""
    nb = nbformat.read(SOLUTIONS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nbformat.writes(nb)


def fixture_code(path):
    """{task: code} of a similarity fixture, its own imports (``F``, ``copy``) put before
    the first task of each notebook, as a student adds them."""
    text = path.read_text(encoding="utf-8")
    code = bench.sections(text)
    header = text.split(bench.MARKER, 1)[0].splitlines()
    imports = [line for line in header if line.startswith(("import ", "from "))]
    for first in ("gradient_x_input", "Conv"):  # Exercise 3's, Exercise 4's
        code[first] = "\n".join(imports) + "\n\n\n" + code[first]
    return code


def submit(folder, student, ex3=None, ex4=None):
    """A submission folder of the two notebooks (the solutions where not given)."""
    (folder / student).mkdir(parents=True)
    for name, text in ((EX3, ex3), (EX4, ex4)):
        text = (SOLUTIONS / name).read_text(encoding="utf-8") if text is None else text
        (folder / student / name).write_text(text, encoding="utf-8")


def write_class(folder):
    """Write the class's 45 submissions into ``folder``; returns their ids."""
    submit(folder, "correct")
    for student, (name, marker, old, new, *_) in MISTAKES.items():
        submit(folder, student, **{name[:3]: edited(name, marker, old, new)})
    submit(folder, "channel-slip", ex3=edited(EX3, "import cv2", "bgr[..., ::-1]", "bgr[..., :-1]"))
    notebooks = bench.exercise_notebooks()
    for path in FIXTURES:
        filled = bench.filled_notebooks(fixture_code(path), notebooks)
        submit(folder, path.stem, nbformat.writes(filled[EX3]), nbformat.writes(filled[EX4]))
    negative = edited(EX4, *MISTAKES["gamma-negative"][1:4])
    submit(folder, "raises", ex3=with_cell(EX3, RAISES), ex4=negative)
    submit(folder, "hog", ex4=with_cell(EX4, HOG))
    submit(folder, "empty", ex3="", ex4="")
    return sorted(p.name for p in folder.iterdir())


def write_bonus(folder):
    """Submissions for a run with the bonus Exercise 5: ``all-three`` (the three solution
    notebooks), ``no-ex5`` (Exercises 3 and 4 only) and one per mutant of Exercise 5's
    solution (check_cases.CURVE_MUTANTS, spaces made dashes), which hands in Exercise 5's
    notebook only (its other exercises get no points). Returns their ids."""
    submit(folder, "all-three")
    shutil.copyfile(SOLUTIONS / EX5, folder / "all-three" / EX5)
    submit(folder, "no-ex5")
    for name, (old, new, _) in CURVE_MUTANTS.items():
        (folder / name.replace(" ", "-")).mkdir()
        text = edited(EX5, "def perturbation_curve(", old, new)
        (folder / name.replace(" ", "-") / EX5).write_text(text, encoding="utf-8")
    return sorted(p.name for p in folder.iterdir())
