"""Self-checks for Exercises 3 and 4 (students, and the grader): one verdict line per check.

Each check runs your code itself on a fixed grading configuration -- the stand-in VGG-16
(``utils.load_vgg16("standin")``) converted to float64, on the 32 x 32 centre crop of
castle.jpg (rows and columns 96-127 of the 224 x 224 input, normalised), class 483 (castle)
-- whatever model your notebook uses, and compares the result with reference results stored
in ``data/reference/`` (written by ``make references``). The crop keeps grading fast; your
code must work for any input size. Only ``check_input`` looks at your full 224 x 224 ``X``.
It prints exactly one line, ``PASS <check>: ...`` or ``FAIL <check>: <what is
wrong>. Hint: <what to do>``, and returns True or False. A mistake in your code never raises
here: an exception becomes a FAIL line.

Results are compared by their relative L2 error ||R - R_ref|| / ||R_ref|| in float64, which
must stay below ``TOL`` (1e-6). (On the whole image in float32, two correct LRP
implementations differ by about 1e-2, because divisions by near-zero zp amplify rounding; in
float64 by about 1e-8.) So write code that works in any dtype: no ``.float()`` inside your
functions.
"""

import contextlib
import copy
import functools
import hashlib
import io
import json
import warnings

import numpy
import torch

import utils
from lrpkit import sheet
from lrpkit.sheet import CLASS

REFERENCE = utils.DATA / "reference"
#: the checks run the code under test on the CROP x CROP centre crop of the 224 x 224 input
#: (a fraction of the cost of the whole image; the diagnoses tell mistakes apart as well).
CROP = 32
#: largest accepted relative L2 error against the float64 references.
TOL = 1e-6
#: the sheet's LRP model: features[0] gets ConvPx, these get Conv(features[i], gamma).
SHEET_GAMMAS = sheet.layer_gammas()
#: where a near-match with a wrong variant counts as "that is the mistake".
NEAR = 1e-3
#: check_input's tolerance (relative L2) for pixels a different JPEG decoder rounds otherwise.
DECODER_TOL = 2e-2
PASS_TOL = f"relative L2 error below {TOL:.0e} in float64"


class StaleReferences(RuntimeError):
    """The stored references do not belong to this installation (not a student's mistake)."""


class _Fail(Exception):
    def __init__(self, what, hint):
        super().__init__(what)
        self.what, self.hint = what, hint


# ---------------------------------------------------------------------------
# the grading configuration and the stored references
# ---------------------------------------------------------------------------


def fingerprint(state):
    """sha256 over names, shapes and a strided sample of every tensor of a state dict."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        sample = tensor.detach().reshape(-1)[::97].contiguous().cpu().numpy()
        digest.update(sample.tobytes())
    return digest.hexdigest()


def input_sha256(X):
    """sha256 of the float32 input's bytes: the same castle.jpg decoded the same way."""
    return hashlib.sha256(X.detach().float().contiguous().numpy().tobytes()).hexdigest()


def castle_input():
    """castle.jpg as VGG-16's input X (1 x 3 x 224 x 224 float32), as the notebooks build it."""
    return utils.normalize(utils.load_image(utils.castle_path()))


def castle_pixels():
    """castle.jpg decoded here, as 224 x 224 x 3 RGB bytes (what data/reference/ stores)."""
    return numpy.round(utils.load_image(utils.castle_path()) * 255).astype(numpy.uint8)


def standin():
    """The stand-in VGG-16 (float32, eval mode), loaded without printing its banner."""
    with contextlib.redirect_stdout(io.StringIO()):
        return utils.load_vgg16("standin")


@functools.cache
def _meta():
    path = REFERENCE / "meta.json"
    if not path.is_file():
        raise StaleReferences(
            f"{path} is missing. Instructors: run `make references`. Students: your copy of "
            "the kit is incomplete; download the student bundle again."
        )
    return json.loads(path.read_text())


