"""Benchmark of the checks (instructors): what a student waits for and how much memory it takes.

``python -m lrpkit.bench.checks`` runs each solution notebook top to bottom in a fresh
kernel on the stand-in, as a student does, each in a process of its own, and prints the
seconds of every check cell (the first one that runs a model, and the later ones), the ex5
comparison cell and the kernel's peak resident memory, beside the figures of the kit before
the checks were made light (242ab86, recorded in BEFORE; ``--before DIR`` measures such a
checkout in the same run instead, e.g. ``git worktree add /tmp/base242 242ab86``). Then, in
this process: each self-check warm (median), each observation on the largest drawn crop
(48 x 48) and ``lrpkit.reference.references.expected`` -- what the grader computes per submission.
Figures are medians and the peak memory is Linux's ru_maxrss of the kernel (decimal GB);
see lrpkit.bench.tools for the table and the targets.
"""

import argparse
import ast
import contextlib
import copy
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import torch

import utils
from lrpkit import sheet
from lrpkit.authoring import solutions
from lrpkit.bench import tools as benchtools
from lrpkit.reference import references
from lrpkit.selfcheck import checks, config
from lrpkit.selfcheck.config import MAX_CROP, MIN_CROP, Config

#: seconds: a check in a fresh kernel, the first to run a model and the later ones; a warm
#: self-check; an observation on a 48 x 48 crop; expected() of one configuration; Exercise
#: 5's comparison cell (five perturbation curves at 224 x 224)
FIRST_CHECK, LATER_CHECK, SELF_CHECK, OBSERVATION, EXPECTED, COMPARISON = 1, 0.5, 1, 3, 5, 30
#: GB: the peak resident memory of the kernel that runs a whole solution notebook
PEAK = {"ex3_gradient_x_input.ipynb": 1.5, "ex4_lrp.ipynb": 2.0}
#: the same measurements of the kit at 242ab86, before the checks were made light:
#: `python -m lrpkit.bench.checks --notebooks --before /tmp/base242` on this kit's 2-core
#: machine (AMD EPYC, torch 2.14.1+cu130, load average ~2: other jobs running), with
#: /tmp/base242 a `git worktree add --detach /tmp/base242 242ab86`; the same run measured
#: this kit at 0.30 / 0.57 / 0.51 s for the first checks and 1.46 / 1.88 / 2.14 GB
BEFORE = {
    "ex3_gradient_x_input.ipynb": {
        "checks": {"check_input": 0.01, "check_gradient_x_input": 2.34},
        "peak_gb": 2.84,
    },
    "ex4_lrp.ipynb": {
        "checks": {"check_conv": 2.49, "check_lrpmodel": 0.07, "check_relevance": 0.28},
        "peak_gb": 3.81,
    },
    "ex5_faithfulness.ipynb": {
        "checks": {"check_perturbation_curve": 2.62},
        "peak_gb": 3.21,
        "comparison_s": 16.81,  # 5 curves of 17 images then, of 13 now (one quarter of the image)
    },
}
#: a line of the ex5 comparison cell, to find it
COMPARISON_LINE = "SIZE, STEPS ="

#: runs in a process of its own: executes a notebook (argv 1) in a fresh kernel whose working
#: folder is argv 2, then prints the cells' seconds and the kernel's peak memory as JSON
RUN = """\
import json, resource, sys
from datetime import datetime
import nbclient, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                                 resources={"metadata": {"path": sys.argv[2]}})
client.execute()
def seconds(cell):
    e = cell.metadata.get("execution", {})
    t = [datetime.fromisoformat(e[k].replace("Z", "+00:00"))
         for k in ("iopub.execute_input", "shell.execute_reply") if k in e]
    return (t[1] - t[0]).total_seconds() if len(t) == 2 else None
cells = [{"source": c.source, "tags": c.metadata.get("tags", []), "seconds": seconds(c)}
         for c in nb.cells if c.cell_type == "code"]
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux
print(json.dumps({"cells": cells, "peak_gb": peak / 1e6}))
"""


def run_notebook(path, kit):
    """{"checks": {check: seconds}, "peak_gb": ..., "comparison_s": ...} of a solution
    notebook executed top to bottom in a fresh kernel with the kit at ``kit`` (its utils and
    lrpkit first on the kernel's path) and the stand-in."""
    kit = Path(kit).resolve()
    castle = kit / "data" / "castle.jpg"
    if not castle.is_file():  # a fresh checkout: the same castle.jpg (it is sha256-checked)
        castle.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(utils.castle_path(), castle)
    env = dict(os.environ, VGG16_WEIGHTS="standin", PYTHONPATH=str(kit))
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(path), str(kit)],
        env=env,
        cwd=kit,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{path.name} did not run:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    figures = {"checks": {}, "peak_gb": result["peak_gb"]}
    for cell in result["cells"]:
        if "check" in cell["tags"]:
            call = ast.parse(cell["source"]).body[0].value
            figures["checks"][call.func.attr] = cell["seconds"]
        elif COMPARISON_LINE in cell["source"]:
            figures["comparison_s"] = cell["seconds"]
    return figures


