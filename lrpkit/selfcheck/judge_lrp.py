"""The checks' second half for Exercise 4: judge observations of Conv, lrpmodel, lrp_relevance.

Students get this module with the self-checks (``lrpkit.selfcheck.checks``); see
``lrpkit.selfcheck.judge``.
The rule probes of lrpmodel's convolutions are judged from the observation alone: the
layer's centre tap and bias, read off its forward values, give LRP-gamma's gradient for any
gamma, so the judge tells which gamma (if any) a layer applies.
"""

import numpy

from lrpkit import sheet
from lrpkit.selfcheck.judge import (
    LAYER_TOL,
    NEAR,
    PASS_TOL,
    TOL,
    Fail,
    behaviour,
    caller_unchanged,
    channel_sum,
    first_match,
    get,
    judged,
    model_dtype_hint,
    raised,
    rel,
    shape_text,
    tensor,
    unexplained,
)

RESTORE_CONVPX = "re-run the given ConvPx cell unchanged (it also stabilises zp)"
CONV_HINT = (
    "z is the layer's output, zp the output of a copy whose weights are w + gamma * w^+ "
    "(utils.newlayer); return zp times the ratio z / zp detached, like ConvPx does"
)
CONV_DTYPE = (
    "do not convert dtypes inside Conv (no .float()): build self.pconv from the layer you are "
    "given with utils.newlayer and apply both layers to the input as it is; the check runs "
    "Conv in float64"
)
REL = "lrp_relevance"
REL_ARGS = "(lrpmodel, X, c)"
REL_DTYPE = model_dtype_hint(REL, REL_ARGS)


def _convpx(obs, exp):
    """The given ConvPx on its probe: the output z, finite where zp = 0, the z^B relevance."""
    raised(obs, "px", "ConvPx(conv)", RESTORE_CONVPX)
    raised(obs, "px.forward", "ConvPx.forward((X, L, H))", RESTORE_CONVPX)
    z = exp["px_z"]
    out = get(obs, "px.out")
    if out is None or out.shape != z.shape:
        raise Fail("ConvPx does not return the convolution's output", RESTORE_CONVPX)
    if not numpy.isfinite(out).all():
        raise Fail(
            "ConvPx's output has NaN where zp is exactly 0 (a patch at the pixel bounds)",
            "keep zp away from zero before dividing, as the given ConvPx does",
        )
    if rel(out, z) > TOL or not get(obs, "px.out.requires_grad"):
        raise Fail("ConvPx's output is not z = conv(X)", RESTORE_CONVPX)
    raised(obs, "px.backward", "backpropagating through ConvPx", RESTORE_CONVPX)
    R = get(obs, "px.R")
    if R is None or not numpy.isfinite(R).all() or rel(R, exp["px_R"]) > TOL:
        raise Fail("ConvPx does not propagate the z^B rule of the given code", RESTORE_CONVPX)


