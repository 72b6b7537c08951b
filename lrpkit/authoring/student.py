"""Student versions of the solution notebooks, and the student bundle (instructors).

``python -m lrpkit.authoring.student exercises`` writes notebooks/exercises/ from
notebooks/solutions/;
``python -m lrpkit.authoring.student check`` exits 1 when they drift apart;
``python -m lrpkit.authoring.student bundle --out DIR`` builds what students receive.

In a solution notebook every region between ``# BEGIN SOLUTION: <stub text>`` and
``# END SOLUTION`` becomes ``raise NotImplementedError("<stub text>")`` at the BEGIN line's
indentation; cells tagged ``solution`` are dropped; outputs are cleared. Everything else --
the sheet's task text, the given code (ConvPx, the model surgery, the bounds L and H) and the
self-check cells -- stays as it is, so the solutions are the single source.
"""

import argparse
import ast
import copy
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat

from lrpkit.authoring import course_url
from lrpkit.layout import (
    BEGIN,
    END,
    EXERCISES,
    ROOT,
    SOLUTION_TAG,
    SOLUTIONS,
    STUDENT_DIRS,
    STUDENT_FILES,
    TEMPLATES,
    tags,
)

LINE_LENGTH = 100  # ruff's line-length in pyproject.toml
NOTEBOOK_ROLES = {
    "ex3": "Exercise 3 (25 P): implement Gradient x Input",
    "ex4": "Exercise 4 (25 P): implement the LRP-gamma convolution `Conv`",
    "ex5": "Exercise 5 (bonus, 25 P on top): is the explanation faithful? region perturbation",
}
MARK = ".lrpkit-bundle"  # marks a folder the bundle command may empty and rebuild


class MarkerError(ValueError):
    """A solution notebook's BEGIN/END SOLUTION markers are unbalanced or empty."""


def _regions(source, where="cell"):
    """Split source into ('given', lines) and ('solution', indent, stub, lines) parts."""
    parts, region = [], None
    for number, line in enumerate(source.splitlines(), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if region is not None:
                raise MarkerError(f"{where}, line {number}: BEGIN SOLUTION inside a region")
            stub = begin["stub"].strip()
            if not stub:
                raise MarkerError(f"{where}, line {number}: BEGIN SOLUTION needs a stub text")
            region = ("solution", begin["indent"], stub, [])
        elif end:
            if region is None:
                raise MarkerError(f"{where}, line {number}: END SOLUTION without BEGIN")
            parts.append(region)
            region = None
        elif region is not None:
            region[3].append(line)
        elif parts and parts[-1][0] == "given":
            parts[-1][1].append(line)
        else:
            parts.append(("given", [line]))
    if region is not None:
        raise MarkerError(f"{where}: BEGIN SOLUTION ({region[2]!r}) has no END SOLUTION")
    return parts


def stub_line(indent, stub):
    """The line a solution region becomes: raise NotImplementedError naming the exercise.

    Wrapped over several lines (the same message) when one line would exceed LINE_LENGTH,
    so the exercises pass the linter like the solutions.
    """
    literal = lambda text: json.dumps(text, ensure_ascii=False)
    line = f"{indent}raise NotImplementedError({literal(stub)})"
    if len(line) <= LINE_LENGTH:
        return line
    inner, width = indent + "    ", LINE_LENGTH - len(indent) - 6
    chunks, chunk = [], ""
    for word in re.split(r"(?<= )", stub):  # keep each space with the word before it
        if chunk and len(literal(chunk + word)) > width:
            chunks.append(chunk)
            chunk = ""
        chunk += word
    chunks.append(chunk)
    body = "\n".join(inner + literal(c) for c in chunks)
    return f"{indent}raise NotImplementedError(\n{body}\n{indent})"


def stub_source(source, solved=lambda index: False, where="cell", start=0):
    """Source with each solution region replaced by its stub line.

    ``solved(index)`` keeps region number ``start + k`` (counted through the notebook) as
    the solution, without its markers: used to check the exercises task by task.
    Returns (new source, number of regions).
    """
    lines, count = [], 0
    for part in _regions(source, where):
        if part[0] == "given":
            lines += part[1]
            continue
        _, indent, stub, body = part
        lines += body if solved(start + count) else [stub_line(indent, stub)]
        count += 1
    text = "\n".join(lines)
    return (text + "\n" if source.endswith("\n") else text), count


def exercise_notebook(nb, solved=()):
    """The student version of a solution notebook (a new notebook; nb is not changed).

    solved: numbers of solution regions (0-based, in notebook order) to keep solved.
    """
    nb = copy.deepcopy(nb)
    solved = set(solved)
    cells, count = [], 0
    for number, cell in enumerate(nb.cells):
        if SOLUTION_TAG in tags(cell):
            continue
        if cell.cell_type == "code":
            cell.source, n = stub_source(
                cell.source, solved.__contains__, f"code cell {number}", count
            )
            count += n
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        elif any(BEGIN.match(line) or END.match(line) for line in cell.source.splitlines()):
            raise MarkerError(f"cell {number}: solution markers outside a code cell")
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)  # saved widget state belongs to the solution's run
    return nb


