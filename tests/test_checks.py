"""The self-checks (lrpkit.selfcheck.checks): each must pass the solution notebooks' code and
fail each typical mistake with its own diagnosis, in exactly one line, without raising. (The
stored references: tests/test_checks_references.py; drawn configurations, observations as
text and the grading split: tests/test_checks_drawn.py.)
"""

import copy
import os
import subprocess
import sys

import numpy
import pytest
import torch
from check_cases import (
    CONV_MISTAKES,
    GXI_MISTAKES,
    LRPMODEL_MISTAKES,
    RELEVANCE_MISTAKES,
    Conv,
    ConvPx,
    chatty,
    gradient_x_input,
    lrp_relevance,
    relevance_with,
    sheet_lrpmodel,
)

import utils
from lrpkit.selfcheck import checks
from lrpkit.selfcheck import config as cfg


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
    return line


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
    line = assert_fails(capsys, checks.check_conv, (Conv_, ConvPx_), *diagnosis)
    assert "(model, X, c)" not in line  # hints fit Conv


# ---------------------------------------------------------------------------
# check_lrpmodel
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lrpmodel(standin):
    return sheet_lrpmodel(copy.deepcopy(standin))


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


@pytest.mark.parametrize("case", list(LRPMODEL_MISTAKES))
def test_check_lrpmodel_probes_each_layers_rule(capsys, lrpmodel, case):
    """The rule and gamma of each convolution, told from its behaviour (float32 model)."""
    gammas, ConvPx_, Conv_, *diagnosis = LRPMODEL_MISTAKES[case]
    model = copy.copy(lrpmodel)  # shares all but its features
    plain = [layer.conv if hasattr(layer, "conv") else layer for layer in lrpmodel.features]
    model.features = torch.nn.Sequential(*plain)
    sheet_lrpmodel(model, gammas, ConvPx_, Conv_)
    assert_fails(capsys, checks.check_lrpmodel, (model,), *diagnosis)


# ---------------------------------------------------------------------------
# check_relevance
# ---------------------------------------------------------------------------


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


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RELEVANCE_MISTAKES))
def test_check_relevance_diagnoses(capsys, case):
    fn, *diagnosis = RELEVANCE_MISTAKES[case]
    assert_fails(capsys, checks.check_relevance, (fn, ConvPx), *diagnosis)


# ---------------------------------------------------------------------------
# stale references (last: they reset the checks' cached grading configuration)
# ---------------------------------------------------------------------------


def test_checks_refuse_references_of_another_installation(monkeypatch, X):
    meta = dict(cfg._meta())
    monkeypatch.setattr(cfg, "_meta", lambda: meta | {"input_sha256": "0" * 64})
    cfg._X.cache_clear()
    try:
        with pytest.raises(checks.StaleReferences, match="make references"):
            checks.check_input(X)
        monkeypatch.setattr(cfg, "_meta", lambda: meta | {"standin_fingerprint": "0" * 64})
        cfg._X.cache_clear()
        cfg._model.cache_clear()
        with pytest.raises(checks.StaleReferences, match="environment.yml"):
            checks.check_relevance(lrp_relevance, ConvPx)
    finally:
        cfg._X.cache_clear()
        cfg._model.cache_clear()


def test_grading_input_comes_from_stored_pixels(X):
    pixels = checks.stored()["castle_pixels"]
    assert pixels.dtype == numpy.uint8 and pixels.shape == (224, 224, 3)
    assert numpy.array_equal(pixels, checks.castle_pixels())  # this machine's decoder agrees
    assert torch.equal(checks._X(), utils.normalize(pixels / 255.0))


def test_check_input_tolerates_another_decoders_rounding(capsys):
    # another JPEG decoder: every tenth pixel one level off
    pixels = checks.stored()["castle_pixels"].astype(int)
    pixels[::10, ::10] = (pixels[::10, ::10] + 1).clip(0, 255)
    assert checks.check_input(utils.normalize(pixels / 255.0))
    assert capsys.readouterr().out.startswith("PASS check_input")


def test_the_checks_model_is_made_once_and_light():
    """One model per kernel, shared by the checks (new modules per check, the same weight
    tensors), on the stand-in weights the notebook's models share; its layers compute in
    float64 and become ordinary float64 layers where code under test is handed them -- also
    after the grader's guard imported the checks afresh (the model made by the first import
    is shared, its layers of that import's classes)."""
    one, two = cfg.grading_model(), cfg.grading_model()
    assert one is not two and one.features[2] is not two.features[2]
    assert one.features[2].weight is two.features[2].weight
    assert one.features[2].weight.dtype == torch.float32  # shared, converted when computing
    assert one(checks.grading_input()).dtype == torch.float64
    code = (
        "import importlib, torch\n"
        "from lrpkit import sheet\nfrom lrpkit.selfcheck import config, onepixel\n"
        "model = config.grading_model()\n"
        "importlib.reload(onepixel)  # as after the guard: the classes are new objects\n"
        "plain = onepixel.plain(config.grading_model())\n"
        "convs = [plain.features[i] for b in sheet.BLOCKS for i in b]\n"
        "assert all(type(c) is torch.nn.Conv2d for c in convs)\n"
        "assert all(c.weight.dtype == torch.float64 for c in convs)\n"
        "gammas = config.gamma_model(config.grading_model(), sheet.layer_gammas())\n"
        "assert gammas.features[2].weight.dtype == torch.float64\n"
    )
    env = dict(os.environ, VGG16_WEIGHTS="standin")
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