@functools.cache
def _arrays():
    arrays = {}
    for name in _meta()["files"]:
        with numpy.load(REFERENCE / name) as npz:
            arrays.update({key: torch.from_numpy(npz[key]) for key in npz.files})
    return arrays


def _stale(what):
    meta = _meta()
    here = f"torch {torch.__version__}, numpy {numpy.__version__}"
    there = ", ".join(f"{k} {meta['versions'][k]}" for k in ("torch", "numpy"))
    return StaleReferences(
        f"{what} differs from the one data/reference/ was computed with (there: {there}; "
        f"here: {here}), so the checks cannot judge your code. Students: install the pinned "
        "environment (environment.yml). Instructors: run `make references` in this environment."
    )


@functools.cache
def _X():
    """The grading input: castle.jpg's pixels as stored with the references, normalised.

    The pixels come from data/reference/, not from decoding castle.jpg here, so a JPEG
    decoder that rounds a few pixels differently (another OpenCV build) changes nothing.
    """
    X = utils.normalize(_arrays()["castle_pixels"].numpy() / 255.0)
    if input_sha256(X) != _meta()["input_sha256"]:
        raise _stale("The grading input rebuilt from data/reference/")
    return X


def crop(X, size=CROP):
    """The size x size centre crop of X (... x H x W)."""
    top, left = (X.shape[-2] - size) // 2, (X.shape[-1] - size) // 2
    return X[..., top : top + size, left : left + size]


def grading_input():
    """The input the checks run code on: the centre crop of the grading input, float64."""
    return crop(_X()).double().contiguous()


def _sample(model):
    return torch.cat([p.detach().reshape(-1)[::997].double() for p in model.parameters()])


@functools.cache
def _model():
    """The grading model: the stand-in in float64, parameters frozen; a sample of its weights."""
    model = standin()
    if fingerprint(model.state_dict()) != _meta()["standin_fingerprint"]:
        raise _stale("The stand-in VGG-16 built here")
    model = model.double().requires_grad_(False)
    return model, _sample(model)


def grading_model():
    """A fresh float64 stand-in: new modules and conv weights, shared dense weights (1 GB)."""
    base, sample = _model()
    if any(p.dtype != torch.float64 for p in base.parameters()) or not torch.equal(
        _sample(base), sample
    ):  # code under test changed the shared weights in place: start again
        _model.cache_clear()
        base, sample = _model()
    for p in base.parameters():  # undo what a previous check's code may have switched on
        p.requires_grad_(False)
        p.grad = None
    shared = {id(p): p for p in base.classifier.parameters()}
    return copy.deepcopy(base, memo=shared).eval()


def _ref(name):
    return _arrays()[name]


# ---------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------


