"""Region perturbation curves and AOPC (Samek et al. 2017): is an explanation faithful?

Instructors, the tests, the expected results of Exercise 5's check (``lrpkit.reference.references``)
and the benchmark use this module; it is the solution of Exercise 5 and never ships to
students (an instructor hands the explorer ``curve=one_curve``). Reference: W. Samek, A. Binder,
G. Montavon, S. Lapuschkin, K.-R. Müller, "Evaluating the visualization of what a deep neural
network has learned", IEEE TNNLS 28(11), 2017.

The image is cut into non-overlapping ``size`` x ``size`` regions, ranked by their summed
relevance (all colour channels), most relevant first (MoRF). Step k replaces the k most
relevant regions by a baseline (perturbations accumulate: x^(k) is x^(k-1) with region r_k
replaced); the curve is the class score f_c(x^(k)) for k = 0..steps, and

    AOPC = 1/(L+1) sum_{k=0..L} (f(x^(0)) - f(x^(k))),  averaged over images.

Baselines: ``"uniform"`` noise over the pixel range as in the paper, seeded,
``L + u * (H - L)`` with ``u = torch.rand(X.shape, generator=torch.Generator()
.manual_seed(seed), dtype=X.dtype)`` and L, H the normalised pixel values 0 and 1;
``"mean"``, each channel's mean over the image; ``"blur"``, the image under a Gaussian blur
(sigma = size / 2); or any tensor shaped like X.

Two engines give the same curve. Any model: the perturbed images are built with one mask
per step and classified in batches. torchvision's VGG (convolutions, ReLUs and max-pooling in
``features``): x^(k) differs from x^(k-1) in one region only, so each layer recomputes, for all
steps in one batched call, only the window that region can reach; once that window covers
half a feature map, the remaining layers run on full maps of all steps in batches.
"""

import math

import torch
import torch.nn.functional as F

import utils

BASELINES = ("uniform", "mean", "blur")
#: the incremental engine switches to full feature maps once a window covers this share.
FULL = 0.5


def regions(R, size):
    """Summed relevance of each size x size region, row by row: N x (H/size * W/size)."""
    N, _, H, W = R.shape
    if H % size or W % size:
        raise ValueError(f"region size {size} does not divide the image size {H} x {W}")
    sums = R.detach().sum(1).reshape(N, H // size, size, W // size, size).sum((2, 4))
    return sums.reshape(N, -1)


def ranking(R, size):
    """Region indices, most relevant first (ties: lower index first): N x regions."""
    return regions(R, size).sort(dim=1, descending=True, stable=True).indices


def baseline_image(X, kind="uniform", seed=0, size=14):
    """What perturbed regions are replaced with, shaped like X (see the module docstring)."""
    if torch.is_tensor(kind):
        if kind.shape != X.shape:
            raise ValueError(f"baseline shape {tuple(kind.shape)} is not X's {tuple(X.shape)}")
        return kind.to(X)
    if kind == "uniform":
        u = torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)
        L, H = utils.bounds(X.detach().cpu())
        return (L + u * (H - L)).to(X.device)
    if kind == "mean":
        return X.detach().mean((2, 3), keepdim=True).expand_as(X).clone()
    if kind == "blur":
        return _blur(X.detach(), size / 2)
    raise ValueError(f"baseline must be one of {BASELINES} or a tensor; got {kind!r}")


def _blur(X, sigma):
    radius = min(math.ceil(3 * sigma), X.shape[-1] - 1, X.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=X.dtype, device=X.device)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = (g / g.sum()).repeat(X.shape[1], 1)
    X = F.pad(X, (radius,) * 4, mode="reflect")
    X = F.conv2d(X, g[:, None, :, None], groups=X.shape[1])  # along rows
    return F.conv2d(X, g[:, None, None, :], groups=X.shape[1])  # along columns