def notebook_table(now, before, label):
    """The notebooks' figures beside those before, and the targets they are held to."""
    lines = [f"{'fresh kernel, whole solution notebook':<52}{'now':>10}{label:>24}"]
    targets = []
    for name, figures in now.items():
        old = before.get(name, {})
        model_checks = [c for c in figures["checks"] if c != "check_input"]
        for check, seconds in figures["checks"].items():
            first = model_checks[:1] == [check]
            was = old.get("checks", {}).get(check)
            note = " (first)" if first else ""
            lines.append(f"{name[:3]} {check + note:<48}{seconds:>9.2f}s{_old(was, 's'):>24}")
            if check != "check_input":
                limit = FIRST_CHECK if first else LATER_CHECK
                targets.append(benchtools.Target(f"{name[:3]} {check}", seconds, "<=", limit, "s"))
        if "comparison_s" in figures:
            seconds, was = figures["comparison_s"], old.get("comparison_s")
            lines.append(f"{name[:3]} {'comparison cell (5 curves)':<48}{seconds:>9.2f}s"
                         f"{_old(was, 's'):>24}")  # fmt: skip
            targets.append(benchtools.Target("ex5 comparison cell", seconds, "<=", COMPARISON, "s"))
        peak, was = figures["peak_gb"], old.get("peak_gb")
        lines.append(f"{name[:3]} {'peak resident memory of the kernel':<48}{peak:>8.2f}GB"
                     f"{_old(was, 'GB'):>24}")  # fmt: skip
        if name in PEAK:
            targets.append(
                benchtools.Target(f"{name[:3]} peak memory", peak, "<=", PEAK[name], "GB")
            )
    return "\n".join(lines), targets


def _old(value, unit):
    return "" if value is None else f"{value:.2f}{unit}"


def notebooks(kit=solutions.SOLUTIONS.parents[1]):
    """{notebook: figures} of every solution notebook of the kit at ``kit``."""
    folder = Path(kit) / "notebooks" / "solutions"
    return {path.name: run_notebook(path, kit) for path in sorted(folder.glob("*.ipynb"))}


def definitions():
    """The functions and classes the solution notebooks define."""
    namespace = {"torch": torch, "utils": utils}
    for path in sorted(solutions.SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                lines = [x for x in cell.source.splitlines() if not x.startswith("%")]
                tree = ast.parse("\n".join(lines))
                defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
                exec(compile(ast.Module(defs, type_ignores=[]), path.name, "exec"), namespace)
    return namespace


def in_process():
    """Warm self-checks, observations on 48 x 48 and expected() in this process: tables and
    targets."""
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
        "check_perturbation_curve": (code["perturbation_curve"],),
    }
    with contextlib.redirect_stdout(io.StringIO()):
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
    model64 = copy.deepcopy(config.float64_model())
    jobs = {
        f"expected(), {c.size} x {c.size} crop": (lambda c=c: references.expected(c, model64))
        for c in (small, large)
    }
    jobs["curve_expected(), first (mistakes: for a wrong curve)"] = lambda: (
        references.curve_expected(large, model64, mistakes=False)
    )
    expected = benchtools.timed(jobs, reps=3)
    tables = [
        benchtools.table(self_checks, "check_input", "self-check, warm (public configuration)"),
        benchtools.table(observations, "check_input", f"observe_* on a {MAX_CROP}x{MAX_CROP} crop"),
        benchtools.table(expected, next(iter(expected)), "expected results (grader, per student)"),
    ]
    targets = [
        benchtools.Target(f"self-check {n}, warm", t.median, "<=", SELF_CHECK, "s")
        for n, t in self_checks.items()
    ]
    targets += [
        benchtools.Target(f"observation {n}, 48x48", t.median, "<=", OBSERVATION, "s")
        for n, t in observations.items()
    ]
    targets += [benchtools.Target(n, t.median, "<=", EXPECTED, "s") for n, t in expected.items()]
    return tables, targets


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.bench.checks",
        description=__doc__.splitlines()[0],
        allow_abbrev=False,
    )
    parser.add_argument("--notebooks", action="store_true", help="only the notebooks' figures")
    parser.add_argument(
        "--before", type=Path, help="a checkout of the kit to measure beside this one (else BEFORE)"
    )
    args = parser.parse_args(argv)
    print(benchtools.header())
    now = notebooks()
    before = notebooks(args.before) if args.before else BEFORE
    label = f"before ({args.before.name})" if args.before else "before (242ab86)"
    text, targets = notebook_table(now, before, label)
    print(text)
    if not args.notebooks:
        tables, more = in_process()
        print("\n" + "\n".join(tables))
        targets += more
    return benchtools.report(targets)


if __name__ == "__main__":
    sys.exit(main())