def _verdict(name, run):
    """Run a check quietly (no output of the code under test), print one line, return it."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                message = run()
        line, ok = f"PASS {name}: {message}", True
    except StaleReferences:
        raise
    except _Fail as fail:
        line, ok = f"FAIL {name}: {fail.what}. Hint: {fail.hint}", False
    except Exception as error:  # a result so odd that the check itself tripped over it
        line = (
            f"FAIL {name}: the check could not evaluate your result ({_describe(error)}). "
            "Hint: return a torch tensor shaped like X, as the task asks"
        )
        ok = False
    print(" ".join(line.split()))  # one line, whatever the messages contain
    return ok


def _describe(error):
    text = " ".join(str(error).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _call(what, hint, fn, *args):
    """fn(*args); an exception in it becomes a FAIL naming it."""
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise _Fail(
            f"{what} raised {_describe(error)}",
            "complete the task in the cell above: replace the line raise NotImplementedError",
        ) from None
    except (Exception, SystemExit) as error:
        raise _Fail(f"{what} raised {_describe(error)}", hint) from None


def _rel(R, ref):
    """Relative L2 error of R against ref, in float64."""
    R, ref = R.detach().double().cpu(), ref.detach().double().cpu()
    return float(torch.linalg.vector_norm(R - ref) / torch.linalg.vector_norm(ref))


def _tensor(R, like, what, hint_dtype):
    """R as a detached float64 tensor after checking its type, shape, dtype and values."""
    if not torch.is_tensor(R):
        raise _Fail(
            f"{what} is a {type(R).__name__}, not a torch tensor",
            "return the relevance as a torch tensor shaped like X",
        )
    if tuple(R.shape) != tuple(like.shape):
        raise _Fail(
            f"{what} has shape {tuple(R.shape)}, expected {tuple(like.shape)}",
            "return one score per input value, shaped like X (the check gives your code a "
            f"{CROP} x {CROP} crop of the image): do not sum over the colour channels or drop "
            "the batch dimension",
        )
    if R.dtype != like.dtype:
        raise _Fail(f"{what} is {R.dtype}, but the input was {like.dtype}", hint_dtype)
    R = R.detach()
    if not torch.isfinite(R).all():
        raise _Fail(
            f"{what} contains NaN or inf",
            "look for a division by zero (a zp that is exactly 0) and keep it away from 0",
        )
    return R


DTYPE_HINT = (
    "use the arguments you are given (model, X, c), not the notebook's globals, and do not "
    "convert dtypes (no .float()): the check runs your code in float64"
)


def _first_match(R, candidates):
    """The diagnosis of the first (variant, what, hint) whose variant R is close to."""
    for variant, what, hint in candidates:
        if _rel(R, variant) < NEAR:
            raise _Fail(what, hint)


def _channel_sum(R):
    return R.sum(dim=1)[0]


# ---------------------------------------------------------------------------
# Exercise 3
# ---------------------------------------------------------------------------


def check_input(X):
    """X is castle.jpg as VGG-16 expects it: 1 x 3 x 224 x 224, float32, RGB, normalised."""

    def run():
        ref = _X()
        if not torch.is_tensor(X):
            raise _Fail(
                f"X is a {type(X).__name__}, not a torch tensor",
                "build X with torch, e.g. X = utils.normalize(img)",
            )
        shape = tuple(X.shape)
        if len(shape) in (3, 4) and 2 in (shape[-3], shape[-1]):
            raise _Fail(
                f"X has shape {shape}: two colour channels, one was dropped",
                "OpenCV reads B, G, R; [..., :-1] drops the red channel. Reverse the channel "
                "order with [..., ::-1] instead (utils.load_image does this)",
            )
        if shape == (1, 224, 224, 3):
            raise _Fail(
                f"X has shape {shape}: channels last",
                "VGG-16 wants 1 x 3 x H x W: transpose with .transpose([0, 3, 1, 2]) "
                "(utils.normalize does this)",
            )
        if shape != tuple(ref.shape):
            raise _Fail(
                f"X has shape {shape}, expected {tuple(ref.shape)}",
                "X is one image with a batch dimension: 1 x 3 x 224 x 224",
            )
        if X.dtype != torch.float32:
            raise _Fail(
                f"X is {X.dtype}, expected torch.float32 like VGG-16's weights",
                "convert with torch.FloatTensor(...) or .float() (utils.normalize does)",
            )
        Xd = X.detach().double()
        # Up to DECODER_TOL: other JPEG decoders may round some pixels by a level or two.
        if _rel(Xd, ref) < DECODER_TOL:
            return "X is castle.jpg as VGG-16 expects it (1x3x224x224 float32, RGB, normalised)"
        mean, std = utils.MEAN.double(), utils.STD.double()
        img = ref.double() * std + mean  # RGB in [0, 1]
        bgr = img.flip(1)
        constant = [int(k) for k in range(3) if float(Xd[0, k].std()) < 1e-6]
        if constant:
            raise _Fail(
                f"colour channel {constant[0]} of X is constant: a channel was dropped",
                "OpenCV reads B, G, R; reverse the order with [..., ::-1] rather than "
                "dropping a channel with [..., :-1]",
            )
        _first_match(
            Xd,
            [
                (
                    (bgr - mean) / std,
                    "the colour channels are in B, G, R order",
                    "OpenCV reads B, G, R but VGG-16 expects R, G, B: reverse with [..., ::-1]",
                ),
                (
                    ref.double().flip(1),
                    "the colour channels are in B, G, R order",
                    "OpenCV reads B, G, R but VGG-16 expects R, G, B: reverse with [..., ::-1] "
                    "before normalising",
                ),
                (
                    img,
                    "X is not normalised (pixel values in [0, 1])",
                    "subtract ImageNet's mean and divide by its std: (img - mean) / std",
                ),
                (
                    bgr,
                    "X is not normalised and its channels are in B, G, R order",
                    "reverse the channels with [..., ::-1], then compute (img - mean) / std",
                ),
                (
                    img * 255,
                    "X holds raw pixel values 0-255, not normalised",
                    "divide by 255.0, then compute (img - mean) / std",
                ),
                (
                    (img * 255 - mean) / std,
                    "the pixel values were not divided by 255",
                    "scale the image to [0, 1] with / 255.0 before normalising",
                ),
            ],
        )
        raise _Fail(
            f"X differs from castle.jpg's normalised input (relative error {_rel(Xd, ref):.2g})",
            "build X as the notebook's first cell does: utils.normalize(utils.load_image(...))",
        )

    return _verdict("check_input", run)


def check_gradient_x_input(gradient_x_input):
    """gradient_x_input(model, X, c) returns R_i = x_i * df_c/dx_i, shaped like X."""

    def run():
        X = grading_input()
        R = _call(
            "gradient_x_input(model, X, c)",
            "make it work for any model, input and class given as arguments; test it in the "
            "cell above",
            gradient_x_input,
            grading_model(),
            X.clone(),
            CLASS,
        )
        R = _tensor(R, X, "gradient_x_input's result", DTYPE_HINT)
        ref = _ref("gxi")
        error = _rel(R, ref)
        if error < TOL:
            return f"gradient_x_input matches the reference Gradient x Input ({PASS_TOL})"
        if not R.abs().sum():
            raise _Fail(
                "the result is all zeros",
                "backpropagate from the logit model(X)[0, c] and multiply X by X.grad",
            )
        R_sum = _channel_sum(R)
        _first_match(
            R * X,
            [
                (
                    ref,
                    "the result is the gradient alone, not gradient x input",
                    "multiply the gradient by the input X",
                ),
            ],
        )
        _first_match(
            R,
            [
                (
                    -ref,
                    "the result has the wrong sign",
                    "multiply X by the gradient of the logit of class c (not of -f)",
                ),
                (X, "the result is the input X itself", "multiply X by the gradient X.grad"),
            ],
        )
        _first_match(
            R_sum,
            [
                (
                    _ref("gxi_softmax_sum"),
                    "you explained the softmax probability of class c",
                    "explain the logit model(X)[0, c], the score before the softmax",
                ),
                (
                    _ref("gxi_top_sum"),
                    "you explained the top class, not class c",
                    "explain the neuron c you are given: model(X)[0, c]",
                ),
            ],
        )
        raise _Fail(
            f"the result differs from the reference Gradient x Input (relative L2 error "
            f"{error:.2g})",
            "let X require grad, backpropagate from the logit model(X)[0, c] only (no sum "
            "over classes, no softmax), and multiply X by its gradient",
        )

    return _verdict("check_gradient_x_input", run)


# ---------------------------------------------------------------------------
# Exercise 4
# ---------------------------------------------------------------------------


def _relevance(lrpmodel, X, c):
    """Relevance of the LRP model: per input element, d f_c / d t at t = 1 when x, l, h
    are all scaled by t (a harness that needs no solution code)."""
    L, H = utils.bounds(X)
    T = torch.ones_like(X, requires_grad=True)
    out = lrpmodel.forward((T * X, T * L, T * H))
    (R,) = torch.autograd.grad(out[0, c], T)
    return R


def _conv_layer(prefix):
    """The small probe convolution stored in the references (float64, frozen)."""
    w, b = _ref(prefix + "_w"), _ref(prefix + "_b")
    conv = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=w.shape[2] // 2)
    with torch.no_grad():
        conv.weight = torch.nn.Parameter(w.clone(), requires_grad=False)
        conv.bias = torch.nn.Parameter(b.clone(), requires_grad=False)
    return conv


RESTORE_CONVPX = "re-run the given ConvPx cell unchanged (it also stabilises zp)"


def _probe_convpx(ConvPx):
    """The given ConvPx on a small first convolution, one output of which has zp = 0."""
    conv = _conv_layer("px")
    layer = _call("ConvPx(conv)", RESTORE_CONVPX, ConvPx, conv)
    X, L, H = _ref("px_X"), _ref("px_L"), _ref("px_H")
    T = torch.ones_like(X, requires_grad=True)
    out = _call("ConvPx.forward((X, L, H))", RESTORE_CONVPX, layer, (T * X, T * L, T * H))
    if not torch.is_tensor(out) or out.shape != _ref("px_z").shape:
        raise _Fail("ConvPx does not return the convolution's output", RESTORE_CONVPX)
    if not torch.isfinite(out).all():
        raise _Fail(
            "ConvPx's output has NaN where zp is exactly 0 (a patch at the pixel bounds)",
            "keep zp away from zero before dividing, as the given ConvPx does",
        )
    if _rel(out, _ref("px_z")) > TOL or not out.requires_grad:
        raise _Fail("ConvPx's output is not z = conv(X)", RESTORE_CONVPX)
    (R,) = _call(
        "backpropagating through ConvPx",
        RESTORE_CONVPX,
        torch.autograd.grad,
        (out * _ref("px_s")).sum(),
        T,
    )
    if not torch.isfinite(R).all() or _rel(R, _ref("px_R")) > TOL:
        raise _Fail("ConvPx does not propagate the z^B rule of the given code", RESTORE_CONVPX)


def _graph_divides(t, limit=200):
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


CONV_HINT = (
    "z is the layer's output, zp the output of a copy whose weights are w + gamma * w^+ "
    "(utils.newlayer); return zp times the ratio z / zp detached, like ConvPx does"
)


def _probe_conv(Conv):
    """Conv on a small convolution with a gamma that is none of the sheet's."""
    conv, gamma = _conv_layer("conv"), float(_ref("conv_gamma"))
    weight = conv.weight.clone()
    layer = _call(
        "Conv(conv, gamma)", "build it from the layer and gamma you are given", Conv, conv, gamma
    )
    if not torch.equal(conv.weight, weight):
        raise _Fail(
            "Conv changed the weights of the layer it was given",
            "make newlayer's g return a new tensor (p.clamp(min=0), not p.clamp_(min=0))",
        )
    a = _ref("conv_a").clone().requires_grad_(True)
    out = _call("Conv.forward(X)", CONV_HINT, layer, a)
    z = _ref("conv_z")
    what = "Conv's output"
    if not torch.is_tensor(out):
        raise _Fail(f"{what} is a {type(out).__name__}, not a tensor", CONV_HINT)
    if out.shape != z.shape:
        raise _Fail(
            f"{what} has shape {tuple(out.shape)}, expected the layer's {tuple(z.shape)}",
            "apply the layer you are given (self.conv) and its copy to the same input",
        )
    if out.dtype != z.dtype:
        raise _Fail(f"{what} is {out.dtype}, but its input was {z.dtype}", DTYPE_HINT)
    if not torch.isfinite(out).all():
        raise _Fail(f"{what} contains NaN or inf", "look for a division by zero in z / zp")
    if _rel(out, z) > TOL:
        _first_match(
            out,
            [
                (
                    _ref("conv_zp"),
                    f"{what} is zp, but its value must be z (the layer's own output)",
                    "multiply zp by the detached ratio z / zp: the value of z with the "
                    "gradient of zp",
                ),
            ],
        )
        raise _Fail(f"{what} is not the layer's output z = conv(X)", CONV_HINT)
    if not out.requires_grad:
        raise _Fail(
            f"{what} does not depend on X through autograd: all is detached",
            "detach only the ratio z / zp, so the gradient flows through zp",
        )
    (g,) = _call(
        "backpropagating through Conv",
        CONV_HINT,
        torch.autograd.grad,
        (out * _ref("conv_s")).sum(),
        a,
    )
    if _rel(g, _ref("conv_grad")) < TOL:
        return
    if _rel(g, _ref("conv_grad_plain")) < NEAR:
        if _graph_divides(out):
            raise _Fail(
                "relevance flows through the ratio z / zp, which is not detached, so Conv "
                "passes the plain gradient",
                "treat the ratio as a constant: detach z / zp (.detach()), as ConvPx does",
            )
        raise _Fail(
            "Conv passes the plain gradient: gamma is applied to the negative weights too "
            "(w + gamma * w only rescales z) or not at all",
            "LRP-gamma boosts the positive weights only: w + gamma * w^+, with "
            "w^+ = max(0, w) (see how ConvPx clamps)",
        )
    _first_match(
        g,
        [
            (
                _ref("conv_grad_neg"),
                "gamma is applied to the negative weights",
                "LRP-gamma boosts the positive weights: w + gamma * w^+, w^+ = max(0, w)",
            ),
            (
                _ref("conv_grad_nobias"),
                "gamma is applied to the weights but not to the bias",
                "transform the bias like the weights (utils.newlayer's g does both)",
            ),
            (
                _ref("conv_grad_zp"),
                "the gradient is zp's, without the ratio z / zp",
                "multiply zp by the detached ratio z / zp (LRP divides by zp)",
            ),
        ]
        + [
            (
                _ref(f"conv_grad_gamma{k}"),
                f"Conv ignores its gamma argument (it uses {g_:.3g})",
                "use the gamma passed to Conv(conv, gamma)",
            )
            for k, g_ in enumerate(sorted(set(SHEET_GAMMAS.values())))
        ],
    )
    raise _Fail(
        f"Conv's gradient differs from LRP-gamma's (relative L2 error "
        f"{_rel(g, _ref('conv_grad')):.2g})",
        CONV_HINT,
    )


