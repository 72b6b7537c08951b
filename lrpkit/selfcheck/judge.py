"""The checks' second half: judge an observation against the expected results, one verdict.

Students get this module with the self-checks (``lrpkit.selfcheck.checks``). Each ``judge_*`` takes
an
observation (``lrpkit.selfcheck.observe``) and the expected results of the same configuration (for
the
public one stored in ``data/reference/``, for any other computed by ``lrpkit.reference.references``)
and returns the PASS message, or a ``Fail`` naming what is wrong and a hint. It never raises
for a student's mistake and runs no student code: a grader may run it outside the kernel.
"""

import re

import numpy

import utils
from lrpkit import sheet
from lrpkit.selfcheck import config as cfg

#: largest accepted relative L2 error against the float64 references.
TOL = 1e-6
#: where a near-match with a wrong variant counts as "that is the mistake".
NEAR = 1e-3
#: the rule probes of lrpmodel's layers run in the model's own dtype (float32 in notebooks).
LAYER_TOL = 1e-4
#: check_input's tolerance (relative L2) for pixels a different JPEG decoder rounds otherwise.
DECODER_TOL = 2e-2
PASS_TOL = f"relative L2 error below {TOL:.0e} in float64"


class Fail(Exception):
    """A FAIL verdict: what is wrong, and a hint a student can act on."""

    def __init__(self, what, hint):
        super().__init__(what)
        self.what, self.hint = what, hint


def judged(judge, obs, expected):
    """judge(obs, expected): the PASS message or a Fail, whatever the observation holds."""
    try:
        return judge(obs, expected)
    except Fail as fail:
        return fail
    except Exception as error:  # a result so odd that the judge tripped over it
        return Fail(
            f"the check could not evaluate your result ({type(error).__name__}: {error})",
            "return a torch tensor shaped like X, as the task asks",
        )


def get(obs, key, default=None):
    """An observed value: a 0-d array as a Python scalar or str, others as arrays."""
    if key not in obs:
        return default
    value = numpy.asarray(obs[key])
    return value.item() if value.ndim == 0 else value


def rel(R, ref):
    """Relative L2 error of R against ref, in float64."""
    R, ref = numpy.asarray(R, dtype=numpy.float64), numpy.asarray(ref, dtype=numpy.float64)
    norm = numpy.linalg.norm(ref)
    if not norm:
        return 0.0 if not numpy.linalg.norm(R) else numpy.inf
    return float(numpy.linalg.norm(R - ref) / norm)


def first_match(R, candidates):
    """The diagnosis of the first (variant, what, hint) whose variant R is close to."""
    for variant, what, hint in candidates:
        if (
            variant is not None
            and numpy.shape(R) == numpy.shape(variant)
            and rel(R, variant) < NEAR
        ):
            raise Fail(what, hint)


STUB_HINT = "complete the task in the cell above: replace the line raise NotImplementedError"
_DTYPE_ERROR = re.compile(r"dtype|scalar type|(double|float).*(double|float)", re.IGNORECASE)


def raised(obs, key, what, hint, dtype_hint=None):
    """A Fail when the call observed under key raised. dtype_hint: the hint for an error about
    dtypes, or a function of (obs, key) that returns it."""
    error = get(obs, key + ".error")
    if error is None:
        return
    if get(obs, key + ".stub"):
        hint = STUB_HINT
    elif dtype_hint and _DTYPE_ERROR.search(error):
        hint = dtype_hint(obs, key) if callable(dtype_hint) else dtype_hint
    raise Fail(f"{what} raised {error}", hint)


def model_dtype_hint(fn, args):
    """dtype_hint for raised(): what the checks' model was handed (observe.model_input) tells
    converting dtypes (.float()) from computing with the notebook's own float32 model."""

    def hint(obs, key):
        seen = get(obs, key + ".model")
        if seen == "":
            return (
                f"use the arguments you are given {args}, not the notebook's globals: your "
                f"{fn} never ran the model it was given (the notebook's model is float32, the "
                "check's float64)"
            )
        return (
            f"do not convert dtypes inside {fn} (no .float()): the check runs it in float64 "
            "on a float64 X and model; compute in the dtype of the X you are given"
        )

    return hint


def _stored(name):
    """The public configuration's stored reference `name`, or None."""
    try:
        return cfg._arrays()[name]
    except Exception:
        return None


def _is_stored(R, name):
    public = _stored(name)
    return (
        R is not None and public is not None and R.shape == public.shape and rel(R, public) < NEAR
    )


def stored_public(R, name, what):
    if _is_stored(R, name):
        raise Fail(
            f"{what} is the self-check's stored reference (for the {cfg.CROP} x {cfg.CROP} "
            f"centre crop and class {sheet.CLASS}), not a result computed from the arguments",
            "compute the result from the arguments you are given; do not load or keep stored "
            "results",
        )


