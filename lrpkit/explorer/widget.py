"""The gamma explorer's widgets: sliders, method and class choice, heatmap, perturbation curve.

Students and instructors call ``explore(model, X)`` as the last line of a notebook cell. It
shows five log-scale sliders (gamma of conv blocks 1-5, starting at the sheet's values), a
method choice (Gradient x Input or LRP), a class choice (castle and the model's top-5), the
image beside the heatmap, and the relevance sum at the top of every block. The relevance
comes from the engine (``engine.py``); this module only draws it (without matplotlib, so a
redraw stays fast) and, on request, plots the perturbation curve of a function it is given
(Exercise 5's ``perturbation_curve``): it computes no relevance and no curve of its own.
"""

import html
import inspect
import io
import math
import time

import cv2
import ipywidgets as widgets
import numpy
import torch

import utils
from lrpkit.explorer.engine import GXI, LRP, METHODS, Engine
from lrpkit.sheet import CLASS as CASTLE
from lrpkit.sheet import GAMMAS

#: slider range, as powers of ten: gamma from 1e-4 (almost LRP-0) to 10 (almost z+).
EXPONENTS = (-4.0, 1.0)


#: the perturbation curve the button draws: regions of CURVE_SIZE pixels, CURVE_STEPS steps
CURVE_SIZE, CURVE_STEPS, CURVE_SEED = 14, 32, 0


def notebook_curve():
    """The running notebook's ``perturbation_curve`` (Exercise 5), or None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    found = getattr(shell, "user_ns", {}).get("perturbation_curve")
    return found if callable(found) else None


def whose(curve):
    """Whose perturbation curve a function draws, as the explorer says it."""
    module, name = getattr(curve, "__module__", None), getattr(curve, "__qualname__", "")
    if module == "__main__":
        return f"your {getattr(curve, '__name__', 'function')} (defined in this notebook)"
    return f"{module}.{name}" if module and name else repr(curve)


def heatmap(R):
    """utils.visualize's heatmap as H x W x 3 RGB bytes, without matplotlib.

    The channel sum of R, colour limits symmetric at the 99.5th percentile of |R|, colour
    map 'bwr' (blue negative, white zero, red positive) with 256 levels.
    """
    if torch.is_tensor(R):
        R = R.tolist() if R.requires_grad else R.cpu()
    R = numpy.asarray(R, float)
    R = R.reshape(-1, *R.shape[-2:]).sum(0)
    lim = numpy.percentile(numpy.abs(R), 99.5) or numpy.abs(R).max() or 1.0
    level = numpy.clip(((R + lim) / (2 * lim) * 256).astype(numpy.int64), 0, 255)
    return _BWR[level]


def _bwr():
    """matplotlib's 'bwr': blue (0, 0, 1) to white to red (1, 0, 0), 256 levels, as bytes."""
    x = numpy.linspace(0, 1, 256)
    rgb = numpy.stack([numpy.minimum(1, 2 * x), 1 - abs(2 * x - 1), numpy.minimum(1, 2 - 2 * x)])
    return numpy.round(rgb.T * 255).astype(numpy.uint8)


_BWR = _bwr()
GAP = 12  # white pixels between the image and the heatmap


def png(*panels):
    """RGB byte arrays side by side, GAP white pixels apart, as PNG bytes."""
    gap = numpy.full((panels[0].shape[0], GAP, 3), 255, numpy.uint8)
    row = numpy.concatenate([p for panel in panels for p in (gap, panel)][1:], axis=1)
    ok, encoded = cv2.imencode(".png", numpy.ascontiguousarray(row[..., ::-1]))  # BGR
    if not ok:
        raise RuntimeError("OpenCV could not encode the heatmap as PNG")
    return encoded.tobytes()


