"""The self-checks' stored references (data/reference/, lrpkit.reference.references): they
equal a fresh computation by the reference implementation and by explicit, literal formulas,
and what the checks ship holds and imports no solution."""

import ast
import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
import torch.nn.functional as F
from check_cases import (
    ConvPx,
)
from torch.nn.grad import conv2d_input

import utils
from lrpkit import sheet
from lrpkit.reference import lrp, references
from lrpkit.reference.references import FILES
from lrpkit.selfcheck import checks
from lrpkit.selfcheck import config as cfg

#: stored float64 references against a fresh computation on this machine (relative L2).
FRESH_TOL = 1e-7
PUBLIC = cfg.Config.public()
#: the modules students get with the checks; none may hold or import a solution
SHIPPED = (
    "checks", "config", "onepixel", "observe", "tripwire", "judge", "judge_lrp",
    "faithfulness_checks",
)  # fmt: skip


def rel(a, b):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).norm() / b.norm())


def ref(name):
    return torch.from_numpy(checks.stored()[name])


@pytest.fixture(scope="module")
def Xc(X64):
    """The grading input: the centre crop of the castle input, float64."""
    return cfg.crop(X64, PUBLIC).contiguous()


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
    assert cfg.Config.from_json(json.dumps(meta["config"])) == PUBLIC
    assert meta["class"] == checks.CLASS
    assert meta["castle_sha256"] == utils.CASTLE_SHA256


def test_grading_configuration_is_the_recorded_one(standin, X):
    meta = json.loads((checks.REFERENCE / "meta.json").read_text())
    assert checks.fingerprint(standin.state_dict()) == meta["standin_fingerprint"]
    assert checks.input_sha256(X) == meta["input_sha256"]
    assert torch.equal(checks._X(), X)
    assert meta["crop"] == checks.CROP == PUBLIC.size == 32
    size, top = checks.CROP, (224 - checks.CROP) // 2
    assert (PUBLIC.top, PUBLIC.left) == (top, top)
    Xc = checks.grading_input(PUBLIC)
    assert Xc.dtype == torch.float64 and Xc.shape == (1, 3, size, size)
    assert torch.equal(Xc, X[:, :, top : top + size, top : top + size].double())
    assert torch.equal(ref("X"), Xc)
    for name in ("gxi", "lrp", "zb", "rel"):
        assert ref(name).shape == Xc.shape


def test_public_configuration_is_the_sheets():
    expected = {i: sheet.GAMMAS[sheet.block_of(i) - 1] for b in sheet.BLOCKS for i in b if i}
    assert PUBLIC.layer_gammas() == expected == sheet.layer_gammas()
    assert PUBLIC.c == sheet.CLASS and PUBLIC.c2 != sheet.CLASS
    assert (PUBLIC.probe_gamma, PUBLIC.probe_shape) == (0.25, (6, 4, 3, 5))


@pytest.mark.slow
def test_stored_references_equal_a_fresh_computation():
    """The stored references are expected(Config.public()), computed afresh here."""
    fresh = references.expected(PUBLIC)
    stored = {k: v for k, v in checks.stored().items() if not k.startswith("curve")}
    assert set(fresh) == set(stored)  # Exercise 5's: tests/test_checks_curve.py
    for name, value in fresh.items():
        assert value.shape == stored[name].shape and value.dtype == stored[name].dtype, name
        if value.dtype == numpy.uint8:
            assert numpy.array_equal(value, stored[name])
        elif numpy.abs(value).sum():
            assert rel(stored[name], value) < FRESH_TOL, name


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
    tiny = cfg.tiny_vgg(PUBLIC.probe_seed)
    for name, c in (("gxi_tiny", PUBLIC.c), ("gxi_tiny_c2", PUBLIC.c2)):
        assert rel(ref(name), lrp.gradient_x_input(tiny, X64, c)) < FRESH_TOL


@pytest.mark.slow
def test_stored_first_layer_relevance_equals_notebook_code(standin64, Xc):
    """The z^B-only models' relevance (stand-in, tiny, and the stand-in with the public gamma
    per layer written literally into its convolutions' weights), by the notebook's ConvPx and
    terms."""
    tiny = cfg.tiny_vgg(PUBLIC.probe_seed)
    gammas = copy.deepcopy(standin64)
    for i, gamma in PUBLIC.layer_gammas().items():
        w, b = gammas.features[i].weight, gammas.features[i].bias
        gammas.features[i].weight = torch.nn.Parameter(w + gamma * torch.relu(w))
        gammas.features[i].bias = torch.nn.Parameter(b + gamma * torch.relu(b))
    cases = (standin64, "zb", PUBLIC.c), (gammas, "rel", PUBLIC.c), (tiny, "zb_tiny_c2", PUBLIC.c2)
    for model, name, c in cases:
        model = copy.deepcopy(model)
        model.features[0] = ConvPx(model.features[0])
        L, H = utils.bounds(Xc)
        X, L, H = (t.detach().requires_grad_(True) for t in (Xc, L, H))
        model.forward((X, L, H))[0, c].backward()
        terms = [(t * t.grad).detach() for t in (X, L, H)]
        assert rel(ref(name), sum(terms)) < FRESH_TOL
    x_l_h = references.zb_terms(gammas, Xc, PUBLIC.c)
    for name, term in zip(("rel_x_sum", "rel_l_sum", "rel_h_sum"), x_l_h, strict=True):
        assert rel(ref(name), term.sum(1)[0]) < FRESH_TOL


