"""Fingerprints of what a student wrote (instructors): the first half of the similarity check.

``similarity.py`` compares students by the fingerprints made here. A submission's code cells
lose the lines the template gives (``template``: the exercise notebooks' code, compared line
by line with whitespace and comments ignored), and what remains becomes a sequence of
normalised tokens per cell (``lex``), read with Python's ``tokenize``:

- every name becomes ``N``, except keywords and attribute names after a dot (``.backward``,
  ``.clamp``, ``.autograd.grad``): those name the method called, and renaming a variable
  never changes them;
- numbers become ``1``, strings (f-strings included) ``"``;
- comments, docstrings, line breaks, indentation, ``;`` and trailing commas are dropped;
- IPython lines (``%matplotlib inline``, ``!pip``) are ignored; a cell that does not tokenize
  (a syntax error) is read line by line with a simpler lexer instead.

k-grams of those tokens are hashed and winnowed (S. Schleimer, D. Wilkerson, A. Aiken,
"Winnowing: local algorithms for document fingerprinting", SIGMOD 2003; as MOSS does): in
every window of ``w`` consecutive k-gram hashes the smallest is kept (the rightmost on ties),
so any run of ``k + w - 1`` tokens two cells share yields a shared fingerprint. Each
fingerprint remembers the source lines of its k-gram, for the side-by-side view. Tokens and
hashes are the same on Python 3.10 to 3.13 (ints and tuples of ints hash alike everywhere).
"""

import io
import keyword
import re
import tokenize
import zlib
from typing import NamedTuple

K = 5  # tokens per k-gram
W = 4  # k-gram hashes per window: shared runs of K + W - 1 = 8 tokens are always found

#: token types that are layout, not code (NEWLINE, the end of a statement, is kept apart)
_LAYOUT = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}
# Python 3.12 splits f-strings into parts; earlier versions give one STRING token.
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)
_CLOSING = {")", "]", "}"}
_MAGIC = re.compile(r"^[ \t]*[%!]")
#: the lexer for cells that tokenize rejects: one line at a time
_FALLBACK = re.compile(
    r"""(?P<comment>\#.*)
    |(?P<string>[rbfuRBFU]{0,2}(?:'''|\"\"\"|'(?:\\.|[^'\\\n])*'?|"(?:\\.|[^"\\\n])*"?))
    |(?P<number>\d[\w.]*|\.\d\w*)
    |(?P<name>[^\W\d]\w*)
    |(?P<op>\*\*=?|//=?|->|:=|[<>!=]=|<<=?|>>=?|[-+*/%@&|^]=|\S)""",
    re.VERBOSE,
)
_KINDS = {
    "comment": tokenize.COMMENT,
    "string": tokenize.STRING,
    "number": tokenize.NUMBER,
    "name": tokenize.NAME,
    "op": tokenize.OP,
}


class Token(NamedTuple):
    """One token of a cell: its text, its normalised form ("" when dropped), its line."""

    text: str
    norm: str
    line: int  # 1-based line of the cell where it starts


class Fingerprint(NamedTuple):
    """A winnowed k-gram hash and the 1-based lines of the cell its k tokens are on."""

    hash: int
    lines: tuple  # ascending


def _without_magics(source):
    """The source with IPython lines (``%...``, ``!...``) blanked, line numbers kept."""
    return "\n".join("" if _MAGIC.match(line) else line for line in source.split("\n"))


def _raw_tokens(source):
    """[(type, text, line)] of a cell's code by tokenize, NEWLINE kept, other layout left
    out, an f-string as one STRING token. Raises tokenize.TokenError or SyntaxError where
    tokenize gives up."""
    found, depth, parts, start = [], 0, [], 0
    for kind, text, (line, _), _, _ in tokenize.generate_tokens(io.StringIO(source).readline):
        if kind == _FSTRING_START:
            depth += 1
        if depth:  # inside an f-string: collect its parts
            if not parts:
                start = line
            parts.append(text)
            if kind == _FSTRING_END:
                depth -= 1
                if not depth:
                    found.append((tokenize.STRING, "".join(parts), start))
                    parts = []
        elif kind not in _LAYOUT and not (kind == tokenize.ERRORTOKEN and text.isspace()):
            found.append((kind, text, line))
    return found


