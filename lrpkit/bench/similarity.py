"""Benchmark of the similarity check (instructors): 500 submissions, seconds and peak memory.

``python -m lrpkit.bench.similarity`` (``make bench``) writes ``--submissions`` (500) synthetic
submissions as notebooks: the exercise notebooks with the tasks filled in from the 20
independent solutions in tests/grading/similarity_fixtures/ (Exercise 3 from one student,
``Conv``, ``lrp_relevance`` and Exercise 5 each from a random one), disguised at random
(seeded): variables renamed, dead code and comments added, reformatted by ``ast.unparse``,
definitions and cells reordered. It then runs the similarity check on them in a fresh Python
process (``lrpkit.grading.results.similarity``: reading the notebooks, the template, fingerprints,
scoring, similarity.csv and the report's fragment), ``--reps`` times, and reports the median
seconds and that process's peak memory (max RSS) beside the targets (issue 20: <= 10 s on 2
cores, <= 1 GB), and, for scale, a naive comparison on the same input: difflib's
SequenceMatcher ratio of the code lines of every pair, timed on a sample of pairs and
extrapolated to all pairs (it says so). Exits 1 when a target is missed.

The tests use ``sections``, ``fill``, ``fixture_cells`` and the disguises as well.
"""

import argparse
import ast
import difflib
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path

import nbformat

from lrpkit.layout import EXERCISES, ROOT

FIXTURES = ROOT / "tests" / "grading" / "similarity_fixtures"
SUBMISSIONS = 500
SECONDS, MEGABYTES = 10.0, 1024.0  # targets for SUBMISSIONS submissions
SAMPLE = 400  # pairs the naive comparison is timed on
#: sections of a fixture taken together: Exercise 3 (pasted into Exercise 4 too), Conv,
#: lrp_relevance, Exercise 5
PARTS = (("gradient_x_input", "gradient_x_input_ex3"), ("Conv",), ("lrp_relevance",))
PARTS += (("perturbation_curve",),)
MARKER = "# %% "
WORDS = ("tmp", "val", "res", "data", "arr", "item", "thing", "out", "acc", "buf", "my", "v")
DEAD = (
    "unused_{n} = {n} * 2",
    'debug_{n} = "not used"',
    "if False:\n    print('debug {n}')",
    "assert True, 'never fails'",
    "_ = [{n}, {n}]",
)
COMMENTS = ("# step {n}", "# TODO check this", "# compute the values", "# see the lecture")


def sections(text):
    """{name: code} of a fixture file: the code after each ``# %% name`` line."""
    found, name = {}, None
    for line in text.split("\n"):
        if line.startswith(MARKER):
            name = line[len(MARKER) :].strip()
            found[name] = []
        elif name is not None:
            found[name].append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in found.items()}


def _parsable(source):
    """The source with IPython lines blanked (ast cannot read them), line numbers kept."""
    return "\n".join("" if line.lstrip()[:1] in ("%", "!") else line for line in source.split("\n"))


def fill(source, code):
    """A template cell with every top-level definition named in ``code`` ({name: code})
    replaced by that code, as a student's notebook has it."""
    try:
        tree = ast.parse(_parsable(source))
    except SyntaxError:
        return source
    lines = source.split("\n")
    for node in reversed(tree.body):
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in code:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            lines[first - 1 : node.end_lineno] = code[node.name].split("\n")
    return "\n".join(lines)


def exercise_notebooks(folder=EXERCISES):
    """{file name: notebook} of the exercise notebooks students start from."""
    paths = sorted(Path(folder).glob("*.ipynb"))
    return {p.name: nbformat.read(str(p), as_version=4) for p in paths}


def filled_notebooks(code, notebooks):
    """{file name: notebook}: copies of the exercise notebooks with the tasks in ``code``."""
    filled = {}
    for name, nb in notebooks.items():
        nb = nbformat.from_dict(json.loads(json.dumps(nb)))
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = fill(cell.source, code)
        filled[name] = nb
    return filled


def code_sources(notebooks):
    """[source] of the notebooks' code cells, in order."""
    return [c.source for nb in notebooks.values() for c in nb.cells if c.cell_type == "code"]


def fixture_cells(path, notebooks=None):
    """[source] of the code cells of a fixture handed in: the exercise notebooks with the
    fixture's sections in place of the stubs."""
    code = sections(Path(path).read_text(encoding="utf-8"))
    return code_sources(filled_notebooks(code, notebooks or exercise_notebooks()))


# -- disguises: what a student hiding a copy does ------------------------------------------


def _tokens(source):
    return list(tokenize.generate_tokens(io.StringIO(source).readline))


