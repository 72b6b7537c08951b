"""The solution notebooks' code and typical mistakes, for the self-check tests.

Each mistake is (code under test, words its FAIL line must contain ...). The tests run them
on the public configuration (the self-checks) and on drawn ones (grading).
"""

import ast
import copy
import functools
import sys

import nbformat
import numpy
import torch
import torch.nn.functional as F

import utils
from lrpkit import sheet
from lrpkit.authoring import solutions
from lrpkit.selfcheck import checks, config


def definitions(name):
    """The functions and classes the solution notebook `name` defines (its other code not run)."""
    nb = nbformat.read(solutions.SOLUTIONS / name, as_version=4)
    namespace = {"torch": torch, "utils": utils}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [line for line in cell.source.splitlines() if not line.startswith("%")]
        tree = ast.parse("\n".join(lines))
        defs = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
        exec(compile(ast.Module(defs, type_ignores=[]), name, "exec"), namespace)
    return namespace


EX3 = definitions("ex3_gradient_x_input.ipynb")
EX4 = definitions("ex4_lrp.ipynb")
ConvPx, Conv = EX4["ConvPx"], EX4["Conv"]
gradient_x_input, lrp_relevance = EX3["gradient_x_input"], EX4["lrp_relevance"]


@functools.cache
def notebook_model64():
    """A notebook's global `model` (frozen), in float64: a copy of the stand-in of its own."""
    return copy.deepcopy(config.float64_model()).eval()


@functools.cache
def notebook_model32():
    """A notebook's global `model` as the notebooks have it: the stand-in in float32."""
    return checks.standin().requires_grad_(False)


@functools.cache
def notebook_lrpmodel64():
    """A notebook's global `lrpmodel` (the sheet's), in float64."""
    model = notebook_model64()
    shared = {id(p): p for p in model.classifier.parameters()}
    return sheet_lrpmodel(copy.deepcopy(model, memo=shared))


def sheet_lrpmodel(model, gammas=None, ConvPx=ConvPx, Conv=Conv):
    """model (changed in place) with ConvPx on features[0] and Conv(features[i], gamma) on the
    others, the sheet's gammas unless gammas ({index: gamma}) says otherwise."""
    features = model.features
    features[0] = ConvPx(features[0])
    for i, gamma in (gammas or sheet.layer_gammas()).items():
        features[i] = Conv(features[i], gamma)
    return model.eval()


def stored(name):
    """A stored reference of the public configuration, as a tensor."""
    with numpy.load(checks.REFERENCE / "expected.npz") as npz:
        return torch.from_numpy(npz[name])


# ---------------------------------------------------------------------------
# Exercise 3
# ---------------------------------------------------------------------------


def chatty(model, X, c):
    """Correct, but prints and warns: the check must still print one line."""
    print("debugging output")
    print("to stderr", file=sys.stderr)
    import warnings

    warnings.warn("a student's warning", stacklevel=1)
    return gradient_x_input(model, X, c).detach()


def top_class(model, X, c):
    with torch.no_grad():
        top = int(model(X).argmax())
    return gradient_x_input(model, X, top)


def gradient_only(model, X, c):
    X = X.detach().requires_grad_(True)
    model(X)[0, c].backward()
    return X.grad


def on_the_callers_X(model, X, c):
    """The sheet's X.requires_grad_(True): X.grad adds up over calls on the same X."""
    X.requires_grad_(True)
    model.forward(X)[0, c].backward()
    return X * X.grad


def on_a_leaf_given(model, X, c):
    """Right for a plain X; backpropagates into the caller's X when it requires grad."""
    if not X.requires_grad:
        X = X.detach().requires_grad_(True)
    model.forward(X)[0, c].backward()
    return X * X.grad


def clears_the_callers_grad(model, X, c):
    """Right results, but zeroes the .grad the caller's X carries."""
    X = X if X.requires_grad else X.detach().requires_grad_(True)
    if X.grad is not None:
        X.grad.zero_()
    model.forward(X)[0, c].backward()
    return X * X.grad


def keeps_a_leaf(model, X, c):
    """Keeps its leaf on the input tensor: its gradient adds up on a second call."""
    if not hasattr(X, "leaf"):
        X.leaf = X.detach().requires_grad_(True)
    model.forward(X.leaf)[0, c].backward()
    return X.leaf.detach() * X.leaf.grad


