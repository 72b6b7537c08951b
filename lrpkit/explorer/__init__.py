"""The interactive gamma explorer: LRP heatmaps of VGG-16 redrawn as you move gamma per block.

``explore(model, X)`` as the last line of a notebook cell shows the widgets (``widget.py``);
``Engine(model, X).relevance(method, c, gammas)`` is the explicit, cached LRP behind them
(``engine.py``), which Exercise 5's notebook uses for its heatmaps. This file only gathers
their names: ``from lrpkit.explorer import explore``. Module constants are read where they
are defined (to change the curve button's steps, set ``lrpkit.explorer.widget.CURVE_STEPS``).
"""

from lrpkit.explorer.engine import GXI, LRP, METHODS, Engine
from lrpkit.explorer.widget import (
    CURVE_SEED,
    CURVE_SIZE,
    CURVE_STEPS,
    EXPONENTS,
    GAP,
    Explorer,
    explore,
    heatmap,
    notebook_curve,
    png,
    whose,
)

__all__ = [
    "CURVE_SEED",
    "CURVE_SIZE",
    "CURVE_STEPS",
    "EXPONENTS",
    "GAP",
    "GXI",
    "LRP",
    "METHODS",
    "Engine",
    "Explorer",
    "explore",
    "heatmap",
    "notebook_curve",
    "png",
    "whose",
]