def rename(source, rng):
    """The source with its functions' parameters and local variables renamed."""
    tree = ast.parse(_parsable(source))
    names = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef):
            names |= {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
            stored = (n for n in ast.walk(function) if isinstance(n, ast.Name))
            names |= {n.id for n in stored if isinstance(n.ctx, ast.Store)}
    names.discard("self")
    new = {name: f"{rng.choice(WORDS)}_{name.lower()}{rng.randrange(10)}" for name in names}
    lines = source.split("\n")
    tokens = _tokens(_parsable(source))
    for i in reversed(range(len(tokens))):
        tok = tokens[i]
        previous = tokens[i - 1].string if i else ""
        if tok.type == tokenize.NAME and tok.string in new and previous != ".":
            (row, start), (_, end) = tok.start, tok.end
            line = lines[row - 1]
            lines[row - 1] = line[:start] + new[tok.string] + line[end:]
    return "\n".join(lines)


def _insert(source, rng, texts, share):
    """The source with texts inserted before a share of the statements in function bodies,
    indented like them."""
    tree = ast.parse(_parsable(source))
    places = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for statement in node.body:
                if statement.lineno == node.lineno:  # def f(x): return x
                    continue
                first = min(
                    [statement.lineno]
                    + [d.lineno for d in getattr(statement, "decorator_list", [])]
                )
                places.add((first, statement.col_offset))
    lines = source.split("\n")
    for row, indent in sorted(places, reverse=True):
        if rng.random() < share:
            text = rng.choice(texts).format(n=rng.randrange(100))
            lines[row - 1 : row - 1] = [" " * indent + t for t in text.split("\n")]
    return "\n".join(lines)


def add_dead_code(source, rng, share=0.3):
    """Unused assignments, ``if False:`` blocks and asserts between statements."""
    return _insert(source, rng, DEAD, share)


def recomment(source, rng, share=0.3):
    """Comments removed, others added between statements."""
    lines = source.split("\n")
    for tok in reversed(_tokens(_parsable(source))):
        if tok.type == tokenize.COMMENT:
            row, start = tok.start
            lines[row - 1] = lines[row - 1][:start].rstrip()
    return _insert("\n".join(lines), rng, COMMENTS, share)


def reformat(source, rng=None):
    """The cell as ``ast.unparse`` writes it (quotes, parentheses, spacing, no comments);
    its IPython lines kept at the top."""
    magics = [line for line in source.split("\n") if line.lstrip()[:1] in ("%", "!")]
    return "\n".join([*magics, ast.unparse(ast.parse(_parsable(source)))])


def reorder(source, rng):
    """Top-level definitions of the cell in another order (the rest stays where it is)."""
    tree = ast.parse(_parsable(source))
    lines = source.split("\n")
    spans = [
        (min([n.lineno] + [d.lineno for d in n.decorator_list]), n.end_lineno)
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.ClassDef)
    ]
    if len(spans) < 2:
        return source
    blocks = ["\n".join(lines[a - 1 : b]) for a, b in spans]
    rng.shuffle(blocks)
    for (a, b), block in sorted(zip(spans, blocks, strict=True), reverse=True):
        lines[a - 1 : b] = [block]
    return "\n".join(lines)


DISGUISES = (rename, add_dead_code, recomment, reformat, reorder)


def disguise(source, rng, chance=0.5):
    """The source through each disguise with the given chance; a cell that is not plain
    Python stays as it is."""
    for change in DISGUISES:
        if rng.random() < chance:
            try:
                source = change(source, rng)
            except (SyntaxError, tokenize.TokenError, ValueError):
                return source
    return source


# -- the benchmark ------------------------------------------------------------------------


def synthetic(count, seed=0, folder=FIXTURES, notebooks=None):
    """{student id: {file name: notebook}}: ``count`` submissions, each with the parts of
    ``PARTS`` from random fixtures, every filled-in cell disguised at random, the cells of
    one notebook in every fourth submission reversed."""
    rng = random.Random(seed)
    notebooks = notebooks or exercise_notebooks()
    fixtures = [sections(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("s*.py"))]
    if not fixtures:
        raise FileNotFoundError(f"no fixtures s*.py in {folder} (a checkout of the kit has them)")
    found = {}
    for number in range(count):
        code = {}
        for part in PARTS:
            source = rng.choice(fixtures)
            code.update({name: source[name] for name in part})
        filled = filled_notebooks(code, notebooks)
        for name, nb in filled.items():
            for given, cell in zip(notebooks[name].cells, nb.cells, strict=True):
                if cell.source != given.source:
                    cell.source = disguise(cell.source, rng)
        if number % 4 == 0:
            nb = filled[rng.choice(sorted(filled))]
            nb.cells = nb.cells[::-1]
        found[f"student{number:04d}"] = filled
    return found