def shape_text(shape, like, names):
    """A shape as a verdict may show it, without a size a hidden configuration sets: a size
    of the expected shape ``like`` by its name (``names``, one per dimension: "H", or "3" for
    a size every configuration has), a product of adjacent ones (a flattened result) too,
    the notebook's image size as the number, any other size as ?."""
    named = {}
    for length in range(1, len(like) + 1):  # the shortest name first: 3, not 1*3
        for i in range(len(like) - length + 1):
            run = [k for k in range(i, i + length) if names[k] != "1"]
            if run:
                size = int(numpy.prod([like[k] for k in run]))
                named.setdefault(size, "*".join(names[k] for k in run))
    public = {int(n): n for n in names if n.isdigit()} | {cfg.SIZE: str(cfg.SIZE)}
    texts, offset = [], len(like) - len(shape)
    for i, size in enumerate(shape):
        if 0 <= i + offset < len(like) and size == like[i + offset]:
            texts.append(names[i + offset])  # where it belongs: H, not W, for the height
        else:
            texts.append(named.get(size) or public.get(size) or "?")
    return "(" + ", ".join(texts) + ("," if len(texts) == 1 else "") + ")"


#: the names of the sizes of X (and of results shaped like it) in verdicts: the crop's size
#: is the configuration's, hidden in grading
X_SHAPE = ("1", "3", "H", "W")


def tensor(obs, key, ref, what, dtype_hint, public=None):
    """The observed result under key as a float64 array, after checking type, shape, dtype and
    values against ref (shaped like X: its sizes are named, never shown)."""
    kind = get(obs, key + ".type")
    if kind != "Tensor":
        raise Fail(
            f"{what} is a {kind}, not a torch tensor",
            "return the relevance as a torch tensor shaped like X",
        )
    shape = tuple(get(obs, key + ".shape").reshape(-1).tolist())
    if shape != ref.shape:
        text, like = (
            shape_text(shape, ref.shape, X_SHAPE),
            shape_text(ref.shape, ref.shape, X_SHAPE),
        )
        if shape[-2:] == (cfg.SIZE, cfg.SIZE):
            raise Fail(
                f"{what} has shape {text}: it was computed on the notebook's {cfg.SIZE} x "
                f"{cfg.SIZE} X, not on the X it was given, shaped {like}",
                "use the argument X, not the notebook's X: the check gives your code a crop of "
                "the image, H x W pixels",
            )
        if public:
            stored_public(get(obs, key), public, what)
        raise Fail(
            f"{what} has shape {text}, but the X it was given has shape {like}",
            "return one score per input value, shaped like X: do not sum over the colour "
            "channels or drop the batch dimension",
        )
    dtype = get(obs, key + ".dtype")
    if dtype != "torch.float64":
        hint = dtype_hint(obs, key) if callable(dtype_hint) else dtype_hint
        raise Fail(f"{what} is {dtype}, but the input was torch.float64", hint)
    if key + ".diff" in obs:  # compared with an earlier result in the kernel
        return get(obs, key + ".diff")
    R = get(obs, key)
    if not numpy.isfinite(R).all():
        raise Fail(
            f"{what} contains NaN or inf",
            "look for a division by zero (a zp that is exactly 0) and keep it away from 0",
        )
    return R


# ---------------------------------------------------------------------------
# behaviour: the caller's tensors, another model, another class, a second call
# ---------------------------------------------------------------------------

FRESH_HINT = (
    "work on a fresh leaf: X = X.detach().requires_grad_(True) first (then the caller's X "
    "keeps its requires_grad and .grad, and X.grad starts empty on every call)"
)


def caller_unchanged(obs, key, fn, arg="X", given_grad=False):
    """A Fail when the code changed the caller's tensor (values, requires_grad, .grad; given
    one that carries a .grad)."""
    if get(obs, key + ".changed_values"):
        raise Fail(
            f"{fn} changed the values of the caller's {arg}",
            f"do not change {arg} in place (no {arg}.mul_(...), {arg} -= ..., {arg}.data = ...)",
        )
    rg, gr = get(obs, key + ".changed_requires_grad"), get(obs, key + ".changed_grad")
    if given_grad and (rg or gr):
        raise Fail(
            f"given an {arg} that requires grad and carries a .grad (left from an earlier "
            f"backward pass), {fn} changed that .grad: it backpropagates into the caller's {arg}",
            FRESH_HINT,
        )
    if rg or gr:
        changes = [f"{arg} now requires grad"] if rg else []
        changes += [f"{arg} now carries a .grad"] if gr else []
        again = f", so a second call on the same {arg} returns a different result" if gr else ""
        raise Fail(f"{fn} changed the caller's {arg} ({' and '.join(changes)}){again}", FRESH_HINT)