def rescales_X(model, X, c):
    """Right result, then rescales the caller's X in place."""
    R = gradient_x_input(model, X, c)
    X.mul_(2)
    return R


def notebook_X(model, X, c):
    """Uses the notebook's 224 x 224 X (its result stood in by a tensor of that shape)."""
    return torch.ones(1, 3, 224, 224, dtype=X.dtype)


GXI_MISTAKES = {
    "float32": (lambda m, X, c: gradient_x_input(m, X, c).float(), "is torch.float32"),
    "gradient only": (gradient_only, "the gradient alone"),
    "channel sum": (
        lambda m, X, c: gradient_x_input(m, X, c).sum(1),
        "has shape (1, H, W), but the X it was given has shape (1, 3, H, W)",
        "do not sum over the colour channels",
    ),
    "softmax": (
        lambda m, X, c: gradient_x_input(torch.nn.Sequential(m, torch.nn.Softmax(1)), X, c),
        "softmax probability",
    ),
    "top class": (top_class, "the top class"),
    "sign": (lambda m, X, c: -gradient_x_input(m, X, c), "wrong sign"),
    "raises": (lambda m, X, c: 1 / 0, "raised ZeroDivisionError: division by zero"),
    "stub": (
        lambda m, X, c: exec("raise NotImplementedError('Exercise 3')"),
        "raised NotImplementedError: Exercise 3",
        "Hint: complete the task",
    ),
    "numpy": (lambda m, X, c: gradient_x_input(m, X, c).detach().numpy(), "not a torch tensor"),
    "globals": (lambda m, X, c: gradient_x_input(m.float(), X.float(), c), "float32"),
    "float32 model": (
        lambda m, X, c: gradient_x_input(notebook_model32(), X, c),
        "raised RuntimeError",
        "(model, X, c)",
        "never ran the model it was given",
    ),
    "twice": (on_the_callers_X, "changed the caller's X", "second call", "X.detach()"),
    "requires-grad input": (
        on_a_leaf_given,
        "given an X that requires grad and carries a .grad",
        "backpropagates into the caller's X",
        "X.detach()",
    ),
    "carries a .grad": (clears_the_callers_grad, "changed that .grad", "X.detach()"),
    "keeps state": (keeps_a_leaf, "second call of gradient_x_input on the same X"),
    "changes X": (rescales_X, "changed the values of the caller's X"),
    "notebook X": (notebook_X, "notebook's 224 x 224 X, not on the X", "use the argument X"),
    "notebook c": (
        lambda m, X, c: gradient_x_input(m, X, sheet.CLASS),
        "does not depend on c",
        "not c1",
    ),
    "notebook model": (
        lambda m, X, c: gradient_x_input(notebook_model64(), X, c),
        "same result for another model",
    ),
}
#: correct Gradient x Input written other ways than the sheet's (each must earn full marks):
#: the gradient by torch.func (grad, vjp, jacrev), torch.autograd.grad and autograd.functional
GXI_VARIANTS = {
    "torch.func.grad": lambda m, X, c: X * torch.func.grad(lambda x: m(x)[0, c])(X),
    "torch.func.vjp": lambda m, X, c: (
        X * torch.func.vjp(lambda x: m(x)[0, c], X)[1](torch.ones((), dtype=X.dtype))[0]
    ),
    "torch.func.jacrev": lambda m, X, c: X * torch.func.jacrev(lambda x: m(x)[0, c])(X),
    "torch.autograd.grad": lambda m, X, c: (lambda x: x * torch.autograd.grad(m(x)[0, c], x)[0])(
        X.detach().requires_grad_(True)
    ).detach(),
    "autograd.functional.vjp": lambda m, X, c: (
        X * torch.autograd.functional.vjp(lambda x: m(x)[0, c], X)[1]
    ),
}
#: mistakes only a configuration other than the public one reveals
GXI_HIDDEN_MISTAKES = {
    "stored result": (lambda m, X, c: stored("gxi"), "stored reference"),
}


# ---------------------------------------------------------------------------
# Exercise 4
# ---------------------------------------------------------------------------


