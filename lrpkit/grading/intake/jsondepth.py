"""JSON that comes from outside, its nesting bounded before it is parsed (grading intake).

``load_json(data, name)`` parses a submitted notebook (or any JSON file from outside) and
raises ``Refused`` (files.py) with a reason a student can act on: not UTF-8, nested deeper
than ``max_depth`` (``json_depth`` counts brackets outside strings in linear time, so parsing
never meets a RecursionError), or not valid JSON (where, by line and column).
"""

import json
from array import array
from itertools import accumulate

from lrpkit.grading.intake.files import Refused

MAX_JSON_DEPTH = 100  # a notebook Jupyter saved nests some 10 levels; json's own limit ~1000

_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1, +1, -1, -1 as signed bytes


def json_depth(raw):
    """How deep JSON text (bytes) nests arrays and objects, counting brackets outside strings
    only; linear time, no recursion, no regular expression to backtrack. Escaped backslashes,
    then escaped quotes are dropped (left to right, as JSON reads them), so every quote left
    opens or closes a string (UTF-8 never puts these bytes inside a multi-byte character)."""
    plain = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(plain.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKET)
    return max(accumulate(array("b", brackets.translate(_STEP))), default=0)


def load_json(data, name, max_depth=MAX_JSON_DEPTH, kind="JSON"):
    """The parsed JSON of ``data`` (bytes or text) from the file ``name``; Refused says why
    it is unusable: not UTF-8, nested deeper than ``max_depth`` (checked before parsing, so
    never a RecursionError), or not valid JSON (where, by line and column). ``kind`` names
    the file in the hints ("notebook")."""
    if isinstance(data, str):
        text, raw = data, data.encode("utf-8", "surrogatepass")
    else:
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(
                f"{name} is not UTF-8 text (not a {kind} file?)", name, "not utf-8"
            ) from None
    depth = json_depth(raw)
    if depth > max_depth:
        raise _too_deep(name, kind, max_depth, f"{depth:,} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise Refused(
            f"{name} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})",
            name,
            "not json",
        ) from None
    except RecursionError:
        raise _too_deep(name, kind, max_depth, "too many levels") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise Refused(f"{name} is not valid JSON ({error})", name, "not json") from None


def _too_deep(name, kind, max_depth, depth):
    return Refused(
        f"{name} nests JSON {depth} deep, more than the {max_depth} allowed (no {kind} file "
        "needs that many): hand in the file as it was saved",
        name,
        "too deep",
    )
