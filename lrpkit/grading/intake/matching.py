"""Which exercise a handed-in notebook is, from its cells (instructors' intake).

The solution notebooks say what each exercise looks like: the markdown headings, the names
its code cells define (``def``/``class``) and the checks its check cells call, each cell
counted for the exercise of the next check cell tagged ``ex3``/``ex4``/``ex5`` below it. Only
what belongs to one exercise alone is kept (``Exercises.features``). A notebook holds an
exercise when it has some of that exercise's features; its exercise is the one it holds most
(as a share of that exercise's features) when no other reaches half of that share. So a
renamed file ("Copy of ex3 (1).ipynb") is still ex3, and an ex4 notebook with a copy of
``gradient_x_input`` is still ex4. A notebook with no features at all (empty, unreadable, or
all its code renamed) is matched by its file name: the solution notebook's name, or ``ex3``,
``exercise_3``... in it. A notebook holding several exercises alike (all in one notebook), or
none, has no exercise (""): it is still graded, as a whole.
"""

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from lrpkit.grading.course import ALL_EXERCISES
from lrpkit.grading.intake.files import Refused
from lrpkit.grading.intake.jsondepth import load_json
from lrpkit.layout import CHECK_TAG, SOLUTIONS, tags

DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)
CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")
EXERCISE_WORD = re.compile(r"(?<![a-z0-9])ex(?:ercise)?[ _-]*0*([0-9]+)(?![0-9])")
HALF = 0.5  # another exercise's share that makes a notebook hold both


@dataclass(frozen=True)
class Match:
    """The exercise a notebook was matched to ("" when none or several) and how."""

    exercise: str
    how: str  # "content", "name" or "" (not matched)
    held: tuple = ()  # every exercise it holds by content


def _text(source):
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _cells(data):
    """[(cell type, source, tags)] of a notebook's bytes; [] when it is not one."""
    try:
        nb = load_json(data, "notebook", kind="notebook")
    except Refused:
        return []
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return []
    return [
        (cell.get("cell_type"), _text(cell.get("source", "")), tuple(tags(cell)))
        for cell in cells
        if isinstance(cell, dict)
    ]


def _words(text):
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _definitions(source):
    """Names a code cell defines at its top level (def, class); by a regex when it does not
    parse (a student's syntax error elsewhere in the cell)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(DEFINITION.findall(source))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in tree.body if isinstance(node, kinds)}


def cell_features(kind, source):
    """What one cell says about its exercise: headings, definitions, checks called."""
    if kind == "markdown":
        return {
            "heading:" + _words(line.lstrip("#"))
            for line in source.splitlines()
            if line.startswith("#") and _words(line.lstrip("#"))
        }
    if kind == "code":
        names = {"def:" + name for name in _definitions(source)}
        return names | {"check:" + name for name in CHECK_CALL.findall(source)}
    return set()


def notebook_features(data):
    """Every feature of a notebook's cells."""
    found = set()
    for kind, source, _ in _cells(data):
        found |= cell_features(kind, source)
    return found


def name_words(name):
    """A file name as words, without what copies and resubmissions add ("Copy of", " (1)",
    Canvas's "-2")."""
    stem = re.sub(r"\.ipynb$", "", name, flags=re.IGNORECASE)
    stem = re.sub(r"^copy of\s+", "", stem, flags=re.IGNORECASE)
    stem = re.sub(r"(\s*\(\d+\)|-\d{1,3})+$", "", stem)
    return _words(stem)


@dataclass
class Exercises:
    """What each exercise of a course looks like, from its solution notebooks."""

    features: dict  # exercise -> frozenset of the features only it has
    names: dict = field(default_factory=dict)  # solution notebook name (words) -> exercise

    @classmethod
    def from_solutions(cls, folder=SOLUTIONS, exercises=ALL_EXERCISES):
        notebooks = sorted(Path(folder).glob("*.ipynb"))
        return cls.from_notebooks({p.name: p.read_bytes() for p in notebooks}, exercises)

    @classmethod
    def from_notebooks(cls, notebooks, exercises=ALL_EXERCISES):
        """From {file name: bytes} of the solution notebooks."""
        owners = {}  # feature -> exercises having it
        names = {}
        for file_name, data in notebooks.items():
            cells = _cells(data)
            mine = set()
            pending = set()  # features above the next check cell
            last = None
            for kind, source, cell_tags in cells:
                pending |= cell_features(kind, source)
                exercise = next((t for t in cell_tags if t in exercises), None)
                if CHECK_TAG in cell_tags and exercise:
                    for feature in pending:
                        owners.setdefault(feature, set()).add(exercise)
                    pending, last = set(), exercise
                    mine.add(exercise)
            for feature in pending if last else ():
                owners.setdefault(feature, set()).add(last)
            if len(mine) == 1:
                names[name_words(file_name)] = mine.pop()
        features = {e: set() for e in exercises}
        for feature, having in owners.items():
            if len(having) == 1:
                features[next(iter(having))].add(feature)
        return cls({e: frozenset(f) for e, f in features.items() if f}, names)

    def by_content(self, data):
        """The exercises a notebook holds, best first, each with its share of features."""
        found = notebook_features(data)
        shares = {e: len(found & features) / len(features) for e, features in self.features.items()}
        best = max(shares.values(), default=0.0)
        if best == 0:
            return ()
        held = [e for e, share in shares.items() if share >= HALF * best]
        return tuple(sorted(held, key=lambda e: -shares[e]))

    def by_name(self, name):
        """The exercise a file name gives, or ""."""
        words = name_words(name)
        if words in self.names:
            return self.names[words]
        numbers = {f"ex{n}" for n in EXERCISE_WORD.findall(words.replace(" ", "_"))}
        numbers &= set(self.features) | set(self.names.values())
        return numbers.pop() if len(numbers) == 1 else ""

    def match(self, name, data):
        """``Match`` of one notebook: by its content, else by its name."""
        held = self.by_content(data)
        if len(held) == 1:
            return Match(held[0], "content", held)
        if held:
            return Match("", "content", held)
        exercise = self.by_name(name)
        return Match(exercise, "name" if exercise else "", ())
