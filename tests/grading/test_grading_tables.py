"""The one CSV writer (lrpkit.grading.results.tables): formulas neutralised, everything
round-trips."""

import csv
import io

import pytest

from lrpkit.grading.results.tables import (
    TableError,
    csv_text,
    neutral,
    parse_csv,
    read_csv,
    restore,
    write_csv,
)

HOSTILE = [
    '=HYPERLINK("x")',
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\tTAB",
    "\rCR",
    "'=already quoted",
    "'",
]
HARMLESS = ["ann", "a=b", "O'Brien", "25", "-3", "+1.5", "-0.25", "1e3", "", " =1", "x\n=y"]


@pytest.mark.parametrize("cell", HOSTILE)
def test_a_formula_is_neutralised(cell):
    written = neutral(cell)
    assert written.startswith("'") and written[1:] == cell
    assert restore(written) == cell


@pytest.mark.parametrize("cell", HARMLESS)
def test_plain_text_and_numbers_are_written_as_they_are(cell):
    assert neutral(cell) == cell
    assert restore(neutral(cell)) == cell


def test_a_table_round_trips_and_is_written_again_byte_identically(tmp_path):
    fields = ["student", "=name", "total"]
    rows = [
        {"student": cell, "=name": other, "total": "12.5"}
        for cell, other in zip(HOSTILE + HARMLESS, reversed(HOSTILE + HARMLESS))
    ]
    write_csv(tmp_path / "t.csv", fields, rows)
    text = (tmp_path / "t.csv").read_bytes().decode("utf-8")
    # what a spreadsheet reads: no cell starts with a formula's first character (numbers do)
    numbers = {"-3", "+1.5", "-0.25"}
    for cells in csv.reader(io.StringIO(text, newline="")):
        for cell in cells:
            assert cell in numbers or not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    read_fields, read_rows = read_csv(tmp_path / "t.csv")
    assert (list(read_fields), read_rows) == (fields, rows)
    assert csv_text(read_fields, read_rows) == text


def test_what_is_not_one_of_the_kits_tables_is_refused(tmp_path):
    (tmp_path / "latin1.csv").write_bytes("student\nJos\xe9\n".encode("latin-1"))
    with pytest.raises(TableError, match="not UTF-8"):
        read_csv(tmp_path / "latin1.csv")
    with pytest.raises(TableError, match="line 3: 1 cells, not 2"):
        parse_csv("a,b\n1,2\n3\n")
    with pytest.raises(TableError, match="No such file"):
        read_csv(tmp_path / "missing.csv")
    assert parse_csv("") == ((), [])