class Explorer:
    """The widgets and their wiring; ``widget`` is what a notebook cell shows.

    Programmatic use (tests, demos, benchmarks): set ``sliders[k - 1].value``,
    ``method.value`` or ``classes.value`` (or several at once with ``set``) and read
    ``relevance`` (the relevance shown), ``sums``, ``png`` and ``engine.counts``;
    ``curve_button.click()`` draws the perturbation curve (``curve`` holds its scores,
    ``whose`` says whose function drew it); without a curve function, ``curve_button`` is
    None.
    """

    def __init__(self, model, X, c=CASTLE, gammas=None, curve=None):
        gammas = GAMMAS if gammas is None else tuple(gammas)
        if len(gammas) != 5 or not all(math.isfinite(g) and g > 0 for g in gammas):
            raise ValueError(f"gammas: five positive numbers, one per conv block; got {gammas}")
        self.model = model
        self.engine = Engine(model, X)
        image = (self.engine.X.cpu().double() * utils.STD + utils.MEAN)[0].permute(1, 2, 0)
        self.image = image.clamp(0, 1).numpy()
        self._image_rgb = numpy.round(self.image * 255).astype(numpy.uint8)
        top5 = self.engine.logits[0].topk(5).indices.tolist()
        classes = [int(c)] + [i for i in top5 if i != int(c)]
        low, high = EXPONENTS
        self.sliders = [
            widgets.FloatLogSlider(
                value=g,
                base=10,
                min=min(low, math.floor(math.log10(g))),
                max=max(high, math.ceil(math.log10(g))),
                step=0.25,
                continuous_update=False,
                readout_format=".3g",
                description=f"block {k} γ",
            )
            for k, g in enumerate(gammas, 1)
        ]
        self.method = widgets.ToggleButtons(options=METHODS, value=LRP)
        self.classes = widgets.Dropdown(
            options=[(f"{utils.CLASSES[i]} ({i})", i) for i in classes],
            value=int(c),
            description="class",
        )
        width = f"{2 * self.image.shape[1] + GAP}px"
        self.title = widgets.HTML(layout=widgets.Layout(width=width))
        self.view = widgets.Image(format="png")
        self.table = widgets.HTML()
        self.status = widgets.HTML()
        # the perturbation curve: the function passed, else the notebook's perturbation_curve
        # (Exercise 5); without either, no curve button at all
        self._curve_fn = curve if curve is not None else notebook_curve()
        self.whose = whose(self._curve_fn) if self._curve_fn is not None else None
        self.curve = self.curve_button = None
        self._random = {}  # class -> the random-order curve (the same for every heatmap)
        for w in (*self.sliders, self.method, self.classes):
            w.observe(self._update, names="value")
        picture = [widgets.VBox([self.title, self.view, self.status])]
        rows = [
            widgets.HBox([self.method, self.classes]),
            widgets.HBox([widgets.VBox(self.sliders), self.table]),
        ]
        if self._curve_fn is not None:
            self.curve_button = widgets.Button(
                description="perturbation curve",
                tooltip=(
                    f"replace the {CURVE_STEPS} most relevant {CURVE_SIZE} x {CURVE_SIZE} "
                    f"regions one by one and plot the class score, with {self.whose}"
                ),
            )
            self.curve_button.on_click(lambda button: self.draw_curve())
            self.progress = widgets.IntProgress(value=0, min=0, max=100, description="curve")
            self.curve_note = widgets.HTML(f"<small>{html.escape(self._by())}</small>")
            # hidden until a curve is drawn (an empty image shows as a broken one)
            self.curve_view = widgets.Image(format="png", layout=widgets.Layout(display="none"))
            picture.append(widgets.VBox([self.curve_view]))
            rows += [
                widgets.HBox(picture),
                widgets.HBox([self.curve_button, self.progress, self.curve_note]),
            ]
        else:
            rows.append(widgets.HBox(picture))
        self.widget = widgets.VBox(rows)
        self.widget.explorer = self
        self._quiet = False
        self._update()

    @property
    def gammas(self):
        return tuple(s.value for s in self.sliders)

    def set(self, gammas=None, method=None, c=None):
        """Set several widgets at once (gammas per block 1-5, method, class), then redraw once."""
        self._quiet = True
        try:
            for slider, gamma in zip(self.sliders, gammas or ()):
                slider.value = gamma
            self.method.value = method or self.method.value
            self.classes.value = self.classes.value if c is None else int(c)
        finally:
            self._quiet = False
        self._update()

    def _update(self, change=None):
        if self._quiet:
            return
        method, c = self.method.value, self.classes.value
        for s in self.sliders:
            s.disabled = method == GXI  # Gradient x Input has no gamma
        start = time.perf_counter()
        self.relevance, changed = self.engine.relevance(method, c, self.gammas)
        ms = 1000 * (time.perf_counter() - start)
        self.sums = self.engine.sums(method, c)
        self.png = self.render()
        self.view.value = self.png
        half = f"width:{self.image.shape[1] + GAP // 2}px;text-align:center"
        name = html.escape(f"{method}, {utils.CLASSES[c]} ({c})")
        cells = "".join(f"<b style='{half}'>{text}</b>" for text in ("image", name))
        self.title.value = f"<div style='display:flex'>{cells}</div>"
        self.table.value = _table(self.sums)
        done = ", ".join(map(str, changed)) if changed else "none (cached)"
        self.status.value = f"<small>recomputed blocks: {done} in {ms:.0f} ms</small>"
        if self.curve is not None:  # drawn for another setting: press the button again
            self.curve, self.curve_view.value, self.progress.value = None, b"", 0
            self.curve_view.layout.display = "none"
            self.curve_note.value = (
                f"<small>the curve was for the previous setting; {html.escape(self._by())}</small>"
            )

    def _by(self):
        return f"perturbation curve by {self.whose}"

    def render(self):
        """The image beside the heatmap of ``relevance``, as PNG bytes (what a redraw shows)."""
        return png(self._image_rgb, heatmap(self.relevance))

    def _scores(self, R, c, part, parts):
        """One perturbation curve of R (f_c after k = 0..CURVE_STEPS replaced regions)."""
        X, done = self.engine.X, part * 100 // parts

        def progress(k, total):
            self.progress.value = done + k * 100 // (total * parts)

        args = (self.model, X, R, c, CURVE_SIZE, CURVE_STEPS, CURVE_SEED)
        try:
            takes = "progress" in inspect.signature(self._curve_fn).parameters
        except (TypeError, ValueError):  # no signature to read
            takes = False
        kwargs = {"progress": progress} if takes else {}
        scores = self._curve_fn(*args, **kwargs)
        self.progress.value = (part + 1) * 100 // parts
        scores = scores.tolist() if torch.is_tensor(scores) else scores  # any autograd graph off
        return torch.tensor(scores, dtype=torch.float64).reshape(-1)

    def draw_curve(self):
        """The perturbation curve of the heatmap on screen, beside the random order's (None
        when there is no curve function, or when it raised: the note beside the button then
        says what it raised)."""
        if self._curve_fn is None:
            return None
        c, R = self.classes.value, self.relevance
        self.curve_note.value = "<small>computing ...</small>"
        self.progress.value = 0
        start = time.perf_counter()
        parts = 1 if c in self._random else 2
        try:
            self.curve = self._scores(R, c, 0, parts)
            if c not in self._random:
                noise = torch.randn(
                    R.shape, generator=torch.Generator().manual_seed(1), dtype=R.dtype
                )
                self._random[c] = self._scores(noise, c, 1, 2)
        except Exception as error:  # an unfinished or wrong perturbation_curve: say so here
            self.curve = None
            text = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            self.curve_note.value = (
                f"<small>{html.escape(self._by())} raised {html.escape(text)}</small>"
            )
            return None
        seconds = time.perf_counter() - start
        self.curve_view.value = _curve_png(self.curve, self._random[c], self.method.value, c)
        self.curve_view.layout.display = None
        aopc = lambda f: float((f[0] - f).mean())
        self.curve_note.value = (
            f"<small>AOPC {aopc(self.curve):.3g} (random order {aopc(self._random[c]):.3g}); "
            f"{seconds:.1f} s; {html.escape(self._by())}</small>"
        )
        return self.curve


