"""The HTML pages the grader writes (report.html, feedback pages): one shell, one style sheet.

A page is one self-contained file: its style sheet inline, no script, no font, image or
link that leaves the file (the class report links to the feedback pages beside it). Every
text goes through ``esc`` (html.escape, quotes included) before it is put into a page:
student ids, names, reasons, diagnoses and code come from students.
"""

import html
from urllib.parse import quote

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2329;
  margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; }
h1 { font-size: 1.6em; margin: 24px 0 4px; }
h1 code { font-size: 0.85em; }
h2 { font-size: 1.25em; margin: 32px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
p.lead { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre, code { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 6px 8px; margin: 4px 0;
  white-space: pre-wrap; word-break: break-word; }
td pre { border: 0; padding: 0; margin: 0; background: none; }
.badge { display: inline-block; min-width: 3.2em; text-align: center; font-weight: 600;
  border-radius: 4px; padding: 0 6px; color: #fff; }
.badge.pass { background: #1a7f37; }
.badge.fail { background: #cf222e; }
.hint { color: #57606a; }
.muted { color: #57606a; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.figures svg { max-width: 100%; height: auto; }
.stats td:first-child { font-weight: 600; }
details.pair { margin: 6px 0; }
details.pair summary { cursor: pointer; }
table.checks, table.side-by-side { width: 100%; }
table.checks td:first-child { white-space: nowrap; }
table.side-by-side td.where { color: #57606a; white-space: nowrap; width: 1%; font-size: 0.85em; }
ol.diagnoses li { margin-bottom: 6px; }
td.reason { max-width: 420px; font-size: 0.92em; }
"""


def esc(text):
    """Any text as HTML text or attribute value (quotes escaped too)."""
    return html.escape("" if text is None else str(text), quote=True)


def href(path):
    """A relative link to a file the grader wrote: every character but / percent-encoded."""
    return esc(quote(str(path), safe="/"))


def page(title, body):
    """A whole HTML page: the title, the style sheet, then ``body`` (HTML made with ``esc``)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def table(headers, rows, ident="", numeric=(), cls=""):
    """A table of already-escaped cells (``id`` ``ident``, ``class`` ``cls``); the columns
    whose index is in ``numeric`` right-aligned."""
    head = "".join(
        f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    attribute = f' id="{esc(ident)}"' if ident else ""
    attribute += f' class="{esc(cls)}"' if cls else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def badge(passed):
    """PASS or FAIL, once."""
    word = "PASS" if passed else "FAIL"
    return f'<span class="badge {word.lower()}">{word}</span>'