def _rects(order, size, width):
    """(top, bottom, left, right) pixel rectangle of each ranked region."""
    rows = width // size
    return [
        (i // rows * size, i // rows * size + size, i % rows * size, i % rows * size + size)
        for i in order.tolist()
    ]


def curve(
    model,
    X,
    R,
    c,
    size=14,
    steps=32,
    baseline="uniform",
    seed=0,
    batch=16,
    incremental=None,
    progress=None,
):
    """Class scores f_c(x^(k)), k = 0..steps, as the k most relevant regions are replaced.

    Parameters
    ----------
    model : classifier in eval mode; X : N x 3 x H x W input; R : relevance shaped like X.
    c : the class, one int or one per image.
    size : region side in pixels (must divide H and W); steps : regions replaced at the end.
    baseline : "uniform" (seeded by ``seed``), "mean", "blur" or a tensor shaped like X.
    batch : images per forward pass.
    incremental : True (VGG only), False (any model), None (VGG when possible).
    progress : called as progress(done, total) while it works.

    Returns
    -------
    N x (steps + 1) tensor of scores in X's dtype (no autograd graph).
    """
    if model.training:
        raise ValueError("the model is in training mode (dropout on): call model.eval() first")
    if X.dim() != 4 or R.shape != X.shape:
        raise ValueError(f"X must be N x C x H x W and R shaped like it; got {X.shape}, {R.shape}")
    order = ranking(R, size)
    if not 0 <= steps <= order.shape[1]:
        raise ValueError(f"steps must be between 0 and {order.shape[1]} regions; got {steps}")
    B = baseline_image(X, baseline, seed, size)
    classes = torch.as_tensor(c).reshape(-1).expand(X.shape[0]).tolist()
    vgg = _vgg_layers(model)
    if incremental and vgg is None:
        raise ValueError("the incremental engine needs a torchvision VGG")
    use = _Incremental(model, vgg) if (incremental is not False and vgg) else None
    report = progress or (lambda done, total: None)
    curves = []
    with torch.no_grad():
        for n in range(X.shape[0]):
            rects = _rects(order[n, :steps], size, X.shape[-1])
            tick = lambda done, total, n=n: report(n * total + done, X.shape[0] * total)
            if use is not None:
                scores = use.curve(X[n : n + 1], B[n : n + 1], rects, classes[n], batch, tick)
            else:
                scores = _batched(model, X[n : n + 1], B[n : n + 1], rects, classes[n], batch, tick)
            curves.append(scores)
    return torch.stack(curves)


def aopc(curves):
    """AOPC = 1/(L+1) sum_{k=0..L} (f(x^(0)) - f(x^(k))), averaged over the curves (rows)."""
    curves = torch.as_tensor(curves).reshape(-1, torch.as_tensor(curves).shape[-1])
    return float((curves[:, :1] - curves).mean(1).mean())


# ---------------------------------------------------------------------------
# any model: masks and batches
# ---------------------------------------------------------------------------


def _batched(model, x, b, rects, c, batch, tick):
    """Scores of x^(0..K) built from a map of each pixel's rank (its region's step)."""
    K = len(rects)
    step = torch.full(x.shape[-2:], K + 1, device=x.device)  # pixels never replaced
    for k, (top, bottom, left, right) in enumerate(rects, 1):
        step[top:bottom, left:right] = k
    scores = []
    for start in range(0, K + 1, batch):
        ks = torch.arange(start, min(start + batch, K + 1), device=x.device)
        images = torch.where(step <= ks[:, None, None, None], b, x)
        scores.append(model(images)[:, c])
        tick(min(start + batch, K + 1), K + 1)
    return torch.cat(scores)


# ---------------------------------------------------------------------------
# torchvision VGG: only what each region can reach, all steps batched per layer
# ---------------------------------------------------------------------------


def _vgg_layers(model):
    """model.features' layers when the incremental engine can run them, else None."""
    features = getattr(model, "features", None)
    if not isinstance(features, torch.nn.Sequential) or not hasattr(model, "classifier"):
        return None
    for layer in features:
        if isinstance(layer, torch.nn.Conv2d):
            plain = layer.stride == (1, 1) and layer.dilation == (1, 1) and layer.groups == 1
            if not plain or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
                return None
        elif isinstance(layer, torch.nn.MaxPool2d):
            k, s = layer.kernel_size, layer.stride
            if (k, s, layer.padding, layer.dilation, layer.ceil_mode) != (k, k, 0, 1, False):
                return None
            if not isinstance(k, int):
                return None
        elif not isinstance(layer, torch.nn.ReLU):
            return None
    return list(features)


def _span(a, b, layer, n_out):
    """Rows (or columns) [a, b) of a layer's input change: which of its outputs change."""
    if isinstance(layer, torch.nn.Conv2d):
        k, p = layer.kernel_size[0], layer.padding[0]
        return max(0, a - (k - 1 - p)), min(n_out, b + p)
    if isinstance(layer, torch.nn.MaxPool2d):
        k = layer.kernel_size
        return max(0, -(-(a - k + 1) // k)), min(n_out, (b - 1) // k + 1)
    return a, b  # ReLU


def _arrays(*tensors):
    """numpy views of CPU tensors (the same memory), else the tensors.

    The window loops make many small copies; torch runs each on all its threads and, on a
    busy machine, waits for them far longer than a copy takes. numpy copies on one.
    """
    if all(t.device.type == "cpu" for t in tensors):
        return tuple(t.numpy() for t in tensors)
    return tensors


class _Incremental:
    """Curves of torchvision's VGG: per layer, one batched call over the changed windows."""

    def __init__(self, model, layers):
        self.model, self.layers = model, layers

    def curve(self, x, b, rects, c, batch, tick):
        K = len(rects)
        total = len(self.layers) + 1
        # step k's window: (top, left) and values of x^(k) there; the same size for all k
        spans = [((t, bt), (lt, rt)) for t, bt, lt, rt in rects]
        size = (rects[0][1] - rects[0][0], rects[0][3] - rects[0][2]) if K else (0, 0)
        corners = [(t, lt) for t, _, lt, _ in rects]
        values = (
            torch.stack([b[0, :, t : t + size[0], lt : lt + size[1]] for t, lt in corners])
            if K
            else None
        )
        base = x
        for i, layer in enumerate(self.layers):
            H, W = base.shape[-2:]
            if K and size[0] * size[1] >= FULL * H * W:
                return self._finish(base, corners, values, size, i, c, batch, tick, total)
            out = self._full(layer, base)
            if K:
                spans, corners, values, size = self._windows(
                    layer, base, out.shape[-2:], spans, corners, values, size
                )
            base = out
            tick(i + 1, total)
        return self._finish(base, corners, values, size, len(self.layers), c, batch, tick, total)

    @staticmethod
    def _full(layer, a):
        if isinstance(layer, torch.nn.ReLU):
            return F.relu(a)
        return layer(a)

    def _windows(self, layer, base, out_hw, spans, corners, values, size):
        """The next layer's windows: spans that change, their fixed-size windows and values."""
        if isinstance(layer, torch.nn.ReLU):
            return spans, corners, F.relu(values), size
        spans = [tuple(_span(a, e, layer, n) for (a, e), n in zip(span, out_hw)) for span in spans]
        new = tuple(max(s[d][1] - s[d][0] for s in spans) for d in (0, 1))
        # windows inside the map, each holding its span: all the same size, so one batch
        starts = [tuple(min(s[d][0], out_hw[d] - new[d]) for d in (0, 1)) for s in spans]
        if isinstance(layer, torch.nn.Conv2d):
            k, p = layer.kernel_size[0], layer.padding[0]
            current = F.pad(base, (p, p, p, p))  # the conv's zero padding, once
            reach, scale = k - 1, 1
        else:  # max pooling: window u..u+n reads inputs u*k .. (u+n)*k
            current, reach, scale = base.clone(), 0, layer.kernel_size
            p = 0
        shape = (new[0] * scale + reach, new[1] * scale + reach)
        crops = base.new_empty((len(starts), base.shape[1], *shape))
        cur, dst, vals = _arrays(current[0], crops, values)
        for k, ((top, left), (r, q)) in enumerate(zip(corners, starts)):
            cur[:, top + p : top + p + size[0], left + p : left + p + size[1]] = vals[k]
            dst[k] = cur[:, r * scale : r * scale + shape[0], q * scale : q * scale + shape[1]]
        if isinstance(layer, torch.nn.Conv2d):
            out = F.conv2d(crops, layer.weight, layer.bias)
        else:
            out = F.max_pool2d(crops, layer.kernel_size)
        return spans, starts, out, new

    def _finish(self, base, corners, values, size, i, c, batch, tick, total):
        """Full maps of every step from here on: the rest of ``features``, then the head."""
        rest = self.layers[i:]
        maps = base.new_empty((1 + len(corners), *base.shape[1:]))
        maps[0] = base[0]
        if corners:
            cur, dst, vals = _arrays(base[0].clone(), maps, values)
            for k, (top, left) in enumerate(corners, 1):
                cur[:, top : top + size[0], left : left + size[1]] = vals[k - 1]
                dst[k] = cur
        pooled = []
        for start in range(0, len(maps), batch):
            a = maps[start : start + batch]
            for layer in rest:
                a = self._full(layer, a)
            pooled.append(torch.flatten(self.model.avgpool(a), 1))
        # the dense head on all steps at once: its 120M weights are read once, not per batch
        scores = self.model.classifier(torch.cat(pooled))[:, c]
        tick(total, total)
        return scores


def one_curve(model, X, R, c, size=14, steps=32, seed=0, progress=None):
    """The curve of one image (uniform noise) with the signature of Exercise 5's
    ``perturbation_curve(model, X, R, c, size, steps, seed)``: what an instructor hands the
    explorer as ``explore(model, X, curve=one_curve)`` (progress: its progress bar)."""
    return curve(model, X, R, c, size, steps, seed=seed, progress=progress)[0]


# ---------------------------------------------------------------------------
# Exercise 5's expected results (lrpkit.reference.references): the curve and typical mistakes
# ---------------------------------------------------------------------------

#: mistakes ``literal`` makes on request (lrpkit.selfcheck.faithfulness_checks names each one)
MISTAKES = ("lerf", "pixels", "single", "absolute", "fresh_noise", "unmapped")


def literal(model, x, R, c, size, steps, seed, mistake=None):
    """One image's model outputs (steps + 1 x classes) along its curve, built the literal way,
    one region at a time, or with a typical mistake (then classified in one batch).

    mistake: None, "lerf" (least relevant first), "pixels" (single pixels, not regions),
    "single" (no accumulation), "absolute" (ranked by |R|), "fresh_noise" (region k gets the
    k-th draw of noise), "unmapped" (u itself, not L + u (H - L)). The curve is column c of
    the outputs; their softmax's column c is the mistake of recording probabilities.
    """
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(x.shape, generator=gen, dtype=x.dtype)
    L, H = utils.bounds(x)
    B = u if mistake == "unmapped" else L + u * (H - L)
    size = 1 if mistake == "pixels" else size
    sums = regions(R.abs() if mistake == "absolute" else R, size)[0]
    order = sums.sort(descending=mistake != "lerf", stable=True).indices[:steps]
    current, images = x.clone(), [x.clone()]
    for k, (top, bottom, left, right) in enumerate(_rects(order, size, x.shape[-1]), 1):
        if mistake == "single":
            current = x.clone()
        if mistake == "fresh_noise" and k > 1:
            B = L + torch.rand(x.shape, generator=gen, dtype=x.dtype) * (H - L)
        current[..., top:bottom, left:right] = B[..., top:bottom, left:right]
        images.append(current.clone())
    with torch.no_grad():
        return model(torch.cat(images))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.reference.perturbation",
        description="write Exercise 5's stored references (make references)",
        allow_abbrev=False,
    )
    parser.add_argument("command", choices=["references"], help="what to write")
    parser.parse_args()
    from lrpkit.reference import references

    references.main()  # writes perturbation.npz with the other references