def conv_class(rho=lambda p, g: p + g * p.clamp(min=0), combine=None, init=None):
    """A Conv class like the notebook's, with one piece replaced by a mistake."""
    combine = combine or (lambda z, zp: zp * (z / zp).detach())

    class Conv(torch.nn.Module):
        def __init__(self, conv, gamma):
            torch.nn.Module.__init__(self)
            if init:
                init(conv, gamma)
            self.conv = conv
            self.pconv = utils.newlayer(conv, lambda p: rho(p, gamma))

        def forward(self, X):
            return combine(self.conv.forward(X), self.pconv.forward(X))

    return Conv


class SheetConvPx(ConvPx):
    """The sheet's ConvPx: no stabiliser."""

    def forward(self, X):
        X, L, H = X
        z = self.conv.forward(X)
        zp = z - self.pconv.forward(L) - self.nconv.forward(H)
        return zp * (z / zp).data


class GammaInForward(torch.nn.Module):
    """Applies gamma to its copy's weights in place on every forward pass."""

    def __init__(self, conv, gamma):
        super().__init__()
        self.conv, self.gamma = conv, gamma
        self.pconv = utils.newlayer(conv, lambda p: p)

    def forward(self, X):
        with torch.no_grad():
            for p in self.pconv.parameters():
                p += self.gamma * p.clamp(min=0)
        z, zp = self.conv(X), self.pconv(X)
        return zp * (z / zp).detach()


class SharedGamma(torch.nn.Module):
    """Keeps gamma on the class: every layer uses the last one built."""

    def __init__(self, conv, gamma):
        super().__init__()
        self.conv = conv
        SharedGamma.gamma = gamma

    def forward(self, X):
        g = SharedGamma.gamma
        z = self.conv(X)
        zp = F.conv2d(
            X,
            self.conv.weight + g * self.conv.weight.clamp(min=0),
            self.conv.bias + g * self.conv.bias.clamp(min=0),
            padding=self.conv.padding,
        )
        return zp * (z / zp).detach()


def _stub(conv, gamma):
    raise NotImplementedError("Exercise 4 -- build self.pconv")


def _inplace(conv, gamma):
    conv.weight.data.clamp_(min=0)


CONV_MISTAKES = {
    "not detached": (
        conv_class(combine=lambda z, zp: zp * (z / zp)),
        ConvPx,
        "z / zp, which is not detached",
    ),
    "gamma on all weights": (
        conv_class(rho=lambda p, g: p + g * p),
        ConvPx,
        "negative weights too",
    ),
    "gamma on negative weights": (
        conv_class(rho=lambda p, g: p + g * p.clamp(max=0)),
        ConvPx,
        "gamma is applied to the negative weights.",
    ),
    "gamma not on bias": (
        conv_class(rho=lambda p, g: p + g * p.clamp(min=0) if p.dim() > 1 else p),
        ConvPx,
        "not to the bias",
    ),
    "gamma ignored": (
        conv_class(rho=lambda p, g: p + 0.1 * p.clamp(min=0)),
        ConvPx,
        "ignores its gamma",
    ),
    "returns zp": (conv_class(combine=lambda z, zp: zp), ConvPx, "is zp, but its value"),
    "no ratio": (conv_class(combine=lambda z, zp: zp + (z - zp).detach()), ConvPx, "without"),
    "all detached": (conv_class(combine=lambda z, zp: z.detach()), ConvPx, "all is detached"),
    "float32": (
        conv_class(combine=lambda z, zp: (zp * (z / zp).detach()).float()),
        ConvPx,
        "float32",
        "inside Conv",
    ),
    "shape": (
        conv_class(combine=lambda z, zp: (zp * (z / zp).detach())[:, :1]),
        ConvPx,
        "has shape (1, 1, H, W), but the layer's own output has shape (1, C, H, W)",
    ),
    "stub": (
        conv_class(init=_stub),
        ConvPx,
        "raised NotImplementedError: Exercise 4",
        "Hint: complete the task",
    ),
    "in-place weights": (conv_class(init=_inplace), ConvPx, "changed the weights"),
    "sheet's ConvPx": (Conv, SheetConvPx, "NaN where zp is exactly 0"),
    "not a module": (lambda conv, gamma: 0, ConvPx, "raised TypeError"),
    "gamma in forward": (GammaInForward, ConvPx, "second call of Conv.forward"),
    "gamma shared": (SharedGamma, ConvPx, "whole LRP model differs"),
}