def _conv_output(obs, key, exp):
    """Conv's output on the probe: a float64 tensor, the layer's z, attached to the graph."""
    error = get(obs, key + ".forward.error") or ""
    if "unpack" in error:  # X, L, H = X, copied from ConvPx
        raise Fail(
            f"Conv.forward(X) raised {error}: Conv receives one tensor, the activations, not "
            "the tuple (X, L, H)",
            "only ConvPx, the first layer, gets (X, L, H); in Conv.forward, X is one tensor: "
            "z = self.conv.forward(X)",
        )
    raised(obs, key + ".forward", "Conv.forward(X)", CONV_HINT, CONV_DTYPE)
    z, what = exp["conv_z"], "Conv's output"
    kind = get(obs, key + ".out.type")
    if kind != "Tensor":
        raise Fail(f"{what} is a {kind}, not a tensor", CONV_HINT)
    shape = tuple(get(obs, key + ".out.shape").reshape(-1).tolist())
    if shape != z.shape:
        names = ("1", "C", "H", "W")  # the probe's sizes are the configuration's, hidden
        raise Fail(
            f"{what} has shape {shape_text(shape, z.shape, names)}, but the layer's own output "
            f"has shape {shape_text(z.shape, z.shape, names)}, C its output channels",
            "apply the layer you are given (self.conv) and its copy to the same input "
            "(utils.newlayer keeps the layer's stride and padding)",
        )
    dtype = get(obs, key + ".out.dtype")
    if dtype != "torch.float64":
        raise Fail(f"{what} is {dtype}, but its input was torch.float64", CONV_DTYPE)
    out = get(obs, key + ".out")
    if not numpy.isfinite(out).all():
        raise Fail(f"{what} contains NaN or inf", "look for a division by zero in z / zp")
    if rel(out, z) > TOL:
        first_match(
            out,
            [
                (
                    exp["conv_zp"],
                    f"{what} is zp, but its value must be z (the layer's own output)",
                    "multiply zp by the detached ratio z / zp: the value of z with the "
                    "gradient of zp",
                ),
            ],
        )
        raise Fail(f"{what} is not the layer's output z = conv(X)", CONV_HINT)
    if not get(obs, key + ".out.requires_grad"):
        raise Fail(
            f"{what} does not depend on X through autograd: all is detached",
            "detach only the ratio z / zp, so the gradient flows through zp",
        )
    raised(obs, key + ".backward", "backpropagating through Conv", CONV_HINT)
    return get(obs, key + ".grad")


def _conv_probe(obs, exp):
    raised(
        obs,
        "conv",
        "Conv(conv, gamma)",
        "build it from the layer and gamma you are given",
        CONV_DTYPE,
    )
    if get(obs, "conv.changed_weights"):
        raise Fail(
            "Conv changed the weights of the layer it was given",
            "make newlayer's g return a new tensor (p.clamp(min=0), not p.clamp_(min=0))",
        )
    g = _conv_output(obs, "conv", exp)
    if rel(g, exp["conv_grad"]) >= TOL:
        if rel(g, exp["conv_grad_plain"]) < NEAR:
            if get(obs, "conv.divides"):
                raise Fail(
                    "relevance flows through the ratio z / zp, which is not detached, so Conv "
                    "passes the plain gradient",
                    "treat the ratio as a constant: detach z / zp (.detach()), as ConvPx does",
                )
            raise Fail(
                "Conv passes the plain gradient: gamma is applied to the negative weights too "
                "(w + gamma * w only rescales z) or not at all",
                "LRP-gamma boosts the positive weights only: w + gamma * w^+, with "
                "w^+ = max(0, w) (see how ConvPx clamps)",
            )
        wrong = [
            (
                exp[f"conv_grad_gamma{k}"],
                f"Conv ignores its gamma argument (it uses {gamma:.3g})",
                "use the gamma passed to Conv(conv, gamma)",
            )
            for k, gamma in enumerate(exp["conv_wrong_gammas"].tolist())
        ]
        first_match(
            g,
            [
                (
                    exp["conv_grad_neg"],
                    "gamma is applied to the negative weights",
                    "LRP-gamma boosts the positive weights: w + gamma * w^+, w^+ = max(0, w)",
                ),
                (
                    exp["conv_grad_nobias"],
                    "gamma is applied to the weights but not to the bias",
                    "transform the bias like the weights (utils.newlayer's g does both)",
                ),
                (
                    exp["conv_grad_zp"],
                    "the gradient is zp's, without the ratio z / zp",
                    "multiply zp by the detached ratio z / zp (LRP divides by zp)",
                ),
                *wrong,
            ],
        )
        ignores_gamma(obs)
        raise Fail(
            f"Conv's gradient differs from LRP-gamma's (relative L2 error "
            f"{rel(g, exp['conv_grad']):.2g})",
            CONV_HINT,
        )
    ignores_gamma(obs)
    if get(obs, "conv.changed_weights_forward"):
        raise Fail(
            "Conv.forward changed the weights of the layer it was given",
            "compute z and zp without changing any layer's weights",
        )
    caller_unchanged(obs, "conv", "Conv.forward", given_grad=True)
    g2 = _conv_output(obs, "conv.again", exp)
    if rel(get(obs, "conv.again.out"), get(obs, "conv.out")) >= TOL or rel(g2, g) >= TOL:
        raise Fail(
            "a second call of Conv.forward on the same input gives a different result",
            "keep Conv.forward free of side effects: no state kept or changed between calls",
        )


