"""The self-checks and their stored references (lrpkit.checks, lrpkit.references).

The references must equal a fresh computation by the reference implementation and by
explicit, literal formulas; each check must pass the solution notebooks' code and fail each
typical mistake with its own diagnosis, in exactly one line, without raising.
"""

import ast
import copy
import json
import subprocess
import sys

import nbformat
import numpy
import pytest
import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input

import utils
from lrpkit import checks, lrp, sheet, solutions
from lrpkit.references import FILES

#: stored float64 references against a fresh computation on this machine (relative L2).
FRESH_TOL = 1e-7
#: the shape of a relevance summed over the colour channels, at the checks' crop
CROP_SUM = f"(1, {checks.CROP}, {checks.CROP})"


def rel(a, b):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).norm() / b.norm())


def ref(name):
    return checks._ref(name)


@pytest.fixture(scope="module")
def Xc(X64):
    """The grading input: the centre crop of the castle input, float64."""
    return checks.crop(X64).contiguous()


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


def verdict(capsys, check, *args):
    """(returned value, the one printed line) of a check; asserts it printed one line."""
    ok = check(*args)
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 1 and not out.err, out
    assert isinstance(ok, bool) and lines[0].startswith("PASS " if ok else "FAIL ")
    return ok, lines[0]


def assert_fails(capsys, check, args, *diagnosis):
    ok, line = verdict(capsys, check, *args)
    assert not ok, line
    assert "Hint: " in line
    for words in diagnosis:
        assert words in line, line


# ---------------------------------------------------------------------------
# the stored references
# ---------------------------------------------------------------------------


def test_reference_files_small_and_described():
    meta = json.loads((checks.REFERENCE / "meta.json").read_text())
    assert meta["files"] == list(FILES)
    sizes = {name: (checks.REFERENCE / name).stat().st_size for name in FILES}
    assert all(size < 2_000_000 for size in sizes.values()), sizes
    assert sum(sizes.values()) < 5_000_000, sizes
    for key, description in meta["arrays"].items():
        name, array = key.split("/")
        with numpy.load(checks.REFERENCE / name) as npz:
            shape = "x".join(map(str, npz[array].shape)) or "scalar"
            assert description == f"{shape} {npz[array].dtype}"
    assert meta["class"] == checks.CLASS
    assert meta["castle_sha256"] == utils.CASTLE_SHA256


def test_grading_configuration_is_the_recorded_one(standin, X):
    meta = json.loads((checks.REFERENCE / "meta.json").read_text())
    assert checks.fingerprint(standin.state_dict()) == meta["standin_fingerprint"]
    assert checks.input_sha256(X) == meta["input_sha256"]
    assert torch.equal(checks._X(), X)
    assert meta["crop"] == checks.CROP
    size, top = checks.CROP, (224 - checks.CROP) // 2
    Xc = checks.grading_input()
    assert Xc.dtype == torch.float64 and Xc.shape == (1, 3, size, size)
    assert torch.equal(Xc, X[:, :, top : top + size, top : top + size].double())
    for name in ("gxi", "lrp"):
        assert ref(name).shape == Xc.shape


def test_sheet_gammas_are_the_reference_ones():
    expected = {i: sheet.GAMMAS[sheet.block_of(i) - 1] for b in sheet.BLOCKS for i in b if i}
    assert checks.SHEET_GAMMAS == expected


@pytest.mark.slow
def test_stored_relevance_equals_reference_implementation(standin64, Xc):
    X64 = Xc
    assert rel(ref("gxi"), lrp.gradient_x_input(standin64, X64, checks.CLASS)) < FRESH_TOL
    assert rel(ref("lrp"), lrp.lrp(standin64, X64, checks.CLASS)) < FRESH_TOL
    assert ref("gxi").dtype == ref("lrp").dtype == torch.float64
    softmax = torch.nn.Sequential(standin64, torch.nn.Softmax(dim=1)).eval()
    R = lrp.gradient_x_input(softmax, X64, checks.CLASS).sum(1)[0]
    assert rel(ref("gxi_softmax_sum"), R) < 1e-6
    with torch.no_grad():
        top = int(standin64(X64).argmax())
    assert top != checks.CLASS
    R = lrp.gradient_x_input(standin64, X64, top).sum(1)[0]
    assert rel(ref("gxi_top_sum"), R) < 1e-6