def relevance_with(terms):
    """lrp_relevance returning only some of the terms X dX, L dL, H dH (with signs)."""

    def lrp_relevance(lrpmodel, X, c):
        L, H = utils.bounds(X)
        X, L, H = (t.detach().requires_grad_(True) for t in (X, L, H))
        lrpmodel.forward((X, L, H))[0, c].backward()
        parts = {"X": X * X.grad, "L": L * L.grad, "H": H * H.grad}
        return sum(sign * parts[name] for name, sign in terms.items())

    return lrp_relevance


def relevance_on_the_callers_X(lrpmodel, X, c):
    """The sheet's X.requires_grad_(True) on the caller's X."""
    L, H = utils.bounds(X)
    X.requires_grad_(True)
    L.requires_grad_(True)
    H.requires_grad_(True)
    lrpmodel.forward((X, L, H))[0, c].backward()
    return X * X.grad + L * L.grad + H * H.grad


RELEVANCE_MISTAKES = {
    "L and H missing": (relevance_with({"X": 1}), "L * L.grad + H * H.grad are missing"),
    "H missing": (relevance_with({"X": 1, "L": 1}), "H * H.grad is missing"),
    "L missing": (relevance_with({"X": 1, "H": 1}), "L * L.grad is missing"),
    "subtracted": (relevance_with({"X": 1, "L": -1, "H": -1}), "subtracted"),
    "channel sum": (lambda m, X, c: lrp_relevance(m, X, c).sum(1), "shape (1, "),
    "float32": (
        lambda m, X, c: lrp_relevance(m, X, c).float(),
        "torch.float32",
        "inside lrp_relevance (no .float())",
    ),
    "raises": (lambda m, X, c: m.forward(X), "raised"),
    "twice": (relevance_on_the_callers_X, "changed the caller's X", "second call"),
    "notebook c": (lambda m, X, c: lrp_relevance(m, X, sheet.CLASS), "does not depend on c"),
    "notebook lrpmodel": (
        lambda m, X, c: lrp_relevance(notebook_lrpmodel64(), X, c),
        "same result for another lrpmodel",
    ),
}
RELEVANCE_HIDDEN_MISTAKES = {
    "stored result": (lambda m, X, c: stored("rel"), "stored reference"),
}


# ---------------------------------------------------------------------------
# lrpmodel
# ---------------------------------------------------------------------------


class NoBounds(ConvPx):
    """features[0] that ignores L and H: the plain gradient."""

    def forward(self, X):
        return self.conv.forward(X[0])


def block_gammas(gammas):
    """{features index: gamma} with one gamma per block 1-5."""
    return {i: gammas[sheet.block_of(i) - 1] for i in sheet.layer_gammas()}


G = sheet.GAMMAS
LRPMODEL_MISTAKES = {
    # name: (gammas {index: gamma}, ConvPx, Conv, words)
    "reversed schedule": (
        block_gammas(G[::-1]),
        ConvPx,
        Conv,
        "features[2] behaves like LRP-gamma with gamma 0.01 (block 5's), expected 1 (block 1)",
        "and 8 more",
    ),
    "block 3 gets block 4's gamma": (
        block_gammas((G[0], G[1], G[3], G[3], G[4])),
        ConvPx,
        Conv,
        "features[10] behaves like LRP-gamma with gamma 0.0316 (block 4's), expected 0.1 (block 3)",
        "and 2 more",
    ),
    "one layer off the sheet": (
        sheet.layer_gammas() | {19: 0.5},
        ConvPx,
        Conv,
        "features[19] behaves like LRP-gamma with gamma 0.5, expected 0.0316 (block 4)",
    ),
    "gamma 0 in block 2": (
        block_gammas((G[0], 0.0, G[2], G[3], G[4])),
        ConvPx,
        Conv,
        "features[5] passes the plain gradient",
    ),
    "not detached": (
        None,
        ConvPx,
        conv_class(combine=lambda z, zp: zp * (z / zp)),
        "features[2] passes the plain gradient",
        "not detached",
    ),
    "gamma on negative weights": (
        None,
        ConvPx,
        conv_class(rho=lambda p, g: p + g * p.clamp(max=0)),
        "features[2] applies gamma to the negative weights",
    ),
    "no z^B": (None, NoBounds, Conv, "features[0] passes the plain gradient", "ConvPx"),
    "LRP-gamma first": (
        None,
        lambda conv: Conv(conv, 1.0),
        Conv,
        "features[0] fails when given (X, L, H)",
    ),
}