def _fallback_tokens(source):
    """[(type, text, line)] of a cell that tokenize rejects, read line by line (every line
    ends a statement)."""
    found = []
    for number, line in enumerate(source.split("\n"), 1):
        for match in _FALLBACK.finditer(line):
            if match.lastgroup != "comment":
                found.append((_KINDS[match.lastgroup], match.group(), number))
        found.append((tokenize.NEWLINE, "", number))
    return found


def lex(source):
    """[Token] of one cell's code, layout left out; never raises on bad code."""
    source = _without_magics(source)
    try:
        raw = _raw_tokens(source)
    except (tokenize.TokenError, SyntaxError):
        raw = _fallback_tokens(source)
    tokens = []
    last = len(raw) - 1
    for i, (kind, text, line) in enumerate(raw):
        if kind == tokenize.NEWLINE:
            continue
        before = raw[i - 1] if i else (tokenize.NEWLINE, "", 0)
        after = raw[i + 1] if i < last else (tokenize.NEWLINE, "", 0)
        if kind == tokenize.NAME:
            norm = text if before[1] == "." or keyword.iskeyword(text) else "N"
        elif kind == tokenize.NUMBER:
            norm = "1"
        elif kind == tokenize.STRING:  # a string that is a statement is a docstring
            docstring = before[0] == tokenize.NEWLINE and after[0] == tokenize.NEWLINE
            norm = "" if docstring else '"'
        elif text == ";" or (text == "," and after[1] in _CLOSING):
            norm = ""
        else:
            norm = text
        tokens.append(Token(text, norm, line))
    return tokens


def line_keys(tokens):
    """{line: its tokens' text joined}: a line as the template comparison sees it."""
    keys = {}
    for token in tokens:
        keys[token.line] = keys.get(token.line, "") + "\x1f" + token.text
    return keys


def template(sources):
    """The given lines of the template's code cells (``line_keys`` values): a frozenset."""
    return frozenset(key for source in sources for key in line_keys(lex(source)).values())


def own_tokens(source, given=frozenset()):
    """[Token] a student wrote in one cell: tokens on lines the template does not give, and
    not dropped by the normalisation."""
    tokens = lex(source)
    keys = line_keys(tokens)
    return [t for t in tokens if t.norm and keys[t.line] not in given]


def winnow(hashes, w=W):
    """Indices of the hashes winnowing keeps: the minimum of every window of ``w``
    consecutive hashes (the rightmost on ties), each index once, ascending; a sequence
    shorter than a window keeps its minimum."""
    kept = []
    for start in range(max(1, len(hashes) - w + 1)):
        window = hashes[start : start + w]
        if not window:
            break
        smallest = min(window)
        index = start + len(window) - 1 - window[::-1].index(smallest)
        if not kept or kept[-1] != index:
            kept.append(index)
    return kept


_IDS = {}


def _id(norm):
    """A token's number: CRC-32 of its normalised text (the same in every process)."""
    found = _IDS.get(norm)
    if found is None:
        found = _IDS[norm] = zlib.crc32(norm.encode())
    return found


def fingerprints(tokens, k=K, w=W):
    """[Fingerprint] of one cell's own tokens: winnowed hashes of their k-grams. A k-gram's
    hash is Python's hash of its tokens' numbers (ints and tuples of ints hash the same in
    every process)."""
    ids = [_id(t.norm) for t in tokens]
    hashes = [hash(tuple(ids[i : i + k])) for i in range(len(ids) - k + 1)]
    return [
        Fingerprint(hashes[i], tuple(sorted({t.line for t in tokens[i : i + k]})))
        for i in winnow(hashes, w)
    ]