@pytest.mark.slow
def test_stored_first_layer_relevance_equals_notebook_code(standin64, Xc):
    """The z^B-only model's relevance, by the notebook's ConvPx and explicit terms."""
    model = copy.deepcopy(standin64)
    model.features[0] = ConvPx(model.features[0])
    L, H = utils.bounds(Xc)
    X, L, H = (t.detach().requires_grad_(True) for t in (Xc, L, H))
    model.forward((X, L, H))[0, checks.CLASS].backward()
    terms = [(t * t.grad).detach().sum(1)[0] for t in (X, L, H)]
    assert rel(ref("zb_sum"), sum(terms)) < FRESH_TOL
    for name, term in zip(("zb_x_sum", "zb_l_sum", "zb_h_sum"), terms, strict=True):
        assert rel(ref(name), term) < 1e-6  # stored in float32


def test_conv_probe_equals_literal_lrp_gamma():
    """The probe's gradients: transposed convolutions of s * z / zp, written out. (1e-7: the
    reference stabilises zp by 1e-9, and |zp| >= 0.05 here; the mistakes, whose zp may be
    smaller, are only matched to within checks.NEAR.)"""
    w, b, a, s = ref("conv_w"), ref("conv_b"), ref("conv_a"), ref("conv_s")
    gamma = float(ref("conv_gamma"))
    assert gamma not in checks.SHEET_GAMMAS.values()
    z = F.conv2d(a, w, b, padding=1)
    assert rel(ref("conv_z"), z) < 1e-7

    def lrp_grad(rho_w, rho_b, ratio=True):
        zp = F.conv2d(a, rho_w, rho_b, padding=1)
        return conv2d_input(a.shape, rho_w, s * z / zp if ratio else s, padding=1)

    plus = lambda t, g: t + g * t.clamp(min=0)
    assert rel(ref("conv_grad"), lrp_grad(plus(w, gamma), plus(b, gamma))) < 1e-7
    assert rel(ref("conv_grad_plain"), lrp_grad(w, b, ratio=False)) < 1e-5
    assert rel(ref("conv_grad_plain"), lrp_grad(w * (1 + gamma), b * (1 + gamma))) < 1e-5
    neg = lambda t: t + gamma * t.clamp(max=0)
    assert rel(ref("conv_grad_neg"), lrp_grad(neg(w), neg(b))) < 1e-5
    assert rel(ref("conv_grad_nobias"), lrp_grad(plus(w, gamma), b)) < 1e-5
    assert rel(ref("conv_grad_zp"), lrp_grad(plus(w, gamma), plus(b, gamma), ratio=False)) < 1e-5
    for k, g in enumerate(sorted(set(checks.SHEET_GAMMAS.values()))):
        assert rel(ref(f"conv_grad_gamma{k}"), lrp_grad(plus(w, g), plus(b, g))) < 1e-5
    # every mistake is far from the right answer, so the diagnoses cannot be confused
    names = [k for k in checks._arrays() if k.startswith("conv_grad")]
    for i, one in enumerate(names):
        for other in names[i + 1 :]:
            assert rel(ref(one), ref(other)) > 100 * checks.NEAR, (one, other)


def test_first_layer_probe_equals_literal_zb_rule():
    w, b, s = ref("px_w"), ref("px_b"), ref("px_s")
    X, L, H = ref("px_X"), ref("px_L"), ref("px_H")
    z = F.conv2d(X, w, b, padding=1)
    zp = (
        z
        - F.conv2d(L, w.clamp(min=0), b.clamp(min=0), padding=1)
        - F.conv2d(H, w.clamp(max=0), b.clamp(max=0), padding=1)
    )
    assert float(zp[0, 0, 1, 1]) == 0.0 and (zp >= 0).all()  # a z / 0 for the sheet's code
    assert (s[zp == 0] == 0).all()
    c = s * z / (zp + 1e-9)
    R = (
        X * conv2d_input(X.shape, w, c, padding=1)
        - L * conv2d_input(L.shape, w.clamp(min=0), c, padding=1)
        - H * conv2d_input(H.shape, w.clamp(max=0), c, padding=1)
    )
    assert rel(ref("px_z"), z) < 1e-12
    assert rel(ref("px_R"), R) < 1e-9


