"""Similar submissions (instructors): pairs of students whose own code is alike, MOSS-style.

Only what a student wrote is compared: their code cells without the check cells and without
the lines the exercise notebooks give (fingerprints.py: normalised tokens, k-gram hashes,
winnowing). A fingerprint held by more than ``max(COMMON_MIN, common * class size)``
submissions is what everyone writes -- the obvious solution of a task a few lines long --
and is ignored; an inverted index (fingerprint -> students) then counts the fingerprints
each pair shares, without comparing all pairs. A pair's score is

    score = |A & B| / max(min(|A|, |B|), FLOOR)

over the students' remaining fingerprint sets A and B: the share of the smaller submission
found in the other (a copy inside a longer submission still scores high), where ``FLOOR``
keeps a student who wrote almost nothing of their own from scoring 1 on two fingerprints.
``jaccard = |A & B| / |A | B|`` is given beside it. Pairs are ranked by score, then jaccard.

On the 20 independent solutions and the planted copies of tests/grading/similarity_fixtures
(k = 5, w = 4), independent pairs score at most ~0.2, copies (renamed, reordered, with
comments changed, dead code added, reformatted) about 0.8 to 1, a submission half copied
from one student and half from another ~0.5 with each: hence ``REPORT`` and ``LISTED``.

Use (the class report, lrpkit.grading.results.classreport, calls these)::

    template = load_template()                 # the exercise notebooks' given lines
    pairs = compare(student_code(subs), template)   # every pair with score >= LISTED
    write_similarity_csv(out / "similarity.csv", pairs)
    html = pairs_html(flagged(pairs))          # pairs with score >= REPORT, side by side

``compare`` also takes ``{student: [cell source]}`` directly. Results are plain records
(``Pair``, ``Line``); ``pairs_html`` is the one place that renders them (escaped).
"""

import html
from dataclasses import dataclass
from pathlib import Path

from lrpkit.grading.intake.submissions import code_cells, is_check, parse
from lrpkit.grading.results import fingerprints
from lrpkit.grading.results.tables import write_csv
from lrpkit.layout import EXERCISES

REPORT = 0.5  # a pair at or above this score is listed in the report
LISTED = 0.25  # a pair at or above this score is written to similarity.csv
COMMON = 0.2  # a fingerprint held by more than this share of the class is ignored ...
COMMON_MIN = 5  # ... if it is held by more than this many submissions too
FLOOR = 10  # fingerprints: the least size the score divides by
SHOWN = 60  # shared lines shown per pair in the report
CSV_COLUMNS = ("student_a", "student_b", "score", "jaccard", "shared", "size_a", "size_b")


@dataclass(frozen=True)
class Line:
    """One source line of a student's cell: the cell's label, its 1-based line, its text."""

    cell: str
    number: int
    text: str


@dataclass(frozen=True)
class Pair:
    """Two students whose own code shares fingerprints (a < b): score and jaccard, the
    number of shared fingerprints and of each student's (common ones left out), and the
    shared lines side by side, ((Line in a, Line in b), ...) in a's order (empty for a pair
    below ``compare``'s ``shown``)."""

    a: str
    b: str
    score: float
    jaccard: float
    count: int
    size_a: int
    size_b: int
    shared: tuple = ()

    def row(self):
        """similarity.csv's row (CSV_COLUMNS)."""
        return {
            "student_a": self.a,
            "student_b": self.b,
            "score": f"{self.score:.3f}",
            "jaccard": f"{self.jaccard:.3f}",
            "shared": self.count,
            "size_a": self.size_a,
            "size_b": self.size_b,
        }


@dataclass(frozen=True)
class Document:
    """One student's cells (label, lines) and fingerprints: {hash: (cell, lines)} of the
    first place each occurs."""

    cells: tuple
    prints: dict