def stubs(nb):
    """The stub texts of a solution notebook, in order."""
    found = []
    for number, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and SOLUTION_TAG not in tags(cell):
            found += [p[2] for p in _regions(cell.source, f"cell {number}") if p[0] == "solution"]
    return found


def solution_lines(*nbs):
    """Lines (stripped) that solution notebooks have only inside their solutions.

    Those are the lines inside solution regions and in cells tagged ``solution`` that do not
    also occur outside them in any of the notebooks (a line such as
    ``return zp * (z / zp).detach()`` is given in ConvPx, so it is no secret).
    """
    secret, given = set(), set()
    for number, cell in enumerate(cell for nb in nbs for cell in nb.cells):
        lines = cell.source.splitlines()
        if SOLUTION_TAG in tags(cell):
            secret.update(lines)
            continue
        if cell.cell_type != "code":
            given.update(lines)
            continue
        for part in _regions(cell.source, f"cell {number}"):
            if part[0] == "given":
                given.update(part[1])
            else:
                secret.update(part[3])
    clean = lambda lines: {line.strip() for line in lines} - {""}
    return clean(secret) - clean(given)


def render(nb):
    """A notebook as the text nbformat writes, so generated files compare byte for byte."""
    return nbformat.writes(nb) + "\n"


def read(path):
    return nbformat.read(str(path), as_version=4)


def expected_exercises(solutions=None):
    """{file name: text} of the student notebooks generated from the solution notebooks."""
    found = sorted(Path(solutions or SOLUTIONS).glob("*.ipynb"))
    return {path.name: render(exercise_notebook(read(path))) for path in found}


def write_exercises(solutions=None, exercises=None):
    """(Re)write the student notebooks; remove ones whose solution notebook is gone."""
    exercises = Path(exercises or EXERCISES)
    exercises.mkdir(parents=True, exist_ok=True)
    expected = expected_exercises(solutions)
    for name, text in expected.items():
        (exercises / name).write_text(text, encoding="utf-8")
    for stale in exercises.glob("*.ipynb"):
        if stale.name not in expected:
            stale.unlink()
    return sorted(exercises / name for name in expected)


def drift(solutions=None, exercises=None):
    """Problems that make notebooks/exercises differ from what the solutions generate."""
    exercises = exercises or EXERCISES
    expected = expected_exercises(solutions)
    present = {path.name for path in Path(exercises).glob("*.ipynb")}
    problems = [f"{name}: missing" for name in sorted(set(expected) - present)]
    problems += [f"{name}: has no solution notebook" for name in sorted(present - set(expected))]
    for name in sorted(set(expected) & present):
        if (Path(exercises) / name).read_text(encoding="utf-8") != expected[name]:
            problems.append(f"{name}: differs from its solution notebook's student version")
    return problems