def _sheet_lrpmodel(ConvPx, Conv=None):
    """A fresh float64 stand-in with the sheet's layers replaced: ConvPx on features[0],
    and Conv(features[i], gamma) on the others unless Conv is None."""
    model = grading_model()
    features = model.features
    hint = "ConvPx and Conv must be torch.nn.Module subclasses built from a layer"
    features[0] = _call("ConvPx(features[0])", hint, ConvPx, features[0])
    if Conv is not None:
        for i, gamma in SHEET_GAMMAS.items():
            features[i] = _call(f"Conv(features[{i}], {gamma:.3g})", hint, Conv, features[i], gamma)
    return model.eval()


def check_conv(Conv, ConvPx):
    """Conv(conv, gamma) implements LRP-gamma by the gradient trick; the LRP model built the
    sheet's way with it gives the reference relevance."""

    def run():
        _probe_convpx(ConvPx)
        _probe_conv(Conv)
        lrpmodel = _sheet_lrpmodel(ConvPx, Conv)
        X = grading_input()
        R = _call("the LRP model with your Conv", CONV_HINT, _relevance, lrpmodel, X, CLASS)
        R = _tensor(R, X, "the relevance with your Conv", DTYPE_HINT)
        error = _rel(R, _ref("lrp"))
        if error < TOL:
            return f"Conv implements LRP-gamma; LRP relevance matches the reference ({PASS_TOL})"
        _first_match(
            _channel_sum(R),
            [
                (_ref("zb_sum"), "the Conv layers pass the plain gradient", CONV_HINT),
            ],
        )
        raise _Fail(
            f"Conv passes the layer test, but the relevance of the whole LRP model differs "
            f"(relative L2 error {error:.2g})",
            "keep everything on self (not on the class): each Conv has its own layer and "
            "gamma; use the layer's own stride and padding (newlayer copies them)",
        )

    return _verdict("check_conv", run)


