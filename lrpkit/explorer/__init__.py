"""Interactive per-block gamma explorer: LRP heatmaps of VGG-16 redrawn as you move gamma.

Students and instructors call ``explore(model, X)`` as the last line of a notebook cell. It
shows five log-scale sliders (gamma of conv blocks 1-5, starting at the sheet's values), a
method choice (Gradient x Input or LRP), a class choice (castle and the model's top-5), the
image beside the heatmap, and the relevance sum at the top of every block.

The engine is an explicit, layer-by-layer LRP (the four steps of the LRP overview paper):
zp_k = sum_j a_j rho(w_jk) + stabiliser; s_k = R_k / zp_k; c_j = sum_k rho(w_jk) s_k;
R_j = a_j c_j. It uses no autograd, and it is fast because almost everything is cached:

- one forward pass per image stores, for every convolution, its output z and
  z_plus = conv(a, w+) + b+. LRP-gamma's denominator is then zp = z + gamma * z_plus, so a
  new gamma needs no forward convolution, only elementwise work and one transposed
  convolution per layer;
- the message c arriving at the top of every block is kept per class, so a gamma change
  in block k recomputes blocks k, k-1, ..., 1 only: at most one backward pass over them.

Gradient x Input runs on the same engine with LRP-0 everywhere (z rule with the bias in the
denominator), which for a ReLU network gives exactly the gradient times the input.
"""

import html
import inspect
import io
import math
import time
from collections import Counter

import cv2
import ipywidgets as widgets
import numpy
import torch
import torch.nn.functional as F

import utils
from lrpkit.sheet import BLOCKS, GAMMAS, stabilize
from lrpkit.sheet import CLASS as CASTLE

GXI, LRP = "Gradient × Input", "LRP"
METHODS = (GXI, LRP)
#: slider range, as powers of ten: gamma from 1e-4 (almost LRP-0) to 10 (almost z+).
EXPONENTS = (-4.0, 1.0)


def _last(t):
    """t in the channels-last memory layout (the same values)."""
    return t.contiguous(memory_format=torch.channels_last)


