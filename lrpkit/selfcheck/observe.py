"""The checks' first half: run a student's code on a configuration and record what it did.

Students get this module with the self-checks (``lrpkit.selfcheck.checks``). Each ``observe_*`` runs
the code under test -- quietly, and never raising for a mistake in it -- on the inputs a
``Config`` fixes and returns an observation: a flat dict of numpy arrays, strings, numbers
and flags (results, their types, shapes and dtypes, exceptions, whether the caller's tensors
were changed). An observation holds no expected value; ``lrpkit.selfcheck.judge`` compares it with
the
expected results.
"""

import contextlib
import io
import os
import warnings

import numpy
import torch

import utils
from lrpkit import sheet
from lrpkit.selfcheck import config as cfg
from lrpkit.selfcheck import onepixel
from lrpkit.selfcheck.tripwire import watch

#: a result with more values than this is described (type, shape, dtype), not stored.
MAX_VALUES = 3 * 64 * 64
#: what an input handed in "carrying a .grad" carries: any leftover gradient.
JUNK_GRAD = 0.375
#: input and output channels of each probe of lrpmodel's convolutions.
PROBE_IN, PROBE_OUT = 8, 8
#: Conv is also built with this multiple of the probe's gamma (the gradient must change)
OTHER_GAMMA = 3.0