def ignores_gamma(obs):
    """A Fail when Conv built with another gamma passes the same gradient."""
    diff = get(obs, "conv.gamma2.diff")
    if diff is not None and diff < NEAR:
        raise Fail(
            "Conv ignores its gamma argument: built with another gamma, it passes the same "
            "gradient (a fixed gamma inside Conv?)",
            "use the gamma passed to Conv(conv, gamma) in the weights w + gamma * w^+",
        )


def judge_conv(obs, expected):
    """Conv(conv, gamma) implements LRP-gamma by the gradient trick; the LRP model built
    with it and the configuration's gamma per layer gives the reference relevance."""
    return judged(_conv, obs, expected)


def _conv(obs, exp):
    _convpx(obs, exp)
    _conv_probe(obs, exp)
    raised(
        obs,
        "model",
        "building the LRP model (ConvPx(features[0]), Conv(features[i], gamma))",
        "ConvPx and Conv must be torch.nn.Module subclasses built from a layer",
        CONV_DTYPE,
    )
    raised(obs, "R", "the LRP model with your Conv", CONV_HINT, CONV_DTYPE)
    R = tensor(obs, "R", exp["lrp"], "the relevance with your Conv", CONV_DTYPE)
    error = rel(R, exp["lrp"])
    if error < TOL:
        return f"Conv implements LRP-gamma; LRP relevance matches the reference ({PASS_TOL})"
    first_match(
        channel_sum(R),
        [(channel_sum(exp["zb"]), "the Conv layers pass the plain gradient", CONV_HINT)],
    )
    raise Fail(
        f"Conv passes the layer test, but the relevance of the whole LRP model differs "
        f"(relative L2 error {error:.2g})",
        "keep everything on self (not on the class): each Conv has its own layer and "
        "gamma; use the layer's own stride and padding (newlayer copies them)",
    )


# ---------------------------------------------------------------------------
# lrpmodel: the rule of each convolution
# ---------------------------------------------------------------------------


def gamma_gradient(W, b, a, s, gamma, weights=lambda p: p.clip(min=0), bias=True):
    """The gradient LRP-gamma passes on a 1 x 1 input a for cotangent s: W_rho^T (s z / zp),
    W_rho = W + gamma * weights(W) (the bias alike unless bias is False)."""
    Wr = W + gamma * weights(W)
    br = b + gamma * weights(b) if bias else b
    return Wr.T @ (s * (W @ a + b) / (Wr @ a + br))


def zb_gradients(W, b, X, L, H, s):
    """The gradients the z^B rule passes to X, L and H on 1 x 1 inputs."""
    Wp, Wn, bp, bn = W.clip(min=0), W.clip(max=0), b.clip(min=0), b.clip(max=0)
    z = W @ X + b
    ratio = s * z / (z - (Wp @ L + bp) - (Wn @ H + bn))
    return numpy.concatenate([W.T @ ratio, -Wp.T @ ratio, -Wn.T @ ratio])


def fit_gamma(g, W, b, a, s):
    """(gamma, error): the gamma in [1e-4, 100] whose LRP-gamma gradient is nearest to g."""
    err = lambda log: rel(g, gamma_gradient(W, b, a, s, 10**log))  # noqa: E731
    grid = numpy.linspace(-4, 2, 241)
    k = int(numpy.argmin([err(x) for x in grid]))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    for _ in range(60):  # golden section
        m1, m2 = hi - 0.618 * (hi - lo), lo + 0.618 * (hi - lo)
        lo, hi = (lo, m2) if err(m1) < err(m2) else (m1, hi)
    return 10 ** ((lo + hi) / 2), err((lo + hi) / 2)


