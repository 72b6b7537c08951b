"""The class report's plots as inline SVG (matplotlib, no pyplot, no display, no files).

Each plot is a ``matplotlib.figure.Figure`` drawn straight to SVG text: the text is drawn as
paths (no font is needed to view it), the file carries no date, and element ids are salted
with the plot's name, so two plots on one page never share an id and the same data gives
the same bytes. Only numbers and the kit's own labels are drawn, never students' text.
"""

import io

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

BLUE, GREEN = "#4c78a8", "#1a7f37"


def _svg(figure, name):
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": f"lrpkit-{name}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def histogram(values, name, xlabel, bins=20, low=None, high=None, color=BLUE):
    """A histogram of ``values`` (students per bin) as SVG text; ``low``/``high``: the range
    of the bins (default: the values' own)."""
    figure = Figure(figsize=(5.2, 2.8), dpi=100)
    axes = figure.add_subplot()
    values = [float(v) for v in values]
    low = min(values, default=0.0) if low is None else low
    high = max(values, default=1.0) if high is None else high
    if high <= low:
        high = low + 1.0
    axes.hist(values, bins=bins, range=(low, high), color=color, edgecolor="white")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("submissions")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure, name)


def bars(labels, shares, name, xlabel="share passed"):
    """Horizontal bars, one per label (the kit's check keys), of shares in [0, 1]."""
    height = 0.9 + 0.32 * max(1, len(labels))
    figure = Figure(figsize=(5.2, height), dpi=100)
    axes = figure.add_subplot()
    positions = range(len(labels))
    axes.barh(list(positions), [float(s) for s in shares], color=GREEN)
    axes.set_yticks(list(positions), labels)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlabel(xlabel)
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure, name)