def student_readme(notebooks):
    """The bundle's README (templates/student-README.md) with one row per notebook."""
    rows = "\n".join(
        f"| `{name}` | {NOTEBOOK_ROLES.get(name[:3], 'exercise notebook')} |" for name in notebooks
    )
    template = (TEMPLATES / "student-README.md").read_text(encoding="utf-8")
    return template.replace("{notebook_rows}", rows)


def bundle(out, solutions=None, root=ROOT):
    """Build the student bundle in ``out`` (emptied first); returns the files written.

    Layout: the exercise notebooks at the top, next to ``utils.py`` and ``lrpkit/``, so a
    kernel started there imports them without installing anything. castle.jpg is never
    included (a third-party image whose licence is unknown): ``utils.castle_path()`` fetches
    it on first use.
    """
    out, root = Path(out).resolve(), Path(root)
    if out == root or root.is_relative_to(out):
        raise ValueError(f"{out} holds the kit itself; choose an empty or new folder")
    missing = [name for name in STUDENT_FILES + STUDENT_DIRS if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(
            "the bundle needs " + ", ".join(missing) + " (run `make references` for data/reference)"
        )
    if not any((root / STUDENT_DIRS[0]).iterdir()):
        raise FileNotFoundError(f"{root / STUDENT_DIRS[0]} is empty: run `make references`")
    if out.exists() and any(out.iterdir()):
        if not (out / MARK).is_file():
            raise ValueError(f"{out} is not empty and not a student bundle; choose another folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARK).write_text("built by python -m lrpkit.authoring.student bundle\n")
    notebooks = expected_exercises(solutions)
    for name, text in notebooks.items():
        (out / name).write_text(text, encoding="utf-8")
    for name in STUDENT_FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, out / name)
    for name in STUDENT_DIRS:
        shutil.copytree(root / name, out / name, ignore=shutil.ignore_patterns(".*", "__*"))
    # pip can install the bundle: the notebooks' install cell (lrpkit/authoring/course_url.py) does
    # so on
    # Colab, from the course repository that holds it. It packages the files above only.
    kit = (root / "pyproject.toml").read_text(encoding="utf-8")
    (out / "pyproject.toml").write_text(course_url.student_pyproject(kit), encoding="utf-8")
    (out / "README.md").write_text(student_readme(sorted(notebooks)), encoding="utf-8")
    # The kit's own __init__ describes instructor modules students do not get: the bundle's
    # has the template's docstring and the same code (the lazy `from lrpkit import checks`).
    (out / "lrpkit" / "__init__.py").write_text(student_init(root), encoding="utf-8")
    return sorted(path for path in out.rglob("*") if path.is_file() and path.name != MARK)


def student_init(root=ROOT):
    """The bundle's lrpkit/__init__.py: templates/student-init.py's docstring, then the code of
    the kit's own lrpkit/__init__.py after its docstring."""
    kit = (Path(root) / "lrpkit" / "__init__.py").read_text(encoding="utf-8")
    first = ast.parse(kit).body[0]  # the docstring
    code = kit.splitlines(keepends=True)[first.end_lineno :]
    init = (TEMPLATES / "student-init.py").read_text(encoding="utf-8")
    return init + "".join(code)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.authoring.student",
        description=__doc__.split("\n")[0],
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "exercises", help="write notebooks/exercises/ from notebooks/solutions/", allow_abbrev=False
    )
    sub.add_parser(
        "check",
        help="exit 1 when notebooks/exercises/ drift from the solutions",
        allow_abbrev=False,
    )
    pack = sub.add_parser("bundle", help="build the student bundle", allow_abbrev=False)
    pack.add_argument("--out", required=True, type=Path, help="folder to (re)create")
    args = parser.parse_args(argv)
    try:
        if args.command == "exercises":
            for path in write_exercises():
                print(f"wrote {path}")
        elif args.command == "check":
            problems = drift()
            for problem in problems:
                print(f"notebooks/exercises/{problem}: run `make exercises`", file=sys.stderr)
            return 1 if problems else 0
        else:
            files = bundle(args.out)
            print(f"student bundle: {len(files)} files in {args.out}")
    except (MarkerError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