def test_checks_module_ships_alone():
    """checks.py: no reference solution imported, no gradient-trick class or Gradient x Input."""
    source = (checks.REFERENCE.parents[1] / "lrpkit" / "checks.py").read_text()
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{a.name}" for a in node.names}
    kit = {name for name in imported if name.startswith("lrpkit")}
    # only the sheet's numbers, which students get too; never the reference lrpkit.lrp
    assert kit <= {"lrpkit.sheet", "lrpkit.sheet.CLASS"}, kit
    assert not [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.ClassDef) and n.bases and "Module" in ast.unparse(n.bases[0])
    ]
    assert "def gradient_x_input" not in source and "(z / zp).detach()" not in source
    code = "import sys, lrpkit.checks; assert 'lrpkit.lrp' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------
# check_input
# ---------------------------------------------------------------------------


def test_check_input_passes_the_notebook_input(capsys, X):
    ok, line = verdict(capsys, checks.check_input, X.clone().requires_grad_(True))
    assert ok and line == (
        "PASS check_input: X is castle.jpg as VGG-16 expects it "
        "(1x3x224x224 float32, RGB, normalised)"
    )


def _inputs(img):
    raw = torch.from_numpy(img.transpose(2, 0, 1).copy())[None].float()
    X = utils.normalize(img)
    return {
        "bgr": (utils.normalize(img[..., ::-1].copy()), "B, G, R order"),
        "dropped channel": (X[:, :2], "one was dropped"),
        "zeroed channel": (torch.cat([X[:, :2], torch.zeros_like(X[:, :1])], 1), "dropped"),
        "not normalised": (raw, "not normalised"),
        "bgr not normalised": (raw.flip(1), "B, G, R order"),
        "0-255": (raw * 255, "0-255"),
        "not divided by 255": ((raw * 255 - utils.MEAN) / utils.STD, "divided by 255"),
        "float64": (X.double(), "torch.float64"),
        "channels last": (X.permute(0, 2, 3, 1), "channels last"),
        "no batch dimension": (X[0], "shape (3, 224, 224)"),
        "numpy": (X.numpy(), "not a torch tensor"),
        "other image": (torch.randn_like(X), "differs from castle.jpg"),
    }


@pytest.mark.parametrize("case", list(_inputs(numpy.zeros((224, 224, 3)))))
def test_check_input_diagnoses(capsys, castle_img, case):
    X, diagnosis = _inputs(castle_img)[case]
    assert_fails(capsys, checks.check_input, (X,), diagnosis)


# ---------------------------------------------------------------------------
# check_gradient_x_input
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_check_gradient_x_input_passes_the_solution(capsys):
    ok, line = verdict(capsys, checks.check_gradient_x_input, gradient_x_input)
    assert ok and line == (
        "PASS check_gradient_x_input: gradient_x_input matches the reference Gradient x Input "
        "(relative L2 error below 1e-06 in float64)"
    )


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


GXI_MISTAKES = {
    "float32": (lambda m, X, c: gradient_x_input(m, X, c).float(), "is torch.float32"),
    "gradient only": (gradient_only, "the gradient alone"),
    "channel sum": (lambda m, X, c: gradient_x_input(m, X, c).sum(1), f"has shape {CROP_SUM}"),
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
}


@pytest.mark.slow
def test_check_gradient_x_input_keeps_one_line_for_chatty_code(capsys):
    ok, _ = verdict(capsys, checks.check_gradient_x_input, chatty)
    assert ok