def _block(gamma):
    """' (block k's)' when gamma is the sheet's gamma of block k, else ''."""
    for k, g in enumerate(sheet.GAMMAS, 1):
        if abs(gamma - g) <= 1e-3 * g:
            return f" (block {k}'s)"
    return ""


def layer_problem(obs, i):
    """What is wrong with the rule of lrpmodel.features[i], or None."""
    key, first = f"L{i}", i == sheet.FIRST
    error = get(obs, key + ".error")
    if error is not None:
        given = "(X, L, H)" if first else "a tensor"
        return f"lrpmodel.features[{i}] fails when given {given} ({error})"
    W, b, s, z = (get(obs, f"{key}.{n}") for n in "Wbsz")
    x = get(obs, key + ".X" if first else key + ".a")
    if rel(z, W @ x + b) > LAYER_TOL:
        return f"lrpmodel.features[{i}]'s output is not its convolution's output z"
    if first:
        X, L, H = (get(obs, f"{key}.{n}") for n in "XLH")
        g = numpy.concatenate([get(obs, f"{key}.g{n}") for n in "XLH"])
        if rel(g, zb_gradients(W, b, X, L, H, s)) < LAYER_TOL:
            return None
        plain = numpy.concatenate([W.T @ s, 0 * L, 0 * H])
        if rel(g, plain) < LAYER_TOL:
            return "lrpmodel.features[0] passes the plain gradient: it does not implement z^B"
        return "lrpmodel.features[0] does not implement the z^B rule"
    g, block = get(obs, key + ".ga"), sheet.block_of(i)
    gamma = sheet.GAMMAS[block - 1]
    if rel(g, gamma_gradient(W, b, x, s, gamma)) < LAYER_TOL:
        return None
    expected = f"expected {gamma:.3g} (block {block})"
    if rel(g, W.T @ s) < LAYER_TOL:
        return (
            f"lrpmodel.features[{i}] passes the plain gradient (gamma not applied, applied to "
            f"all weights alike, or z / zp not detached), {expected}"
        )
    if rel(g, gamma_gradient(W, b, x, s, gamma, lambda p: p.clip(max=0))) < LAYER_TOL:
        return f"lrpmodel.features[{i}] applies gamma to the negative weights"
    if rel(g, gamma_gradient(W, b, x, s, gamma, bias=False)) < LAYER_TOL:
        return f"lrpmodel.features[{i}] applies gamma to the weights but not to the bias"
    fitted, error = fit_gamma(g, W, b, x, s)
    if error < 10 * LAYER_TOL:
        return (
            f"lrpmodel.features[{i}] behaves like LRP-gamma with gamma {fitted:.3g}"
            f"{_block(fitted)}, {expected}"
        )
    return f"lrpmodel.features[{i}] is not LRP-gamma with its block's gamma, {expected}"


def judge_lrpmodel(obs, expected=None):
    """lrpmodel has the sheet's layers -- the z^B rule on features[0], LRP-gamma with each
    block's gamma on the others --, the dense layers intact, and dropout off."""
    return judged(_lrpmodel, obs, expected)


