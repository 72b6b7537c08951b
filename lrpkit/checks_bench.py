"""Benchmark of the checks (instructors): seconds per self-check, per observation, per expected().

``python -m lrpkit.checks_bench`` times, with the solution notebooks' code, each self-check
(observe on the public configuration and judge against the stored references), each
observation on the largest drawn crop (48 x 48), and ``lrpkit.references.expected`` -- what
the grader computes per submission -- on drawn configurations of each crop size extreme,
and prints them beside their targets (medians; see lrpkit.benchtools).
"""

import argparse
import ast
import contextlib
import copy
import dataclasses
import io
import sys

import nbformat
import torch

import utils
from lrpkit import benchtools, checks, references, sheet, solutions
from lrpkit.config import MAX_CROP, MIN_CROP, Config

#: seconds: a self-check, an observation on a 48 x 48 crop, expected() of one configuration
SELF_CHECK, OBSERVATION, EXPECTED = 2.5, 3.0, 5.0


def definitions():
    """The functions and classes the solution notebooks define."""
    namespace = {"torch": torch, "utils": utils}
    for name in ("ex3_gradient_x_input.ipynb", "ex4_lrp.ipynb"):
        nb = nbformat.read(solutions.SOLUTIONS / name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                lines = [x for x in cell.source.splitlines() if not x.startswith("%")]
                tree = ast.parse("\n".join(lines))
                defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
                exec(compile(ast.Module(defs, type_ignores=[]), name, "exec"), namespace)
    return namespace


def main(argv=None):
    argparse.ArgumentParser(
        prog="python -m lrpkit.checks_bench",
        description=__doc__.splitlines()[0],
        allow_abbrev=False,
    ).parse_args(argv)
    print(benchtools.header())
    code = definitions()
    Conv, ConvPx = code["Conv"], code["ConvPx"]
    lrpmodel = benchtools.load_model()
    lrpmodel.features[0] = ConvPx(lrpmodel.features[0])
    for i, gamma in sheet.layer_gammas().items():
        lrpmodel.features[i] = Conv(lrpmodel.features[i], gamma)
    args = {
        "check_input": (checks.castle_input(),),
        "check_gradient_x_input": (code["gradient_x_input"],),
        "check_conv": (Conv, ConvPx),
        "check_lrpmodel": (lrpmodel,),
        "check_relevance": (code["lrp_relevance"], ConvPx),
    }
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        self_checks = benchtools.timed(
            {name: (lambda n=name: getattr(checks, n)(*args[n])) for name in args}, reps=3
        )
    draws = [Config.draw(b"bench", f"student {k}") for k in range(2)]
    large = dataclasses.replace(draws[0], size=MAX_CROP, top=0, left=0)
    small = dataclasses.replace(draws[1], size=MIN_CROP, top=100, left=100)
    observations = benchtools.timed(
        {name: (lambda n=name: checks.CHECKS[n][0](*args[n], config=large)) for name in args},
        reps=3,
    )
    model64 = copy.deepcopy(checks._model()[0])
    expected = benchtools.timed(
        {
            f"expected(), {c.size} x {c.size} crop": (lambda c=c: references.expected(c, model64))
            for c in (small, large)
        },
        reps=3,
    )
    print(benchtools.table(self_checks, "check_input", "self-check (public configuration)"))
    print(
        benchtools.table(observations, "check_input", f"observe_* on a {MAX_CROP}x{MAX_CROP} crop")
    )
    first = next(iter(expected))
    print(benchtools.table(expected, first, "references.expected (grader, per submission)"))
    targets = [
        benchtools.Target(f"self-check {n}", t.median, "<=", SELF_CHECK, "s")
        for n, t in self_checks.items()
    ]
    targets += [
        benchtools.Target(f"observation {n}, 48x48", t.median, "<=", OBSERVATION, "s")
        for n, t in observations.items()
    ]
    targets += [benchtools.Target(n, t.median, "<=", EXPECTED, "s") for n, t in expected.items()]
    return benchtools.report(targets)


if __name__ == "__main__":
    sys.exit(main())