def literal_conv_probe(config):
    """The conv probe's gradients: transposed convolutions of s * z / zp, written out."""
    probe = cfg.conv_probe(config)
    conv, a, s, gamma = probe["conv"], probe["a"], probe["s"], probe["gamma"]
    w, b, pad = conv.weight, conv.bias, conv.padding
    z = F.conv2d(a, w, b, padding=pad)

    def lrp_grad(rho_w, rho_b, ratio=True):
        zp = F.conv2d(a, rho_w, rho_b, padding=pad)
        return conv2d_input(a.shape, rho_w, s * z / zp if ratio else s, padding=pad)

    plus = lambda t, g: t + g * t.clamp(min=0)  # noqa: E731
    neg = lambda t: t + gamma * t.clamp(max=0)  # noqa: E731
    return z, gamma, lrp_grad, plus, neg, w, b


#: a probe of another shape: a 5 x 5 kernel on 8 channels
KERNEL5 = dataclasses.replace(PUBLIC, probe_shape=(5, 8, 5, 6), probe_gamma=0.7, probe_seed=7)


@pytest.mark.parametrize("config", [PUBLIC, KERNEL5])
def test_conv_probe_equals_literal_lrp_gamma(config):
    """(1e-7: the reference stabilises zp by 1e-9, and |zp| >= 0.05 wherever s is not 0; the
    mistakes, whose zp may be smaller, are only matched to within checks.NEAR.)"""
    exp = references.conv_expected(config) if config != PUBLIC else None
    got = (lambda n: exp[n]) if exp else ref
    z, gamma, lrp_grad, plus, neg, w, b = literal_conv_probe(config)
    assert gamma == config.probe_gamma and w.shape[2] == config.probe_shape[2]
    assert rel(got("conv_z"), z) < 1e-7
    assert rel(got("conv_grad"), lrp_grad(plus(w, gamma), plus(b, gamma))) < 1e-7
    assert rel(got("conv_grad_plain"), lrp_grad(w, b, ratio=False)) < 1e-5
    assert rel(got("conv_grad_plain"), lrp_grad(w * (1 + gamma), b * (1 + gamma))) < 1e-5
    assert rel(got("conv_grad_neg"), lrp_grad(neg(w), neg(b))) < 1e-5
    assert rel(got("conv_grad_nobias"), lrp_grad(plus(w, gamma), b)) < 1e-5
    assert rel(got("conv_grad_zp"), lrp_grad(plus(w, gamma), plus(b, gamma), ratio=False)) < 1e-5
    wrong = torch.as_tensor(got("conv_wrong_gammas")).tolist()
    assert set(wrong) == ({*sheet.GAMMAS, 0.25} - {gamma})
    for k, g in enumerate(wrong):
        assert rel(got(f"conv_grad_gamma{k}"), lrp_grad(plus(w, g), plus(b, g))) < 1e-5
    # every mistake is far from the right answer, so the diagnoses cannot be confused
    names = [k for k in checks.stored() if k.startswith("conv_grad")] if not exp else None
    names = names or [k for k in exp if k.startswith("conv_grad")]
    for i, one in enumerate(names):
        for other in names[i + 1 :]:
            assert rel(got(one), got(other)) > 10 * checks.NEAR, (one, other)


def test_first_layer_probe_equals_literal_zb_rule():
    probe = cfg.px_probe(PUBLIC)
    w, b, s = probe["conv"].weight, probe["conv"].bias, probe["s"]
    X, L, H = probe["X"], probe["L"], probe["H"]
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


def test_checks_modules_ship_alone():
    """The shipped check modules: no reference solution or expected results imported, no
    gradient-trick class or Gradient x Input."""
    folder = Path(checks.__file__).parent  # lrpkit/selfcheck
    assert {p.stem for p in folder.glob("*.py")} == {"__init__", *SHIPPED}
    allowed = {
        "lrpkit",
        "lrpkit.sheet",
        "lrpkit.selfcheck",
        *(f"lrpkit.selfcheck.{m}" for m in SHIPPED),
    }
    for name in SHIPPED:
        source = (folder / f"{name}.py").read_text()
        tree = ast.parse(source)
        kit = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                kit |= {a.name for a in node.names if a.name.startswith("lrpkit")}
            elif isinstance(node, ast.ImportFrom) and node.module.startswith("lrpkit"):
                kit |= {node.module} | {
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if f"{node.module}.{a.name}".count(".") == 2 and a.name in SHIPPED
                }
        assert kit <= allowed, (name, kit)
        modules = [
            n.name
            for n in ast.walk(tree)
            if isinstance(n, ast.ClassDef) and n.bases and "Module" in ast.unparse(n.bases[0])
        ]
        assert modules == (["OnePixel", "Linear64", "Conv64"] if name == "onepixel" else []), name
        assert "def gradient_x_input" not in source and "(z / zp).detach()" not in source
        assert "def lrp_relevance" not in source, name
    code = (
        "import sys, lrpkit.selfcheck.checks\n"
        "assert 'lrpkit.reference.lrp' not in sys.modules\n"
        "assert 'lrpkit.reference.references' not in sys.modules\n"
        f"assert {{'lrpkit.selfcheck.' + m for m in {SHIPPED!r}}} >= "
        "{m for m in sys.modules if m.startswith('lrpkit.')}"
        " - {'lrpkit.sheet', 'lrpkit.selfcheck'}, sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