class _Conv:
    """A convolution and the ReLU after it: cached forward state and the LRP rules.

    Going down, each rule maps the message c_k at the ReLU's output (R_k = a_k c_k) to the
    message at the convolution's input, c_j = sum_k rho(w_jk) s_k with s_k = R_k / zp_k.
    s_k = c_k * (a_k / zp_k) and the ratio a_k / zp_k is cached: it changes with gamma only.
    """

    def __init__(self, index, conv, a, L, H):
        self.index, self.conv = index, conv
        w, b = conv.weight, conv.bias
        # the forward pass in the model's own memory layout, rounded as the model rounds it
        # (ReLU masks and max-pooling winners as in autograd); what goes down is kept in the
        # channels-last layout, on which the CPU's convolutions are faster.
        self.out = self._forward(a, w, b)
        self.z = _last(self.out)
        # output_padding that gives the transposed convolution the input's size back
        self.pad = tuple(
            n - ((m - 1) * s - 2 * p + d * (k - 1) + 1)
            for n, m, s, p, d, k in zip(
                a.shape[-2:],
                self.z.shape[-2:],
                conv.stride,
                conv.padding,
                conv.dilation,
                conv.kernel_size,
            )
        )
        # With stride 1, going down is a plain convolution with the kernel flipped and its
        # channels swapped, padded by d (k - 1) - p: faster on the CPU than the transposed one.
        self.flip_pad = tuple(
            d * (k - 1) - p for d, k, p in zip(conv.dilation, conv.kernel_size, conv.padding)
        )
        self.flip = (
            conv.stride == (1, 1)
            and conv.groups == 1
            and not any(self.pad)
            and min(self.flip_pad) >= 0
        )
        self.w = self._down(w)
        if index == 0:
            # z^B rule: the lowest and highest pixel values L, H bound what each input can add.
            zB = (
                self.out
                - self._forward(L, w.clamp(min=0), b.clamp(min=0))
                - self._forward(H, w.clamp(max=0), b.clamp(max=0))
            )
            self.ratio = _last(self.out.clamp(min=0) / stabilize(zB))
            # x, -l and -h times w, w+ and w- in one convolution going down
            self.wB = self._down(torch.cat([w, -w.clamp(min=0), -w.clamp(max=0)], dim=1))
            self.X, self.XLH = _last(a), _last(torch.cat([a, L, H], dim=1))
        else:
            # LRP-gamma's zp = z + gamma * z_plus for every gamma, from this one convolution.
            self.z_plus = _last(self._forward(a, w.clamp(min=0), b.clamp(min=0)))
        self._ratio = None  # (gamma, a / zp) for the last gamma used

    def _forward(self, a, w, b):
        c = self.conv
        return F.conv2d(a, w, b, c.stride, c.padding, c.dilation, c.groups)

    def _down(self, w):
        """A weight in the form _backward takes it (flipped, channels swapped, when it can)."""
        if not self.flip:
            return w
        return _last(w.flip(2, 3).transpose(0, 1))

    def _backward(self, s, w):
        """c_j = sum_k w_jk s_k: the transposed convolution (gradient with respect to the input)."""
        c = self.conv
        if self.flip:
            return F.conv2d(s, w, None, 1, self.flip_pad, c.dilation)
        return F.conv_transpose2d(s, w, None, c.stride, c.padding, self.pad, c.groups, c.dilation)

    def lrp0(self, c):
        """LRP-0, z_k = sum_j a_j w_jk + b_k: s_k = c_k where a_k > 0 (Gradient x Input)."""
        # a_k / z_k is 1 where the ReLU lets z through, else 0: no division needed.
        c = self._backward(torch.where(self.z > 0, c, 0), self.w)
        return self.X * c if self.index == 0 else c  # on the pixels: R_i = x_i c_i

    def lrp_gamma(self, c, gamma):
        """LRP-gamma: zp_k = sum_j a_j (w_jk + gamma w_jk^+) + b_k + gamma b_k^+.

        The ratio a / zp is kept for the last gamma (a block below a changed one reuses it);
        the weights w + gamma w+ are made anew on each call, elementwise and cheap beside the
        convolution, and neither they nor w+ are kept (2 x 59 MB for VGG-16)."""
        if self._ratio is None or self._ratio[0] != gamma:
            zp = stabilize(torch.add(self.z, self.z_plus, alpha=gamma))
            self._ratio = (gamma, self.z.clamp(min=0).div_(zp))
        w = torch.add(self.w, self.w.clamp(min=0), alpha=gamma)  # w+ of the flipped w: the same
        return self._backward(c * self._ratio[1], w)

    def zbox(self, c):
        """z^B: R_i = sum_j (x_i w_ij - l_i w_ij^+ - h_i w_ij^-) R_j / zB_j on the pixels."""
        R = self.XLH * self._backward(c * self.ratio, self.wB)
        return R[:, 0:3] + R[:, 3:6] + R[:, 6:9]


class _Pool:
    """Max pooling: relevance goes back to the winning input (winner takes all)."""

    def __init__(self, pool, a):
        self.pool, self.shape = pool, a.shape
        self.a, self.indices = F.max_pool2d(
            a,
            pool.kernel_size,
            pool.stride,
            pool.padding,
            pool.dilation,
            pool.ceil_mode,
            return_indices=True,
        )

    def route(self, c):
        # R = a c and the winner's a is the same on both sides, so c is routed like R.
        p = self.pool
        return F.max_unpool2d(c, self.indices, p.kernel_size, p.stride, p.padding, self.shape[-2:])


