"""Solution notebooks, executed and saved clean (instructors): ``python -m
lrpkit.authoring.solutions``.

Runs each notebook of ``notebooks/solutions/`` top to bottom on a fresh kernel with the
stand-in VGG-16 (VGG16_WEIGHTS=standin) and saves it clean: check cells (tagged ``check``)
keep their output, the one verdict line that nbval and the grader compare with, and their
execution count (nbval compares only cells that have one, and refuses outputs without it);
every other output and execution count and any saved widget state are dropped, so no
stand-in heatmap or number is ever committed. Run it after editing a solution notebook (it
fails, and saves nothing, when a cell raises or a check does not pass). ``--check`` only
reports notebooks that are not clean.
"""

import argparse
import os
import sys
from pathlib import Path

import nbformat

from lrpkit.layout import CHECK_TAG, SOLUTIONS, tags


def clean(nb):
    """nb without outputs and execution counts (check cells keep theirs) and widget state."""
    nb = nbformat.from_dict(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if CHECK_TAG in tags(cell):
            for output in cell.outputs:
                output.get("metadata", {}).clear()
        else:
            cell.execution_count = None
            cell.outputs = []
    return nb


def problems(nb):
    """What keeps a solution notebook from being committed as it is (empty when clean)."""
    found = []
    if "widgets" in nb.metadata:
        found.append("saved widget state in the notebook's metadata")
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"cell {number}"
        if CHECK_TAG not in tags(cell):
            if cell.outputs or cell.execution_count is not None:
                found.append(f"{where}: outputs or an execution count in a non-check cell")
            continue
        if cell.execution_count is None:
            found.append(f"{where}: a check cell needs its execution count (nbval skips it)")
        texts = [o.get("text", "") for o in cell.outputs if o.output_type == "stream"]
        if len(cell.outputs) != 1 or len(texts) != 1 or cell.outputs[0].name != "stdout":
            found.append(f"{where}: a check cell must keep exactly one stdout output")
        elif not texts[0].startswith("PASS ") or texts[0].count("\n") != 1:
            found.append(f"{where}: a check cell's output must be one PASS line: {texts[0]!r}")
    return found


def execute(path, timeout=600):
    """The notebook at path, executed on a fresh kernel with the stand-in (nothing saved)."""
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    os.environ["VGG16_WEIGHTS"] = "standin"  # the kernel inherits it
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    client.execute()
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: all solutions")
    parser.add_argument("--check", action="store_true", help="only report unclean notebooks")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(SOLUTIONS.glob("*.ipynb"))
    status = 0
    for path in paths:
        if args.check:
            nb = nbformat.read(str(path), as_version=4)
            for problem in problems(nb):
                print(f"{path}: {problem}")
                status = 1
            continue
        nb = clean(execute(path))
        failed = problems(nb)
        if failed:
            print(f"{path}: not saved:\n  " + "\n  ".join(failed))
            status = 1
            continue
        nbformat.write(nb, str(path))
        print(f"{path}: executed, saved clean")
    return status


if __name__ == "__main__":
    sys.exit(main())
