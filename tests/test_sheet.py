"""What the sheet fixes (lrpkit/sheet.py: the class, the gamma per block) is the same wherever
else it is spelled out: the stored references, the solution notebooks, the tests' twin. Each
failure names the file to edit or the command to run (docs/development.md, "Changing the
sheet for next year"); each of these checks is shown to fail on a sheet that differs."""

import json
import math
import re

import lrp_twins
import nbformat
import pytest

from lrpkit import sheet
from lrpkit.layout import REFERENCE, SOLUTIONS
from lrpkit.selfcheck.config import Config

EX4 = SOLUTIONS / "ex4_lrp.ipynb"
REGENERATE = "then run `make regenerate` (docs/development.md)"


def same(a, b):
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(a, b))


def reference_problems(c, gammas):
    """data/reference/meta.json against the sheet's class c and gammas."""
    meta = json.loads((REFERENCE / "meta.json").read_text(encoding="utf-8"))
    there = f"class {meta['class']}, gammas {meta['gammas']}"
    if (
        meta["class"] != c
        or not same(meta["gammas"], gammas)
        or meta["config"] != json.loads(Config.public().to_json())
    ):
        return [
            f"data/reference/ was written for {there}; lrpkit/sheet.py says class {c}, "
            f"gammas {list(gammas)}: run `make regenerate` (or `make references`)"
        ]
    return []


def lrpmodel_cell(nb):
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "ConvPx(features[" in c.source]
    return cell


class _Model:
    """What the ex4 cell is run on: it records the layers the cell puts into features."""

    def __init__(self):
        self._modules = {"features": [None] * (sheet.POOLS[-1] + 1)}

    def eval(self):
        return self

    def requires_grad_(self, flag):
        return self


class _Utils:
    @staticmethod
    def load_vgg16():
        return _Model()


def ex4_layers(nb):
    """{features index: ("ConvPx",) or ("Conv", gamma)}: what the ex4 cell that builds lrpmodel
    puts where (the cell run with Conv, ConvPx and utils.load_vgg16 that only record)."""
    scope = {
        "utils": _Utils,
        "Conv": lambda conv, gamma: ("Conv", gamma),
        "ConvPx": lambda conv: ("ConvPx",),
    }
    exec(compile(lrpmodel_cell(nb).source, str(EX4), "exec"), scope)  # the kit's own notebook
    features = scope["lrpmodel"]._modules["features"]
    return {i: layer for i, layer in enumerate(features) if layer is not None}


def ex4_problems(nb, gammas):
    """The ex4 solution's LRP model against the sheet's gammas (and first layer)."""
    layers = ex4_layers(nb)
    want = {i: ("Conv", g) for i, g in sheet.layer_gammas(gammas).items()}
    want[sheet.FIRST] = ("ConvPx",)
    wrong = [
        f"features[{i}]: {layers.get(i)} instead of {w}"
        for i, w in sorted(want.items())
        if layers.get(i, ("",))[0] != w[0] or not same(layers[i][1:], w[1:])
    ]
    wrong += [f"features[{i}]: {layers[i]}, not a convolution" for i in set(layers) - set(want)]
    if wrong:
        return [
            f"{EX4.relative_to(SOLUTIONS.parents[1])}, the cell that builds lrpmodel, does not "
            f"use lrpkit/sheet.py's GAMMAS {list(gammas)}: {'; '.join(wrong)}. Edit the cell, "
            + REGENERATE
        ]
    return []


CLASS_IN_CODE = re.compile(r"^c1 = (\d+)\s*$", re.M)
CLASS_IN_TEXT = re.compile(r"\bclass (\d+)\b")


def class_problems(c):
    """Each solution notebook's c1 and the class its text names, against the sheet's class."""
    found = []
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        code = [
            int(n)
            for cell in nb.cells
            if cell.cell_type == "code"
            for n in CLASS_IN_CODE.findall(cell.source)
        ]
        text = [
            int(n)
            for cell in nb.cells
            if cell.cell_type == "markdown"
            for n in CLASS_IN_TEXT.findall(cell.source)
        ]
        name = path.relative_to(SOLUTIONS.parents[1])
        if code != [c]:
            found.append(f"{name}: `c1 = ...` says {code}, lrpkit/sheet.py's CLASS is {c}")
        if any(n != c for n in text):
            found.append(f"{name}: its text names class {text}, lrpkit/sheet.py's CLASS is {c}")
    return [f"{p}. Edit the notebook, {REGENERATE}" for p in found]


def twin_problems(gammas):
    if not same(lrp_twins.SHEET_GAMMAS, gammas):
        return [
            f"tests/lrp_twins.py: SHEET_GAMMAS {list(lrp_twins.SHEET_GAMMAS)} (the independent "
            f"twin's own copy) differs from lrpkit/sheet.py's GAMMAS {list(gammas)}: edit it"
        ]
    return []


def test_the_kit_agrees_with_its_sheet():
    problems = [
        *reference_problems(sheet.CLASS, sheet.GAMMAS),
        *ex4_problems(nbformat.read(str(EX4), as_version=4), sheet.GAMMAS),
        *class_problems(sheet.CLASS),
        *twin_problems(sheet.GAMMAS),
    ]
    assert not problems, "\n".join(problems)


def test_the_ex4_cell_is_read_as_it_runs():
    layers = ex4_layers(nbformat.read(str(EX4), as_version=4))
    assert layers[0] == ("ConvPx",) and len(layers) == 13
    assert layers[28] == ("Conv", pytest.approx(0.01)) and layers[2] == ("Conv", 1.0)


NEXT_YEAR = (0.5, *sheet.GAMMAS[1:])  # another gamma in block 1


def test_another_gamma_schedule_names_every_file_to_change():
    problems = [
        *reference_problems(sheet.CLASS, NEXT_YEAR),
        *ex4_problems(nbformat.read(str(EX4), as_version=4), NEXT_YEAR),
        *twin_problems(NEXT_YEAR),
    ]
    assert len(problems) == 3, problems
    assert problems[0].startswith("data/reference/ was written for class 483")
    assert "make regenerate" in problems[0]
    assert problems[1].startswith("notebooks/solutions/ex4_lrp.ipynb, the cell that builds")
    assert "features[2]: ('Conv', 1.0) instead of ('Conv', 0.5)" in problems[1]
    assert "features[5]" not in problems[1]
    assert problems[2].startswith("tests/lrp_twins.py: SHEET_GAMMAS")


def test_the_ex4_cell_with_a_changed_gamma_is_named():
    nb = nbformat.read(str(EX4), as_version=4)
    cell = lrpmodel_cell(nb)
    cell.source = cell.source.replace("10 ** (-1.5)", "10 ** (-1.25)")
    assert cell.source != lrpmodel_cell(nbformat.read(str(EX4), as_version=4)).source
    (problem,) = ex4_problems(nb, sheet.GAMMAS)
    assert "features[17]: ('Conv', 0.0562" in problem and "features[21]" in problem


def test_another_class_names_every_file_to_change():
    problems = [*reference_problems(340, sheet.GAMMAS), *class_problems(340)]
    assert "lrpkit/sheet.py says class 340" in problems[0]
    named = {p.split(":")[0] for p in problems[1:]}
    assert named == {
        "notebooks/solutions/ex3_gradient_x_input.ipynb",
        "notebooks/solutions/ex4_lrp.ipynb",
        "notebooks/solutions/ex5_faithfulness.ipynb",
    }, problems
    assert any("its text names class [483]" in p for p in problems)