def behaviour(obs, R, tiny, tiny_c2, fn, model, args, dtype_hint):
    """After a right first result: the caller's X unchanged; on another (tiny) model a result
    of its own, the same twice on the same X, right, and right for another class c2; and
    right, leaving X alone, for an X that requires grad and carries a .grad."""
    caller_unchanged(obs, "R", fn)
    what = {"tiny": f"another {model}", "again": "a second call", "tiny_c2": "another class"}
    for key in ("tiny", "again", "tiny_c2"):
        raised(obs, key, f"{fn}{args} for {what[key]}", f"use only the arguments {args}")
    Rt = tensor(obs, "tiny", tiny, f"{fn}'s result for another {model}", dtype_hint)
    if rel(Rt, R) < NEAR:
        raise Fail(
            f"{fn} gives the same result for another {model}: it uses the notebook's "
            f"{model}, not the {model} it is given",
            f"compute with the arguments {args}, never with the notebook's globals",
        )
    diff = tensor(obs, "again", tiny, f"{fn}'s second result", dtype_hint)
    if not diff < TOL:
        raise Fail(
            f"a second call of {fn} on the same X gives a different result (relative "
            f"difference {diff:.2g})",
            "keep no state between calls (gradients, hooks, changed layers); " + FRESH_HINT,
        )
    if rel(Rt, tiny) >= TOL:
        raise Fail(
            f"{fn} is right for VGG-16 but wrong for another {model} (a small one shaped "
            f"like VGG-16; relative L2 error {rel(Rt, tiny):.2g})",
            f"compute with the arguments {args} only, nothing specific to one model",
        )
    Rc = tensor(obs, "tiny_c2", tiny_c2, f"{fn}'s result for another class", dtype_hint)
    if rel(Rc, Rt) < NEAR:
        raise Fail(
            f"{fn}'s result does not depend on c: it explains the notebook's class, not the "
            "class c it is given",
            "explain the class c you are given, not c1 or a fixed number",
        )
    if rel(Rc, tiny_c2) >= TOL:
        raise Fail(
            f"{fn} is right for one class but wrong for another (relative L2 error "
            f"{rel(Rc, tiny_c2):.2g})",
            "select the logit of the class c you are given: [0, c]",
        )
    raised(obs, "grad_input", f"{fn}{args} for an X that requires grad", FRESH_HINT)
    caller_unchanged(obs, "grad_input", fn, given_grad=True)
    diff = tensor(obs, "grad_input", tiny_c2, f"{fn}'s result", dtype_hint)
    if not diff < TOL:
        raise Fail(
            f"{fn} gives a different result for an X that already requires grad and carries "
            f"a .grad left from an earlier backward pass (relative difference {diff:.2g})",
            FRESH_HINT,
        )


def unexplained(obs, R, public, what, fn, model, args):
    """The last diagnoses of a wrong result no known mistake explains: a stored reference
    returned, an argument ignored, the caller's X changed (each a Fail)."""
    stored_public(R, public, what)
    arguments_used(obs, R, fn, model, args)
    caller_unchanged(obs, "R", fn)


def arguments_used(obs, R, fn, model, args):
    """For a wrong first result: a Fail when the code ignores its class or its model."""
    Rt, Rc = get(obs, "tiny"), get(obs, "tiny_c2")
    if Rt is None or Rc is None or Rt.shape != Rc.shape:
        return
    if rel(Rc, Rt) < NEAR:
        raise Fail(
            f"{fn}'s result does not depend on c: it explains the notebook's class (or a "
            "fixed one), not the class c it is given",
            "explain the class c you are given, not c1 or a fixed number",
        )
    if Rt.shape == R.shape and rel(Rt, R) < NEAR:
        raise Fail(
            f"{fn} gives the same result for another {model}: it uses the notebook's "
            f"{model}, not the {model} it is given",
            f"compute with the arguments {args}, never with the notebook's globals",
        )


def channel_sum(R):
    return R.sum(axis=1)[0]


# ---------------------------------------------------------------------------
# Exercise 3
# ---------------------------------------------------------------------------


def judge_input(obs, expected):
    """X is castle.jpg as VGG-16 expects it: 1 x 3 x 224 x 224, float32, RGB, normalised."""
    return judged(_input, obs, expected)