def write(submissions, folder):
    """Each submission as a folder of notebooks, as students hand them in."""
    for student, notebooks in submissions.items():
        (folder / student).mkdir(parents=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, str(folder / student / name))


def max_rss_mb():
    """This process's peak resident memory so far, in MiB: VmHWM (Linux), else ru_maxrss
    (which on Linux also counts the parent's peak before exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def similarity_run(folder, out):
    """The similarity check as grading runs it: read the submissions, load the template,
    compare, write similarity.csv and the report's fragment. {seconds, cpu (its own CPU
    seconds, less sensitive to other jobs), pairs, flagged}."""
    from lrpkit.grading.intake.submissions import discover
    from lrpkit.grading.results import similarity

    started, cpu = time.perf_counter(), time.process_time()
    code = similarity.student_code(discover(folder))
    pairs = similarity.compare(code, similarity.load_template())
    similarity.write_similarity_csv(Path(out) / "similarity.csv", pairs)
    flagged = similarity.flagged(pairs)
    (Path(out) / "similar.html").write_text(similarity.pairs_html(flagged), encoding="utf-8")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "pairs": len(pairs), "flagged": len(flagged)}


def _child(folder, out):
    """Run in a fresh process: the similarity run, its figures as JSON on stdout."""
    before = max_rss_mb()
    figures = similarity_run(folder, out)
    print(json.dumps({**figures, "rss_mb": max_rss_mb(), "rss_before_mb": before}))


def fresh_run(folder, out):
    """The similarity run in a fresh Python process (its own peak memory): its figures."""
    command = [sys.executable, "-m", "lrpkit.bench.similarity", "--child", str(folder), str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the similarity run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def naive(folder, pairs, rng):
    """Seconds per pair of difflib's SequenceMatcher ratio on two submissions' code lines
    (all code cells, as handed in), on ``pairs`` random pairs; and their ratios."""
    from lrpkit.grading.intake.submissions import discover, parse

    lines = {}
    for sub in discover(folder):
        parse(sub)
        lines[sub.student] = "\n".join(cell.source for cell in sub.cells).split("\n")
    students = sorted(lines)
    sample = [tuple(rng.sample(students, 2)) for _ in range(pairs)]
    started = time.perf_counter()
    ratios = [difflib.SequenceMatcher(None, lines[a], lines[b]).ratio() for a, b in sample]
    return (time.perf_counter() - started) / pairs, ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--submissions", type=int, default=SUBMISSIONS)
    parser.add_argument("--reps", type=int, default=3, help="fresh runs (median is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(*args.child)

    from lrpkit.bench import tools as benchtools  # imports torch: never in the measured process

    print(benchtools.header())
    with tempfile.TemporaryDirectory(prefix="similarity-bench-") as tmp:
        folder, out = Path(tmp) / "submissions", Path(tmp) / "out"
        out.mkdir()
        write(synthetic(args.submissions, args.seed), folder)
        runs = [fresh_run(folder, out) for _ in range(args.reps)]
        per_pair, ratios = naive(folder, SAMPLE, random.Random(args.seed))
    n = args.submissions
    all_pairs = n * (n - 1) // 2
    seconds = sorted(r["seconds"] for r in runs)[len(runs) // 2]
    rss = max(r["rss_mb"] for r in runs)
    naive_seconds = per_pair * all_pairs
    print(f"\n{n} synthetic submissions ({all_pairs} pairs), seed {args.seed}")
    each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
    cpu = sorted(r["cpu"] for r in runs)[len(runs) // 2]
    print(
        f"similarity (lrpkit.grading.results.similarity), fresh process, median of {args.reps}: "
        f"{seconds:.2f} s (runs: {each} s), {cpu:.2f} s of CPU time (one core)"
    )
    print(
        f"  peak memory {rss:.0f} MiB (of which {runs[0]['rss_before_mb']:.0f} MiB before the "
        f"run: Python and imports); {runs[0]['pairs']} pairs in similarity.csv, "
        f"{runs[0]['flagged']} in the report"
    )
    print(
        f"naive difflib.SequenceMatcher on code lines, all pairs: {naive_seconds:.0f} s "
        f"(extrapolated from {SAMPLE} random pairs, {per_pair * 1e3:.1f} ms each; "
        f"{naive_seconds / seconds:.0f} x the similarity run)"
    )
    ratios.sort()
    print(
        f"  its ratio on random pairs: median {ratios[len(ratios) // 2]:.2f}, lowest "
        f"{ratios[0]:.2f} (the given template dominates every pair)"
    )
    return benchtools.report(
        [
            benchtools.Target(f"similarity of {n} submissions", seconds, "<=", SECONDS, "s"),
            benchtools.Target("peak memory of that process", rss, "<=", MEGABYTES, "MiB"),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