def load_template(folder=EXERCISES):
    """The given lines of the exercise notebooks students start from (their code cells)."""
    paths = sorted(Path(folder).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no exercise notebooks in {folder}: run `make exercises`")
    sources = [cell.source for p in paths for cell in code_cells(p.name, p.read_bytes())]
    return fingerprints.template(sources)


def student_code(subs):
    """{student: [CodeCell]} of parsed submissions (check cells dropped); those that could
    not be read are left out (grades.csv has their reason)."""
    found = {}
    for sub in subs:
        if not sub.cells and not sub.problem:
            parse(sub)
        if not sub.problem:
            found[sub.student] = list(sub.cells)
    return found


def _cell(index, cell):
    """(label, source) of a CodeCell or of a plain source string."""
    if isinstance(cell, str):
        return f"cell {index + 1}", cell
    return cell.label, cell.source


def document(cells, template=frozenset(), k=fingerprints.K, w=fingerprints.W, cache=None):
    """A student's Document: fingerprints of their own tokens, cell by cell (check cells
    and the template's lines left out). ``cache``: {source: [Fingerprint]}, shared across
    students (an unchanged given cell is read once)."""
    cache = {} if cache is None else cache
    labels, prints = [], {}
    for index, cell in enumerate(cells):
        label, source = _cell(index, cell)
        labels.append((label, tuple(source.split("\n"))))
        if source not in cache:
            own = [] if is_check(source) else fingerprints.own_tokens(source, template)
            cache[source] = fingerprints.fingerprints(own, k, w)
        for p in cache[source]:
            prints.setdefault(p.hash, (index, p.lines))
    return Document(tuple(labels), prints)


def _shared(doc_a, doc_b, hashes):
    """((Line in a, Line in b), ...): the lines of the shared fingerprints, paired in order
    (a k-gram over two lines in a and one in b pairs both of a's lines with b's)."""
    places = set()
    for h in hashes:
        (cell_a, lines_a), (cell_b, lines_b) = doc_a.prints[h], doc_b.prints[h]
        last_a, last_b = len(lines_a) - 1, len(lines_b) - 1
        for i in range(max(last_a, last_b) + 1):
            places.add((cell_a, lines_a[min(i, last_a)], cell_b, lines_b[min(i, last_b)]))

    def line(doc, cell, number):
        label, lines = doc.cells[cell]
        return Line(label, number, lines[number - 1] if number <= len(lines) else "")

    return tuple((line(doc_a, ca, la), line(doc_b, cb, lb)) for ca, la, cb, lb in sorted(places))


def _counts(sets, limit):
    """{(a, b): shared fingerprints} over the inverted index, fingerprints in more than
    ``limit`` submissions left out."""
    index = {}
    for student, hashes in sets.items():
        for h in hashes:
            index.setdefault(h, []).append(student)
    counts = {}
    for holders in index.values():
        if 1 < len(holders) <= limit:
            holders.sort()
            for i, a in enumerate(holders):
                for b in holders[i + 1 :]:
                    counts[a, b] = counts.get((a, b), 0) + 1
    return counts, {h for h, holders in index.items() if len(holders) > limit}


def compare(
    submitted, template=frozenset(), low=LISTED, shown=REPORT, common=COMMON, k=None, w=None
):
    """[Pair] with score >= ``low``, most similar first; those with score >= ``shown``
    carry their shared lines (the report's), the others none (similarity.csv's).

    submitted: {student: [cell]}, a cell a source string or a CodeCell (``student_code``);
    template: ``load_template()`` (the given lines, never counted); common: the share of
    the class above which a fingerprint is everyone's (ignored); k, w: k-gram length and
    winnowing window (fingerprints.K, fingerprints.W).
    """
    k, w = k or fingerprints.K, w or fingerprints.W
    cache = {}
    docs = {s: document(cells, template, k, w, cache) for s, cells in submitted.items()}
    limit = max(COMMON_MIN, int(common * len(docs)))
    counts, everyones = _counts({s: d.prints.keys() for s, d in docs.items()}, limit)
    sizes = {s: len(d.prints.keys() - everyones) for s, d in docs.items()}
    pairs = []
    for (a, b), count in counts.items():
        score = count / max(min(sizes[a], sizes[b]), FLOOR)
        if score >= low:
            jaccard = count / (sizes[a] + sizes[b] - count)
            shared = ()
            if score >= shown:
                hashes = (docs[a].prints.keys() & docs[b].prints.keys()) - everyones
                shared = _shared(docs[a], docs[b], hashes)
            pairs.append(Pair(a, b, score, jaccard, count, sizes[a], sizes[b], shared))
    return sorted(pairs, key=lambda p: (-p.score, -p.jaccard, p.a, p.b))


def flagged(pairs, threshold=REPORT):
    """The pairs the report lists: score >= threshold, in their order."""
    return [p for p in pairs if p.score >= threshold]


def write_similarity_csv(path, pairs):
    """Write similarity.csv (atomically, through the kit's one CSV writer,
    lrpkit.grading.results.tables:
    ids a spreadsheet would run as formulas are neutralised): CSV_COLUMNS, one row per pair
    given, most similar first."""
    write_csv(path, CSV_COLUMNS, [p.row() for p in pairs])


def _code(line):
    return html.escape(line.text.rstrip()) or "&nbsp;"


def _side_by_side(pair, shown):
    rows = []
    for left, right in pair.shared[:shown]:
        rows.append(
            f'<tr><td class="where">{html.escape(left.cell)}, line {left.number}</td>'
            f"<td><pre>{_code(left)}</pre></td>"
            f'<td class="where">{html.escape(right.cell)}, line {right.number}</td>'
            f"<td><pre>{_code(right)}</pre></td></tr>"
        )
    more = len(pair.shared) - shown
    if more > 0:
        rows.append(f'<tr><td colspan="4">... and {more} more shared lines</td></tr>')
    a, b = html.escape(pair.a), html.escape(pair.b)
    return (
        f'<table class="side-by-side"><thead><tr><th colspan="2">{a}</th>'
        f'<th colspan="2">{b}</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def pairs_html(pairs, threshold=REPORT, shown=SHOWN):
    """The report's "similar pairs" section, an HTML fragment: one row per pair (students,
    score, jaccard, shared fingerprints) and the shared lines side by side; every text from
    a submission escaped. Classes: similarity, pairs, pair, side-by-side, where."""
    head = (
        '<section class="similarity"><h2>Similar submissions</h2>'
        f"<p>Pairs whose own code (the exercise notebooks' given lines left out) shares at "
        f"least {threshold:.0%} of the smaller one's fingerprints, most similar first.</p>"
    )
    if not pairs:
        return head + "<p>No pair is that similar.</p></section>"
    items = []
    for pair in pairs:
        a, b = html.escape(pair.a), html.escape(pair.b)
        items.append(
            f'<details class="pair"><summary>{a} and {b}: score {pair.score:.0%}, '
            f"jaccard {pair.jaccard:.0%}, {pair.count} shared fingerprints "
            f"({pair.size_a} and {pair.size_b})</summary>{_side_by_side(pair, shown)}</details>"
        )
    return head + '<div class="pairs">' + "".join(items) + "</div></section>"