@pytest.mark.slow
@pytest.mark.parametrize("case", list(GXI_MISTAKES))
def test_check_gradient_x_input_diagnoses(capsys, case):
    fn, *diagnosis = GXI_MISTAKES[case]
    assert_fails(capsys, checks.check_gradient_x_input, (fn,), *diagnosis)


# ---------------------------------------------------------------------------
# check_conv
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
    ),
    "shape": (conv_class(combine=lambda z, zp: (zp * (z / zp).detach())[:, :1]), ConvPx, "shape"),
    "stub": (
        conv_class(init=_stub),
        ConvPx,
        "raised NotImplementedError: Exercise 4",
        "Hint: complete the task",
    ),
    "in-place weights": (conv_class(init=_inplace), ConvPx, "changed the weights"),
    "sheet's ConvPx": (Conv, SheetConvPx, "NaN where zp is exactly 0"),
    "not a module": (lambda conv, gamma: 0, ConvPx, "raised TypeError"),
}


@pytest.mark.slow
def test_check_conv_passes_the_solution(capsys):
    ok, line = verdict(capsys, checks.check_conv, Conv, ConvPx)
    assert ok and line == (
        "PASS check_conv: Conv implements LRP-gamma; LRP relevance matches the reference "
        "(relative L2 error below 1e-06 in float64)"
    )


@pytest.mark.parametrize("case", list(CONV_MISTAKES))
def test_check_conv_diagnoses(capsys, case):
    Conv_, ConvPx_, *diagnosis = CONV_MISTAKES[case]
    assert_fails(capsys, checks.check_conv, (Conv_, ConvPx_), *diagnosis)


@pytest.mark.slow
def test_check_conv_fails_a_conv_sharing_gamma_across_layers(capsys):
    """Passes the one-layer probe, fails on the whole model: gamma kept on the class."""

    class Shared(torch.nn.Module):
        def __init__(self, conv, gamma):
            super().__init__()
            self.conv = conv
            Shared.gamma = gamma

        def forward(self, X):
            g = Shared.gamma
            z = self.conv(X)
            zp = F.conv2d(
                X,
                self.conv.weight + g * self.conv.weight.clamp(min=0),
                self.conv.bias + g * self.conv.bias.clamp(min=0),
                padding=1,
            )
            return zp * (z / zp).detach()

    assert_fails(capsys, checks.check_conv, (Shared, ConvPx), "whole LRP model differs")


# ---------------------------------------------------------------------------
# check_lrpmodel
# ---------------------------------------------------------------------------


def sheet_lrpmodel(model, ConvPx=ConvPx, Conv=Conv):
    lrpmodel = copy.deepcopy(model).eval()
    features = lrpmodel.features
    features[0] = ConvPx(features[0])
    for i, gamma in checks.SHEET_GAMMAS.items():
        features[i] = Conv(features[i], gamma)
    return lrpmodel


@pytest.fixture(scope="module")
def lrpmodel(standin):
    return sheet_lrpmodel(standin)


def test_check_lrpmodel_passes_the_sheet_model(capsys, lrpmodel):
    ok, line = verdict(capsys, checks.check_lrpmodel, lrpmodel)
    assert ok and line.startswith("PASS check_lrpmodel: lrpmodel is in eval mode (dropout off)")


def test_check_lrpmodel_catches_dropout_left_on(capsys, lrpmodel):
    """The sheet's slip: model.eval() instead of lrpmodel.eval()."""
    try:
        lrpmodel.train()
        assert_fails(capsys, checks.check_lrpmodel, (lrpmodel,), "dropout", "lrpmodel.eval()")
    finally:
        lrpmodel.eval()


def test_check_lrpmodel_catches_wrong_layers(capsys, lrpmodel):
    first, dense = lrpmodel.features[0], lrpmodel.classifier[0]
    try:
        lrpmodel.features[0] = first.conv
        assert_fails(capsys, checks.check_lrpmodel, (lrpmodel,), "features[0] is a Conv2d")
        lrpmodel.features[0] = first
        lrpmodel.classifier[0] = torch.nn.Identity()
        assert_fails(capsys, checks.check_lrpmodel, (lrpmodel,), "dense layers")
    finally:
        lrpmodel.features[0], lrpmodel.classifier[0] = first, dense
    assert_fails(capsys, checks.check_lrpmodel, ("lrpmodel",), "not a torch model")


