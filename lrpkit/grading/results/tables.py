"""Every CSV the kit writes, and its readers of them: cells a spreadsheet would run are neutralised.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets (OWASP's "CSV injection"), and ids, names, file names and
reasons come from students. ``neutral`` puts an apostrophe before such a cell (spreadsheets
show the rest as text) and before a cell that already begins with one; plain numbers (``-3``,
``+1.5``) stay as they are. ``restore`` undoes it, so the kit's own readers (``merge``,
``--configs``, updating an output folder) get back exactly what was written, and a table read
and written again is byte-identical. Lines end in CR LF (RFC 4180, as spreadsheets write).
"""

import csv
import io
import re
from pathlib import Path

from lrpkit.grading.intake.files import read_bounded
from lrpkit.grading.results.feedback import write_atomic

#: first characters that make a spreadsheet evaluate a cell (OWASP, CSV injection)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
MAX_BYTES = 200 * 2**20  # the kit's own tables; anything larger is not one


class TableError(ValueError):
    """A CSV file that is not one of the kit's tables (unreadable, or other columns)."""


def neutral(cell):
    """A cell as written: ``'`` before a formula's first character (and before a leading ``'``)."""
    text = "" if cell is None else str(cell)
    if text.startswith(QUOTE) or text.startswith(TRIGGERS) and not NUMBER.fullmatch(text):
        return QUOTE + text
    return text


def restore(cell):
    """A cell as it was before ``neutral``."""
    return cell[1:] if cell.startswith(QUOTE) else cell


def csv_text(fields, rows):
    """The CSV text of rows (dicts with these fields, or lists in their order), every cell
    neutralised; a field a dict lacks is empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180; a CR in a cell is quoted
    writer.writerow([neutral(field) for field in fields])
    for row in rows:
        cells = [row.get(field, "") for field in fields] if isinstance(row, dict) else row
        writer.writerow([neutral(cell) for cell in cells])
    return buffer.getvalue()


def write_csv(path, fields, rows):
    """Write a table atomically (readers see the old or the new file, never half of one)."""
    write_atomic(path, csv_text(fields, rows))


def parse_csv(text, name="table"):
    """(fields, [dict]) of a CSV text the kit wrote, every cell restored."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return (), []
        fields = tuple(restore(cell) for cell in header)
        rows = []
        for number, cells in enumerate(reader, 2):
            if len(cells) != len(fields):
                raise TableError(f"{name}, line {number}: {len(cells)} cells, not {len(fields)}")
            rows.append(dict(zip(fields, (restore(cell) for cell in cells))))
    except csv.Error as error:
        raise TableError(f"{name} is not a CSV table ({error})") from None
    return fields, rows


def read_csv(path):
    """(fields, [dict]) of a CSV file the kit wrote; TableError says why it cannot be one."""
    path = Path(path)
    too_large = f"{path} is larger than any table the grader writes"
    data = read_bounded(path, MAX_BYTES, TableError, too_large)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TableError(f"{path} is not UTF-8 text") from None
    return parse_csv(text, str(path))