def _input(obs, exp):
    kind = get(obs, "X.type")
    if kind != "Tensor":
        raise Fail(
            f"X is a {kind}, not a torch tensor",
            "build X with torch, e.g. X = utils.normalize(img)",
        )
    shape = tuple(get(obs, "X.shape").reshape(-1).tolist())
    if len(shape) in (3, 4) and 2 in (shape[-3], shape[-1]):
        raise Fail(
            f"X has shape {shape}: two colour channels, one was dropped",
            "OpenCV reads B, G, R; [..., :-1] drops the red channel. Reverse the channel "
            "order with [..., ::-1] instead (utils.load_image does this)",
        )
    if shape == (1, cfg.SIZE, cfg.SIZE, 3):
        raise Fail(
            f"X has shape {shape}: channels last",
            "VGG-16 wants 1 x 3 x H x W: transpose with .transpose([0, 3, 1, 2]) "
            "(utils.normalize does this)",
        )
    if shape != (1, 3, cfg.SIZE, cfg.SIZE):
        raise Fail(
            f"X has shape {shape}, expected {(1, 3, cfg.SIZE, cfg.SIZE)}",
            "X is one image with a batch dimension: 1 x 3 x 224 x 224",
        )
    dtype = get(obs, "X.dtype")
    if dtype != "torch.float32":
        raise Fail(
            f"X is {dtype}, expected torch.float32 like VGG-16's weights",
            "build X with X = utils.normalize(img), which gives float32 (the sheet's "
            "torch.FloatTensor); only X is made float32 here, your functions never convert",
        )
    Xd = get(obs, "X").astype(numpy.float64)  # every fourth row and column
    mean = utils.MEAN.double().numpy()
    std = utils.STD.double().numpy()
    img = exp["castle_pixels"][::4, ::4].transpose(2, 0, 1)[None] / 255.0  # RGB in [0, 1]
    ref = ((img - mean) / std).astype(numpy.float32).astype(numpy.float64)
    # Up to DECODER_TOL: other JPEG decoders may round some pixels by a level or two.
    if rel(Xd, ref) < DECODER_TOL:
        return "X is castle.jpg as VGG-16 expects it (1x3x224x224 float32, RGB, normalised)"
    bgr = img[:, ::-1]
    constant = [k for k in range(3) if float(Xd[0, k].std()) < 1e-6]
    if constant:
        raise Fail(
            f"colour channel {constant[0]} of X is constant: a channel was dropped",
            "OpenCV reads B, G, R; reverse the order with [..., ::-1] rather than "
            "dropping a channel with [..., :-1]",
        )
    first_match(
        Xd,
        [
            (
                (bgr - mean) / std,
                "the colour channels are in B, G, R order",
                "OpenCV reads B, G, R but VGG-16 expects R, G, B: reverse with [..., ::-1]",
            ),
            (
                ref[:, ::-1],
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
    raise Fail(
        f"X differs from castle.jpg's normalised input (relative error {rel(Xd, ref):.2g})",
        "build X as the notebook's first cell does: utils.normalize(utils.load_image(...))",
    )


GXI = "gradient_x_input"
GXI_ARGS = "(model, X, c)"
GXI_DTYPE = model_dtype_hint(GXI, GXI_ARGS)


def judge_gradient_x_input(obs, expected):
    """gradient_x_input(model, X, c) returns R_i = x_i * df_c/dx_i, shaped like X."""
    return judged(_gradient_x_input, obs, expected)


def _gradient_x_input(obs, exp):
    raised(
        obs,
        "R",
        "gradient_x_input(model, X, c)",
        "make it work for any model, input and class given as arguments; test it in the cell above",
        GXI_DTYPE,
    )
    ref, X = exp["gxi"], exp["X"]
    R = tensor(obs, "R", ref, "gradient_x_input's result", GXI_DTYPE, public="gxi")
    error = rel(R, ref)
    if error < TOL:
        behaviour(obs, R, exp["gxi_tiny"], exp["gxi_tiny_c2"], GXI, "model", GXI_ARGS, GXI_DTYPE)
        return f"gradient_x_input matches the reference Gradient x Input ({PASS_TOL})"
    if not numpy.abs(R).sum():
        raise Fail(
            "the result is all zeros",
            "backpropagate from the logit model(X)[0, c] and multiply X by X.grad",
        )
    first_match(
        R * X,
        [
            (
                ref,
                "the result is the gradient alone, not gradient x input",
                "multiply the gradient by the input X",
            ),
        ],
    )
    first_match(
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
    first_match(
        channel_sum(R),
        [
            (
                exp["gxi_softmax_sum"],
                "you explained the softmax probability of class c",
                "explain the logit model(X)[0, c], the score before the softmax",
            ),
            (
                exp["gxi_top_sum"],
                "you explained the top class, not class c",
                "explain the neuron c you are given: model(X)[0, c]",
            ),
        ],
    )
    unexplained(obs, R, "gxi", "gradient_x_input's result", GXI, "model", GXI_ARGS)
    raise Fail(
        f"the result differs from the reference Gradient x Input (relative L2 error {error:.2g})",
        "let X require grad, backpropagate from the logit model(X)[0, c] only (no sum "
        "over classes, no softmax), and multiply X by its gradient",
    )