# ---------------------------------------------------------------------------
# check_relevance
# ---------------------------------------------------------------------------


def relevance_with(terms):
    """lrp_relevance returning only some of the terms X dX, L dL, H dH (with signs)."""

    def lrp_relevance(lrpmodel, X, c):
        L, H = utils.bounds(X)
        X, L, H = (t.detach().requires_grad_(True) for t in (X, L, H))
        lrpmodel.forward((X, L, H))[0, c].backward()
        parts = {"X": X * X.grad, "L": L * L.grad, "H": H * H.grad}
        return sum(sign * parts[name] for name, sign in terms.items())

    return lrp_relevance


@pytest.mark.slow
def test_check_relevance_passes_the_solution(capsys):
    ok, line = verdict(capsys, checks.check_relevance, lrp_relevance, ConvPx)
    assert ok and line == (
        "PASS check_relevance: R = X*dX + L*dL + H*dH matches the reference "
        "(relative L2 error below 1e-06 in float64)"
    )
    ok, _ = verdict(
        capsys, checks.check_relevance, relevance_with({"X": 1, "L": 1, "H": 1}), ConvPx
    )
    assert ok


RELEVANCE_MISTAKES = {
    "L and H missing": (relevance_with({"X": 1}), "L * L.grad + H * H.grad are missing"),
    "H missing": (relevance_with({"X": 1, "L": 1}), "H * H.grad is missing"),
    "L missing": (relevance_with({"X": 1, "H": 1}), "L * L.grad is missing"),
    "subtracted": (relevance_with({"X": 1, "L": -1, "H": -1}), "subtracted"),
    "channel sum": (lambda m, X, c: lrp_relevance(m, X, c).sum(1), f"shape {CROP_SUM}"),
    "float32": (lambda m, X, c: lrp_relevance(m, X, c).float(), "torch.float32"),
    "raises": (lambda m, X, c: m.forward(X), "raised"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RELEVANCE_MISTAKES))
def test_check_relevance_diagnoses(capsys, case):
    fn, diagnosis = RELEVANCE_MISTAKES[case]
    assert_fails(capsys, checks.check_relevance, (fn, ConvPx), diagnosis)


# ---------------------------------------------------------------------------
# stale references (last: they reset the checks' cached grading configuration)
# ---------------------------------------------------------------------------


def test_checks_refuse_references_of_another_installation(monkeypatch, X):
    meta = dict(checks._meta())
    monkeypatch.setattr(checks, "_meta", lambda: meta | {"input_sha256": "0" * 64})
    checks._X.cache_clear()
    try:
        with pytest.raises(checks.StaleReferences, match="make references"):
            checks.check_input(X)
        monkeypatch.setattr(checks, "_meta", lambda: meta | {"standin_fingerprint": "0" * 64})
        checks._model.cache_clear()
        with pytest.raises(checks.StaleReferences, match="environment.yml"):
            checks.check_relevance(lrp_relevance, ConvPx)
    finally:
        checks._X.cache_clear()
        checks._model.cache_clear()


def test_grading_input_comes_from_stored_pixels(X):
    pixels = checks._arrays()["castle_pixels"].numpy()
    assert pixels.dtype == numpy.uint8 and pixels.shape == (224, 224, 3)
    assert numpy.array_equal(pixels, checks.castle_pixels())  # this machine's decoder agrees
    assert torch.equal(checks._X(), utils.normalize(pixels / 255.0))


def test_check_input_tolerates_another_decoders_rounding(capsys):
    # another JPEG decoder: every tenth pixel one level off
    pixels = checks._arrays()["castle_pixels"].numpy().astype(int)
    pixels[::10, ::10] = (pixels[::10, ::10] + 1).clip(0, 255)
    assert checks.check_input(utils.normalize(pixels / 255.0))
    assert capsys.readouterr().out.startswith("PASS check_input")