@contextlib.contextmanager
def quiet():
    """No output and no warnings from the code under test."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield


def describe(error):
    """An exception in one short line: 'Type: message'."""
    try:
        text = " ".join(str(error).split())
    except Exception:  # a student's exception whose str() fails
        text = ""
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


#: files of the kit whose code can compute an answer (the explorer's engine, the checks' own
#: computations), relative to the package lrpkit: code under test calling into them is
#: recorded, and earns no points. Not the explorer's widget.py: it draws the engine's
#: relevance and a curve function it is handed, so a call through it reaches engine.py.
ANSWERING = (
    "explorer/engine.py",
    "selfcheck/judge.py",
    "selfcheck/judge_lrp.py",
    "selfcheck/faithfulness_checks.py",
)


def _answering_code():
    """(the package lrpkit's folder, (name, first line) of this module's functions that
    compute an answer): a copy of them from an earlier import of this file is the same code."""
    codes = (relevance.__code__, lrp_model.__code__)
    return os.path.dirname(os.path.dirname(os.path.realpath(__file__))), {
        (c.co_name, c.co_firstlineno) for c in codes
    }


@contextlib.contextmanager
def tripwire(obs, key):
    """Record in obs[key.kit] the first thing the code under test must not do while the
    block runs (lrpkit.selfcheck.tripwire.watch): call the kit's own answering code (ANSWERING,
    relevance, lrp_model) from any thread, switch the check's profiler off, leave a thread
    running, run its own code in another thread."""
    folder, codes = _answering_code()
    own, files = "selfcheck/" + os.path.basename(__file__), {}

    def answering(code):
        name = code.co_filename
        kind = files.get(name)
        if kind is None:  # 2: a file of answering code, 1: this one, 0: others
            try:
                where = os.path.relpath(os.path.realpath(name), folder).replace(os.sep, "/")
            except ValueError:  # another drive (Windows): not the kit's
                where = ""
            kind = files[name] = 2 if where in ANSWERING else int(where == own)
        return kind == 2 or kind == 1 and (code.co_name, code.co_firstlineno) in codes

    seen = []
    try:
        with watch(answering) as seen:
            yield
    finally:
        if seen:
            obs[key + ".kit"] = seen[0]


def run(obs, key, fn, *args, student=True):
    """(fn(*args), True); an exception in it goes to obs[key.error] (and key.stub for the
    unfinished task's NotImplementedError), then (None, False). ``student``: fn is code
    under test, which must not call the kit's answering code (``tripwire``)."""
    try:
        if not student:
            return fn(*args), True
        with tripwire(obs, key):
            return fn(*args), True
    except (Exception, SystemExit) as error:
        obs[key + ".error"] = describe(error)
        obs[key + ".stub"] = isinstance(error, NotImplementedError)
        return None, False


@contextlib.contextmanager
def model_input(obs, key, model):
    """Record in obs[key.model] the dtype of what the code under test first hands the model's
    first layer ("" when it never runs the model): tells converting X (.float()) from
    computing with the notebook's own float32 model."""
    features = getattr(model, "features", None)
    first = features[0] if isinstance(features, torch.nn.Sequential) and len(features) else model
    seen = []

    def hook(module, args):
        if not seen:
            x = args[0] if args else None
            x = x[0] if isinstance(x, tuple | list) and x else x
            seen.append(str(x.dtype) if torch.is_tensor(x) else type(x).__name__)

    handle = first.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()
        obs[key + ".model"] = seen[0] if seen else ""


def record(obs, key, R, like=None):
    """What a result is (obs[key.type], .shape, .dtype, .requires_grad), and its values as
    float64 (obs[key]) when it is a floating tensor of at most MAX_VALUES values; or, given
    an earlier result `like`, only its relative L2 difference from that (obs[key.diff])."""
    obs[key + ".type"] = "Tensor" if torch.is_tensor(R) else type(R).__name__
    if not torch.is_tensor(R):
        return
    obs[key + ".shape"] = numpy.array(R.shape, dtype=numpy.int64)
    obs[key + ".dtype"] = str(R.dtype)
    obs[key + ".requires_grad"] = bool(R.requires_grad)
    if not R.is_floating_point() or R.numel() > MAX_VALUES:
        return
    R = R.detach().to("cpu", torch.float64)
    if like is None:
        obs[key] = R.numpy().copy()
    elif torch.is_tensor(like) and like.shape == R.shape and like.is_floating_point():
        like = like.detach().to("cpu", torch.float64)
        diff, norm = float((R - like).norm()), float(like.norm())
        obs[key + ".diff"] = diff / norm if norm else (0.0 if not diff else numpy.inf)


def caller(obs, key, X, values, requires_grad, grad):
    """Whether code changed the caller's tensor X: its values, requires_grad, or .grad."""
    obs[key + ".changed_values"] = not torch.equal(X.detach(), values)
    obs[key + ".changed_requires_grad"] = X.requires_grad != requires_grad
    obs[key + ".changed_grad"] = not (
        (X.grad is None and grad is None)
        or (X.grad is not None and grad is not None and torch.equal(X.grad, grad))
    )


def _calls(obs, fn, main, tiny, X, config):
    """fn(main, Xa, c) on a copy Xa of X; on another copy Xt, fn(tiny, Xt, c) twice, then
    fn(tiny, Xt, c2); then fn(tiny, Xg, c2) on an Xg that requires grad and carries a .grad.
    Whether Xa and Xg were changed."""
    Xa = X.clone()
    with model_input(obs, "R", main):
        R, ok = run(obs, "R", fn, main, Xa, config.c)
    caller(obs, "R", Xa, X, False, None)
    if not ok:
        return
    record(obs, "R", R)
    with cfg.one_thread():
        _tiny_calls(obs, fn, tiny, X, config)


def _tiny_calls(obs, fn, tiny, X, config):
    Xt, results = X.clone(), {}
    for key, c, like in (("tiny", config.c, None), ("again", config.c, "tiny")):
        results[key], ok = run(obs, key, fn, tiny, Xt, c)
        if ok:
            record(obs, key, results[key], like and results.get(like))
    results["tiny_c2"], ok = run(obs, "tiny_c2", fn, tiny, Xt, config.c2)
    if ok:
        record(obs, "tiny_c2", results["tiny_c2"])
    Xg = X.clone().requires_grad_(True)
    junk = torch.full_like(X, JUNK_GRAD)
    Xg.grad = junk.clone()
    R, ok = run(obs, "grad_input", fn, tiny, Xg, config.c2)
    if ok:
        record(obs, "grad_input", R, results["tiny_c2"])
    caller(obs, "grad_input", Xg, X, True, junk)


# ---------------------------------------------------------------------------
# Exercise 3
# ---------------------------------------------------------------------------


def observe_input(X, config=None):
    """What X is: type, shape, dtype, and every fourth row and column of its values (float32)
    when it is 1 x 3 x 224 x 224 (enough to tell castle.jpg and its typical mistakes apart)."""
    obs = {"X.type": "Tensor" if torch.is_tensor(X) else type(X).__name__}
    if torch.is_tensor(X):
        obs["X.shape"] = numpy.array(X.shape, dtype=numpy.int64)
        obs["X.dtype"] = str(X.dtype)
        if tuple(X.shape) == (1, 3, cfg.SIZE, cfg.SIZE) and X.is_floating_point():
            obs["X"] = X.detach()[..., ::4, ::4].to("cpu", torch.float32).numpy().copy()
    return obs


def observe_gradient_x_input(gradient_x_input, config=None):
    """gradient_x_input on the stand-in, the crop and c; then on a tiny VGG-shaped model,
    twice on the same X, for class c2, and on an X that requires grad and carries a .grad."""
    config = config or cfg.Config.public()
    X = cfg.grading_input(config)
    obs = {"size": config.size}
    model, tiny = cfg.grading_model(), cfg.tiny_vgg(config.probe_seed)
    with quiet():
        _calls(obs, gradient_x_input, model, tiny, X, config)
    return obs


# ---------------------------------------------------------------------------
# Exercise 4
# ---------------------------------------------------------------------------


def relevance(lrpmodel, X, c):
    """Relevance of the LRP model: per input element, d f_c / d t at t = 1 when x, l, h
    are all scaled by t (a harness that needs no solution code)."""
    L, H = utils.bounds(X)
    T = torch.ones_like(X, requires_grad=True)
    out = lrpmodel.forward((T * X, T * L, T * H))
    (R,) = torch.autograd.grad(out[0, c], T)
    return R


def _observe_convpx(obs, ConvPx, config):
    """The given ConvPx on the px probe: its output and the relevance it passes back."""
    probe = cfg.px_probe(config)
    layer, ok = run(obs, "px", ConvPx, probe["conv"])
    if not ok:
        return
    X, L, H = probe["X"], probe["L"], probe["H"]
    T = torch.ones_like(X, requires_grad=True)
    out, ok = run(obs, "px.forward", layer, (T * X, T * L, T * H))
    if not ok:
        return
    record(obs, "px.out", out)
    if torch.is_tensor(out) and out.requires_grad and out.shape == probe["s"].shape:
        R, ok = run(obs, "px.backward", torch.autograd.grad, (out * probe["s"]).sum(), T)
        if ok:
            record(obs, "px.R", R[0])


def graph_divides(t, limit=200):
    """Whether t's autograd graph divides (a ratio left attached to the graph)."""
    seen, todo = set(), [t.grad_fn]
    while todo and len(seen) < limit:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if any(k in type(node).__name__ for k in ("Div", "Reciprocal")):
            return True
        todo.extend(next_fn for next_fn, _ in node.next_functions)
    return False


def _forward_backward(obs, key, layer, a, s):
    out, ok = run(obs, key + ".forward", layer, a)
    if not ok:
        return
    record(obs, key + ".out", out)
    if torch.is_tensor(out) and out.requires_grad and out.shape == s.shape:
        obs[key + ".divides"] = graph_divides(out)
        g, ok = run(obs, key + ".backward", torch.autograd.grad, (out * s).sum(), a)
        if ok:
            record(obs, key + ".grad", g[0])


def _observe_conv_probe(obs, Conv, config):
    """Conv on the probe layer: the weights it leaves, its output and gradient, twice on the
    same input (which requires grad and carries a .grad)."""
    probe = cfg.conv_probe(config)
    conv, a, s = probe["conv"], probe["a"], probe["s"]
    weight, bias = conv.weight.clone(), conv.bias.clone()
    layer, ok = run(obs, "conv", Conv, conv, probe["gamma"])
    obs["conv.changed_weights"] = not (
        torch.equal(conv.weight, weight) and torch.equal(conv.bias, bias)
    )
    if not ok:
        return
    x = a.clone().requires_grad_(True)
    junk = torch.full_like(a, JUNK_GRAD)
    x.grad = junk.clone()
    _forward_backward(obs, "conv", layer, x, s)
    _forward_backward(obs, "conv.again", layer, x, s)
    caller(obs, "conv", x, a, True, junk)
    obs["conv.changed_weights_forward"] = not (
        torch.equal(conv.weight, weight) and torch.equal(conv.bias, bias)
    )
    # the same layer with another gamma: a Conv that ignores its gamma passes the same gradient
    layer, ok = run(obs, "conv.gamma2", Conv, conv, OTHER_GAMMA * probe["gamma"])
    if ok:
        _forward_backward(obs, "conv.gamma2", layer, a.clone().requires_grad_(True), s)
        g, g2 = obs.get("conv.grad"), obs.get("conv.gamma2.grad")
        if g is not None and g2 is not None and g.shape == g2.shape:
            obs["conv.gamma2.diff"] = float(numpy.linalg.norm(g2 - g) / numpy.linalg.norm(g))


def lrp_model(model, ConvPx, Conv=None, gammas=None):
    """model with ConvPx on features[0] and, unless Conv is None, Conv(features[i], gamma) on
    the others ({index: gamma}); an exception propagates."""
    features = model.features
    features[0] = ConvPx(features[0])
    if Conv is not None:
        for i, gamma in gammas.items():
            features[i] = Conv(features[i], gamma)
    return model.eval()


def observe_conv(Conv, ConvPx, config=None):
    """ConvPx and Conv on their probe layers, then the relevance of the LRP model built with
    them and the config's gamma per layer, on the crop and class c."""
    config = config or cfg.Config.public()
    obs = {"size": config.size}
    X = cfg.grading_input(config)
    with quiet(), cfg.one_thread():
        _observe_convpx(obs, ConvPx, config)
        _observe_conv_probe(obs, Conv, config)
    if any(k.endswith(".error") for k in obs):  # the probes tell what is wrong
        return obs
    model = onepixel.plain(cfg.grading_model())  # code under test is handed its layers
    with quiet():
        gammas = config.layer_gammas()
        lrpmodel, ok = run(obs, "model", lrp_model, model, ConvPx, Conv, gammas, student=False)
        if ok:
            R, ok = run(obs, "R", relevance, lrpmodel, X, config.c, student=False)
            if ok:
                record(obs, "R", R)
    return obs


def _probe_layer(obs, key, layer, index, rng):
    """The rule of one convolution of lrpmodel, seen on 1 x 1 inputs (where only the kernel's
    centre tap acts): its centre tap W and bias b (from forward values z(e_j) - z(0) on
    one-hot inputs), and the gradient g it passes for a probe input and cotangent s."""
    dtype = next((p.dtype for p in layer.parameters() if p.is_floating_point()), torch.float32)
    first = index == sheet.FIRST
    n_in, n_out = cfg.in_channels(index), cfg.CHANNELS[sheet.block_of(index) - 1]
    ins = numpy.sort(rng.choice(n_in, min(PROBE_IN, n_in), replace=False))
    E = torch.zeros(len(ins) + 1, n_in, 1, 1, dtype=dtype)
    E[numpy.arange(1, len(ins) + 1), ins] = 1
    if first:  # (X, L, H) with L <= X <= H, away from the bounds
        L, H = (t.to(dtype) for t in utils.bounds(torch.zeros(1, 3, 1, 1)))
        u = torch.from_numpy(rng.uniform(0.2, 0.8, (1, 3, 1, 1))).to(dtype)
        a = (L + u * (H - L), L, H)
        E = (E, L.expand_as(E), H.expand_as(E))
    else:  # ReLU-like activations on a few channels
        a = torch.zeros(1, n_in, 1, 1, dtype=dtype)
        a[0, ins] = torch.from_numpy(rng.uniform(0.5, 1.5, (len(ins), 1, 1))).to(dtype)
        a = (a,)
    with torch.no_grad():
        Z, ok = run(obs, key, layer, E)
    if not ok:
        return
    if not torch.is_tensor(Z) or tuple(Z.shape) != (len(ins) + 1, n_out, 1, 1):
        obs[key + ".error"] = f"it returned {tuple(getattr(Z, 'shape', ()))} for 1 x 1 inputs"
        return
    a = tuple(t.clone().requires_grad_(True) for t in a)
    z, ok = run(obs, key, layer, a if first else a[0])
    if not ok or not torch.is_tensor(z) or z.shape != (1, n_out, 1, 1) or not z.requires_grad:
        obs.setdefault(key + ".error", "its output does not depend on its input through autograd")
        return
    zd = z.detach().reshape(-1)
    order = [int(k) for k in torch.argsort(zd, descending=True)]
    # LRP-gamma on inputs >= 0: zp >= z, so zp > 0 wherever z > 0 for every gamma >= 0
    outs = order[:PROBE_OUT] if first else [k for k in order[:PROBE_OUT] if zd[k] > 0]
    s = torch.zeros(1, n_out, 1, 1, dtype=dtype)
    s[0, outs, 0, 0] = torch.from_numpy(rng.normal(size=len(outs))).to(dtype)
    grads, ok = run(obs, key, lambda: torch.autograd.grad((z * s).sum(), a, allow_unused=True))
    if not ok:
        return
    Z = Z.reshape(len(ins) + 1, n_out).double()
    obs[key + ".W"] = (Z[1:, outs] - Z[0, outs]).T.numpy()
    obs[key + ".b"] = Z[0, outs].numpy()
    obs[key + ".z"] = zd[outs].double().numpy()
    obs[key + ".s"] = s.reshape(-1)[outs].double().numpy()
    for name, t, g in zip("XLH" if first else "a", a, grads, strict=True):
        obs[f"{key}.{name}"] = t.detach().reshape(-1)[ins].double().numpy()
        g = torch.zeros_like(t) if g is None else g
        obs[f"{key}.g{name}"] = g.detach().reshape(-1)[ins].double().numpy()


def observe_lrpmodel(lrpmodel, model=None, config=None):
    """lrpmodel's mode, layer types and dense layers, and the rule of each convolution
    (probed on 1 x 1 inputs: see _probe_layer); whether the notebook's model (when given) is
    lrpmodel itself or shares its layers (then the notebook's model was changed too)."""
    config = config or cfg.Config.public()
    obs = {"type": type(lrpmodel).__name__}
    obs["module"] = isinstance(lrpmodel, torch.nn.Module)
    if not obs["module"]:
        return obs
    if isinstance(model, torch.nn.Module):
        convs = [i for layers in sheet.BLOCKS for i in layers]
        features = getattr(model, "features", None)
        plain = isinstance(features, torch.nn.Sequential) and len(features) == 31
        plain = plain and all(type(features[i]) is torch.nn.Conv2d for i in convs)
        obs["model.same"] = model is lrpmodel or features is getattr(lrpmodel, "features", None)
        obs["model.changed"] = not plain
    on = [n for n, m in lrpmodel.named_modules() if m.training and isinstance(m, torch.nn.Dropout)]
    obs["dropout_on"] = ", ".join(on)
    features = getattr(lrpmodel, "features", None)
    obs["features.vgg"] = isinstance(features, torch.nn.Sequential) and len(features) == 31
    classifier = getattr(lrpmodel, "classifier", None)
    modules = classifier if isinstance(classifier, torch.nn.Module) else []
    obs["classifier.types"] = ",".join(type(m).__name__ for m in modules)
    if not obs["features.vgg"]:
        return obs
    obs["features.types"] = ",".join(type(m).__name__ for m in features)
    with quiet(), cfg.one_thread():
        for layers in sheet.BLOCKS:
            for i in layers:
                if type(features[i]) is not torch.nn.Conv2d:
                    _probe_layer(obs, f"L{i}", features[i], i, cfg.layer_rng(config, i))
    return obs


def observe_relevance(lrp_relevance, ConvPx, config=None):
    """lrp_relevance on the crop and class c, and on the stand-in with ConvPx on features[0]
    and the config's gamma per layer in the weights of the plain convolutions above it
    (config.gamma_model: this does not depend on Conv, and a function that ignores its lrpmodel
    cannot match); then on a tiny VGG-shaped model with ConvPx, twice on the same X, for class
    c2, and on an X that requires grad and carries a .grad."""
    config = config or cfg.Config.public()
    obs = {"size": config.size}
    X = cfg.grading_input(config)
    model = cfg.gamma_model(cfg.grading_model(), config.layer_gammas())
    onepixel.plain(model, [sheet.FIRST])  # the given ConvPx is handed features[0]
    tiny = cfg.tiny_vgg(config.probe_seed)
    with quiet():
        with cfg.one_thread():
            _observe_convpx(obs, ConvPx, config)
        models, ok = run(
            obs, "model", lambda: (lrp_model(model, ConvPx), lrp_model(tiny, ConvPx)), student=False
        )
        if ok:
            _calls(obs, lrp_relevance, *models, X, config)
    return obs