def check_lrpmodel(lrpmodel):
    """lrpmodel has the sheet's layers, the dense layers intact, and dropout off."""

    def run():
        if not isinstance(lrpmodel, torch.nn.Module):
            raise _Fail(
                f"lrpmodel is a {type(lrpmodel).__name__}, not a torch model",
                "build lrpmodel as the cell above does",
            )
        on = [
            name
            for name, m in lrpmodel.named_modules()
            if m.training and isinstance(m, torch.nn.Dropout)
        ]
        if on:
            raise _Fail(
                f"lrpmodel is in training mode: its dropout layers ({', '.join(on)}) are on, "
                "so every run drops random units and the relevance changes from run to run",
                "call lrpmodel.eval() (the sheet's model.eval() switches the other model)",
            )
        features = getattr(lrpmodel, "features", None)
        classifier = getattr(lrpmodel, "classifier", None)
        if not isinstance(features, torch.nn.Sequential) or len(features) != 31:
            raise _Fail("lrpmodel.features is not VGG-16's", "build lrpmodel from VGG-16")
        expected = {0: "ConvPx"} | dict.fromkeys(SHEET_GAMMAS, "Conv")
        for i, layer in enumerate(features):
            name = type(layer).__name__
            want = expected.get(i, ("MaxPool2d" if i in sheet.POOLS else "ReLU"))
            if name != want:
                raise _Fail(
                    f"lrpmodel.features[{i}] is a {name}, expected {want}",
                    "replace features[0] by ConvPx and the other convolutions by Conv with "
                    "the sheet's gamma per block, and nothing else",
                )
        dense = [type(m).__name__ for m in (classifier or [])]
        if dense[0::3] != ["Linear"] * 3:
            raise _Fail(
                "the dense layers of lrpmodel were changed",
                "leave lrpmodel.classifier intact: its gradient flows as it is",
            )
        return (
            "lrpmodel is in eval mode (dropout off), with ConvPx on features[0], Conv on the "
            "12 other convolutions and the dense layers intact"
        )

    return _verdict("check_lrpmodel", run)