def _lrpmodel(obs, exp):
    if not get(obs, "module"):
        raise Fail(
            f"lrpmodel is a {get(obs, 'type')}, not a torch model",
            "build lrpmodel as the cell above does",
        )
    if get(obs, "model.same") or get(obs, "model.changed"):
        which = "is the notebook's model itself" if get(obs, "model.same") else "was built"
        raise Fail(
            f"lrpmodel {which}, changed in place: model now has LRP layers too, so later cells "
            "that use model (Gradient x Input, the comparison figure, the explorer) explain "
            "with LRP",
            "build lrpmodel as a model of its own, lrpmodel = utils.load_vgg16() as the sheet "
            "does, and leave model as it is (re-run the notebook from the top)",
        )
    on = get(obs, "dropout_on")
    if on:
        raise Fail(
            f"lrpmodel is in training mode: its dropout layers ({on}) are on, so every run "
            "drops random units and the relevance changes from run to run",
            "call lrpmodel.eval() (the sheet's model.eval() switches the other model)",
        )
    if not get(obs, "features.vgg"):
        raise Fail("lrpmodel.features is not VGG-16's", "build lrpmodel from VGG-16")
    convs = [i for layers in sheet.BLOCKS for i in layers]
    for i, name in enumerate(get(obs, "features.types").split(",")):
        if i in convs:
            want = "ConvPx" if i == sheet.FIRST else "Conv"
            wrong = name == "Conv2d"
        else:
            want = "MaxPool2d" if i in sheet.POOLS else "ReLU"
            wrong = name != want
        if wrong:
            raise Fail(
                f"lrpmodel.features[{i}] is a {name}, expected {want}",
                "replace features[0] by ConvPx and the other convolutions by Conv with "
                "the sheet's gamma per block, and nothing else",
            )
    if get(obs, "classifier.types").split(",")[0::3] != ["Linear"] * 3:
        raise Fail(
            "the dense layers of lrpmodel were changed",
            "leave lrpmodel.classifier intact: its gradient flows as it is",
        )
    problems = [p for p in (layer_problem(obs, i) for i in convs) if p]
    if problems:
        more = len(problems) - 1
        schedule = ", ".join(f"block {k} {g:.3g}" for k, g in enumerate(sheet.GAMMAS, 1))
        first = problems[0] + (f" (and {more} more of the 13 convolutions)" if more else "")
        if "features[0]" in problems[0]:
            raise Fail(first, "features[0] must be ConvPx(features[0]), the given z^B layer")
        raise Fail(
            first,
            "replace each convolution i > 0 by Conv(features[i], gamma) with its block's "
            f"gamma ({schedule}), Conv implementing LRP-gamma",
        )
    return (
        "lrpmodel is in eval mode (dropout off), with ConvPx on features[0], Conv on the "
        "12 other convolutions and the dense layers intact"
    )


# ---------------------------------------------------------------------------
# lrp_relevance
# ---------------------------------------------------------------------------


def judge_relevance(obs, expected):
    """lrp_relevance(lrpmodel, X, c) returns the extended Gradient x Input
    R = X * dX + L * dL + H * dH, shaped like X."""
    return judged(_relevance, obs, expected)


def _relevance(obs, exp):
    _convpx(obs, exp)
    raised(obs, "model", "building the LRP model with your ConvPx", RESTORE_CONVPX)
    raised(
        obs,
        "R",
        "lrp_relevance(lrpmodel, X, c)",
        "make it work for any LRP model, input and class given as arguments",
        REL_DTYPE,
    )
    ref = exp["rel"]
    R = tensor(obs, "R", ref, "lrp_relevance's result", REL_DTYPE, public="rel")
    error = rel(R, ref)
    if error < TOL:
        behaviour(obs, R, exp["zb_tiny"], exp["zb_tiny_c2"], REL, "lrpmodel", REL_ARGS, REL_DTYPE)
        return f"R = X*dX + L*dL + H*dH matches the reference ({PASS_TOL})"
    x, l, h = exp["rel_x_sum"], exp["rel_l_sum"], exp["rel_h_sum"]  # noqa: E741
    first_match(
        channel_sum(R),
        [
            (
                x,
                "the terms L * L.grad + H * H.grad are missing",
                "the bounds are inputs of the first layer too: R = X dX + L dL + H dH",
            ),
            (x + l, "the term H * H.grad is missing", "add H * H.grad"),
            (x + h, "the term L * L.grad is missing", "add L * L.grad"),
            (l + h, "the term X * X.grad is missing", "add X * X.grad"),
            (x - l - h, "L * L.grad and H * H.grad are subtracted", "add them: all terms count"),
        ],
    )
    unexplained(obs, R, "rel", "lrp_relevance's result", REL, "lrpmodel", REL_ARGS)
    raise Fail(
        f"the relevance differs from the reference (relative L2 error {error:.2g})",
        "let X, L and H require grad, backpropagate from the LRP model's logit of class c "
        "and return the extended Gradient x Input X dX + L dL + H dH",
    )