def _curve_png(scores, random, method, c):
    """The perturbation curve plotted (matplotlib: drawn when asked, not on every redraw)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6, 3.2), dpi=80)
    ax = fig.subplots()
    ax.plot(scores.numpy(), marker=".", label=method)
    ax.plot(random.numpy(), color="grey", linestyle="--", label="random order")
    ax.set_xlabel(f"{CURVE_SIZE} x {CURVE_SIZE} regions replaced")
    ax.set_ylabel(f"logit of {utils.CLASSES[c]} ({c})")
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _table(sums):
    rows = [("logit f<sub>c</sub>", sums["logit"])]
    rows += [(f"ΣR at the top of block {k}", sums[k]) for k in range(5, 0, -1)]
    rows += [("ΣR on the pixels", sums[0])]
    cells = "".join(
        f"<tr><td>{name}&emsp;</td><td align='right'>{v:.4g}</td></tr>" for name, v in rows
    )
    return f"<table>{cells}</table>"


def explore(model, X, c=CASTLE, gammas=None, curve=None):
    """Widgets to explore LRP-gamma per VGG-16 conv block (last line of a notebook cell).

    Parameters
    ----------
    model : torchvision VGG-16 in eval mode (float32 or float64).
    X : the normalised image, 1 x 3 x 224 x 224.
    c : the class explained first (default 483, castle); the model's top-5 are offered too.
    gammas : starting gamma per block 1-5 (default: the sheet's, 1, 10^-0.5, ..., 10^-2).
    curve : a ``perturbation_curve(model, X, R, c, size, steps, seed)`` (Exercise 5's) for
        the perturbation-curve button; by default the notebook's own ``perturbation_curve``
        when it defines one, else there is no button. (Instructors: ``curve=
        lrpkit.reference.perturbation.one_curve``.)

    Returns
    -------
    ipywidgets.VBox, with the ``Explorer`` behind it as ``.explorer``.
    """
    return Explorer(model, X, c, gammas, curve).widget