def check_relevance(lrp_relevance, ConvPx):
    """lrp_relevance(lrpmodel, X, c) returns the extended Gradient x Input
    R = X * dX + L * dL + H * dH, shaped like X."""

    def run():
        _probe_convpx(ConvPx)
        # Only the first layer is LRP's here, so the check does not depend on your Conv.
        lrpmodel = _sheet_lrpmodel(ConvPx)
        X = grading_input()
        R = _call(
            "lrp_relevance(lrpmodel, X, c)",
            "make it work for any LRP model, input and class given as arguments",
            lrp_relevance,
            lrpmodel,
            X.clone(),
            CLASS,
        )
        R = _tensor(R, X, "lrp_relevance's result", DTYPE_HINT)
        R_sum = _channel_sum(R)
        error = _rel(R_sum, _ref("zb_sum"))
        if error < TOL:
            return f"R = X*dX + L*dL + H*dH matches the reference ({PASS_TOL})"
        x, l, h = _ref("zb_x_sum"), _ref("zb_l_sum"), _ref("zb_h_sum")  # noqa: E741
        _first_match(
            R_sum,
            [
                (
                    x,
                    "the terms L * L.grad + H * H.grad are missing",
                    "the bounds are inputs of the first layer too: R = X dX + L dL + H dH",
                ),
                (x + l, "the term H * H.grad is missing", "add H * H.grad"),
                (x + h, "the term L * L.grad is missing", "add L * L.grad"),
                (l + h, "the term X * X.grad is missing", "add X * X.grad"),
                (
                    x - l - h,
                    "L * L.grad and H * H.grad are subtracted",
                    "add them: all terms count",
                ),
            ],
        )
        raise _Fail(
            f"the relevance differs from the reference (relative L2 error {error:.2g})",
            "let X, L and H require grad, backpropagate from the LRP model's logit of class c "
            "and return the extended Gradient x Input X dX + L dL + H dH",
        )

    return _verdict("check_relevance", run)
