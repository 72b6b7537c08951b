"""Hints that once misled students (each seen in a walk-through), and what the verdict's first
line says now: the self-check's one line, the public configuration, the solution's code with
one mistake."""

import copy

import pytest
import torch
from check_cases import Conv, ConvPx, conv_class, gradient_x_input, sheet_lrpmodel

from lrpkit import sheet
from lrpkit.selfcheck import checks


def line_of(capsys, check, *args):
    ok = getattr(checks, check)(*args)
    (line,) = capsys.readouterr().out.splitlines()
    assert not ok and line.startswith(f"FAIL {check}: "), line
    return line


def test_conv_with_the_probes_gamma_hard_coded_is_told_it_ignores_gamma(capsys):
    """gamma fixed at 0.25, the probe layer's gamma: the probe passes, so this used to get
    "the relevance of the whole LRP model differs ... keep everything on self" instead."""
    assert checks.Config.public().probe_gamma == 0.25
    fixed = conv_class(rho=lambda p, g: p + 0.25 * p.clamp(min=0))
    line = line_of(capsys, "check_conv", fixed, ConvPx)
    assert line.startswith(
        "FAIL check_conv: Conv ignores its gamma argument: built with another gamma, it passes "
        "the same gradient"
    ), line
    assert "Hint: use the gamma passed to Conv(conv, gamma)" in line
    assert "whole LRP model" not in line and "stride and padding" not in line


def test_float_inside_gradient_x_input_is_told_not_to_convert(capsys):
    """.float() on X inside the function: the hint used to open with the notebook's globals."""

    def converts(model, X, c):
        X = X.detach().float().requires_grad_(True)
        model.forward(X)[0, c].backward()
        return X * X.grad

    line = line_of(capsys, "check_gradient_x_input", converts)
    what, hint = line.split(". Hint: ")
    assert what.startswith("FAIL check_gradient_x_input: gradient_x_input(model, X, c) raised ")
    assert hint.startswith("do not convert dtypes inside gradient_x_input (no .float())"), line
    assert "globals" not in hint


def test_the_notebooks_float32_model_is_told_to_use_the_model_given(capsys):
    """The other way round: the notebook's float32 model on the check's float64 X."""
    model32 = checks.standin().requires_grad_(False)
    line = line_of(
        capsys, "check_gradient_x_input", lambda m, X, c: gradient_x_input(model32, X, c)
    )
    hint = line.split(". Hint: ")[1]
    assert hint.startswith("use the arguments you are given (model, X, c), not the notebook's")
    assert "never ran the model it was given" in hint


def test_check_input_does_not_recommend_float(capsys, X):
    """A float64 X: build it with utils.normalize; the README says never to convert inside
    functions, so the hint no longer says '.float()'."""
    line = line_of(capsys, "check_input", X.double())
    assert line.startswith("FAIL check_input: X is torch.float64, expected torch.float32"), line
    hint = line.split(". Hint: ")[1]
    assert hint.startswith("build X with X = utils.normalize(img)") and ".float()" not in hint


@pytest.fixture(scope="module")
def notebook_model(standin):
    return copy.deepcopy(standin).requires_grad_(False)


def test_lrpmodel_made_by_changing_model_in_place_fails(capsys, notebook_model):
    """lrpmodel = model, then the layers replaced: it used to pass silently, and the later
    cells explained with LRP where they meant the plain model."""
    model = notebook_model
    lrpmodel = sheet_lrpmodel(model)  # changes model in place and returns it
    assert lrpmodel is model
    line = line_of(capsys, "check_lrpmodel", lrpmodel, model)
    assert line.startswith(
        "FAIL check_lrpmodel: lrpmodel is the notebook's model itself, changed in place"
    ), line
    assert "Hint: build lrpmodel as a model of its own, lrpmodel = utils.load_vgg16()" in line


def test_a_separate_lrpmodel_passes_beside_the_notebooks_model(capsys, standin):
    """The sheet's way: a model of its own (it shares the plain model's weight tensors when
    both come from utils.load_vgg16, and that is fine)."""
    model = copy.deepcopy(standin).requires_grad_(False)
    lrpmodel = sheet_lrpmodel(copy.deepcopy(standin))
    assert checks.check_lrpmodel(lrpmodel, model)
    assert capsys.readouterr().out.startswith("PASS check_lrpmodel: ")


class UnpacksTriple(torch.nn.Module):
    """Conv with ConvPx's forward copied: X, L, H = X."""

    def __init__(self, conv, gamma):
        super().__init__()
        self.conv = conv
        self.pconv = Conv(conv, gamma).pconv

    def forward(self, X):
        X, L, H = X
        z, zp = self.conv.forward(X), self.pconv.forward(X)
        return zp * (z / zp).detach()


def test_conv_unpacking_x_l_h_is_told_it_receives_one_tensor(capsys):
    line = line_of(capsys, "check_conv", UnpacksTriple, ConvPx)
    assert line.startswith(
        "FAIL check_conv: Conv.forward(X) raised ValueError: not enough values to unpack"
    ), line
    what, hint = line.split(". Hint: ")
    assert what.endswith("Conv receives one tensor, the activations, not the tuple (X, L, H)")
    assert hint.startswith("only ConvPx, the first layer, gets (X, L, H)")


def test_the_sheets_gammas_still_pass(capsys):
    assert checks.check_conv(Conv, ConvPx)
    assert sheet.GAMMAS[0] == 1.0
