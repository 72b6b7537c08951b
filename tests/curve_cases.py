"""Exercise 5's cases for the checks and the grading tests: the solution's perturbation_curve
and mutants of it, each one typical mistake."""

import nbformat
import torch
from check_cases import definitions

import utils
from lrpkit.authoring import solutions

EX5 = definitions("ex5_faithfulness.ipynb")
perturbation_curve = EX5["perturbation_curve"]
#: the solution's first line, where mutants put code before it
FIRST_LINE = "    height, width = X.shape[-2:]\n"
#: mutant -> (old, new) text of the solution's perturbation_curve, and the words its FAIL
#: line must contain (the grading tests make the same edits in the notebook)
CURVE_MUTANTS = {
    "size ignored": (FIRST_LINE, "    size = 8\n" + FIRST_LINE, "ignores its size argument"),
    "class hard-coded": ("model(batch)[:, c]", "model(batch)[:, 483]", "ignores its class"),
    "stored curve": (
        FIRST_LINE,
        "    import numpy\n\n"
        "    stored = numpy.load(utils.DATA / 'reference' / 'perturbation.npz')\n"
        "    return torch.from_numpy(stored['curve'])\n" + FIRST_LINE,
        "stored curve",
    ),
    "least relevant first": ("descending=True", "descending=False", "least relevant regions go"),
    "not accumulated": (
        "        rows = slice(",
        "        x = X.detach().clone()\n        rows = slice(",
        "do not accumulate",
    ),
    "unseeded noise": ("generator=torch.Generator().manual_seed(seed), ", "", "not seeded"),
}


def curve_mutant(name):
    """The solution's perturbation_curve with the edit of CURVE_MUTANTS[name]."""
    old, new, _ = CURVE_MUTANTS[name]
    nb = nbformat.read(solutions.SOLUTIONS / "ex5_faithfulness.ipynb", as_version=4)
    (source,) = [c.source for c in nb.cells if "def perturbation_curve(" in c.source]
    assert source.count(old) == 1, name
    namespace = {"torch": torch, "utils": utils}
    exec(compile(source.replace(old, new), name, "exec"), namespace)
    return namespace["perturbation_curve"]