class Engine:
    """Cached explicit LRP of one image through VGG-16 (no autograd involved).

    ``relevance(method, c, gammas)`` returns the pixel relevance and recomputes only what
    changed since the last call for the same method and class. ``counts`` counts forward
    passes (``"forward"``), dense-head passes (``"head"``) and block recomputations (1-5).
    """

    def __init__(self, model, X):
        if model.training:
            raise ValueError("the model is in training mode (dropout on): call model.eval() first")
        if X.dim() != 4 or X.shape[0] != 1 or X.shape[1] != 3:
            raise ValueError(f"X must be one image, 1 x 3 x H x W; got shape {tuple(X.shape)}")
        p = next(model.parameters())
        self.model = model
        self.counts = Counter()
        self._cache = {}
        with torch.no_grad():  # a copy that is not part of any autograd graph
            self.X = X.to(device=p.device, dtype=p.dtype).clone()
            self._forward()

    @torch.no_grad()
    def _forward(self):
        """The one forward pass: caches every convolution's z and z_plus, every pool's winners."""
        self.counts["forward"] += 1
        L, H = utils.bounds(self.X)
        a, blocks, steps = self.X, [], []
        for i, layer in enumerate(self.model.features):
            if isinstance(layer, torch.nn.Conv2d):
                if not isinstance(self.model.features[i + 1], torch.nn.ReLU):
                    raise ValueError(f"features[{i}] is not followed by a ReLU; expected VGG-16")
                conv = _Conv(i, layer, a, L, H)
                steps.append(conv)
                a, conv.out = conv.out, None
            elif isinstance(layer, torch.nn.ReLU):
                a = F.relu(a)  # the ReLU is part of the _Conv before it
            elif isinstance(layer, torch.nn.MaxPool2d):
                pool = _Pool(layer, a)
                blocks.append([*steps, pool])
                steps, a = [], pool.a
            else:
                raise ValueError(f"features[{i}] is a {type(layer).__name__}; expected VGG-16")
        convs = tuple(tuple(s.index for s in b if isinstance(s, _Conv)) for b in blocks)
        if steps or convs != BLOCKS:
            raise ValueError("the explorer needs torchvision's VGG-16 (conv blocks 1-5)")
        self.blocks = dict(enumerate(blocks, 1))
        self.top = a
        self.logits = self._head_forward(a)

    def _head_forward(self, a):
        """The dense head, keeping what its backward pass needs."""
        pooled = self.model.avgpool(a)
        if pooled.shape != a.shape:
            raise ValueError(f"explore needs a 224 x 224 image; features gave {tuple(a.shape)}")
        self._head = []
        a = torch.flatten(pooled, 1)
        for layer in self.model.classifier:
            if isinstance(layer, torch.nn.Linear):
                self._head.append(layer)
                a = layer(a)
            elif isinstance(layer, torch.nn.ReLU):
                self._head.append(a > 0)
                a = F.relu(a)
            elif not isinstance(layer, torch.nn.Dropout):  # dropout is off in eval mode
                raise ValueError(f"unexpected {type(layer).__name__} in model.classifier")
        return a

    @torch.no_grad()
    def _head_message(self, c):
        """Dense layers left intact: the message at the output of ``features`` is df_c/da."""
        self.counts["head"] += 1
        msg = None
        for step in reversed(self._head):
            if isinstance(step, torch.nn.Linear):
                msg = step.weight[c][None] if msg is None else msg @ step.weight
            else:
                msg = msg * step
        return msg.reshape(self.top.shape)

    @torch.no_grad()
    def _block(self, k, msg, method, gamma):
        """Message at the input of block k (relevance, for block 1) from the one at its top."""
        self.counts[k] += 1
        for step in reversed(self.blocks[k]):
            if isinstance(step, _Pool):
                msg = step.route(msg)
            elif method == GXI:
                msg = step.lrp0(msg)
            elif step.index == 0:
                msg = step.zbox(msg)
            else:
                msg = step.lrp_gamma(msg, gamma)
        return msg

    def relevance(self, method=LRP, c=CASTLE, gammas=GAMMAS):
        """Pixel relevance of class c (1 x 3 x H x W), recomputing only blocks whose input changed.

        Returns the relevance and the blocks recomputed (highest first).
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {method!r}")
        gammas = tuple(float(g) for g in gammas) if method == LRP else (None,) * 5
        if len(gammas) != 5:
            raise ValueError(f"need one gamma per conv block 1-5; got {len(gammas)}")
        c = int(c)
        state = self._cache.get((method, c))
        if state is None:
            # msg[k]: the message at the top of block k; msg[0]: the pixel relevance
            state = self._cache[(method, c)] = {"gammas": (), "msg": {5: self._head_message(c)}}
        # Block k's input depends on the gammas of blocks k and above only.
        changed = [k for k in range(1, 6) if state["gammas"][k - 1 : k] != gammas[k - 1 : k]]
        msg = state["msg"]
        for k in range(max(changed, default=0), 0, -1):
            msg[k - 1] = self._block(k, msg[k], method, gammas[k - 1])
        state["gammas"] = gammas
        msg[0] = msg[0].contiguous()
        return msg[0], changed[::-1]

    def sums(self, method=LRP, c=CASTLE):
        """Logit f_c and the relevance sums at the top of blocks 5-1 (R = a c) and on the pixels."""
        msg = self._cache[(method, int(c))]["msg"]
        sums = {"logit": float(self.logits[0, c])}
        sums.update({k: float((self.blocks[k][-1].a * msg[k]).sum()) for k in range(5, 0, -1)})
        sums[0] = float(msg[0].sum())
        return sums


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
