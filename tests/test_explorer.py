"""The gamma explorer: widgets set programmatically, relevance against the reference LRP.

Cross-implementation comparisons are in float64 (tight); float32 has its own, measured,
tolerance. The explorer's recomputations are counted by its ``counts`` instrumentation.

The sheet's configuration (the stand-in VGG-16, castle.jpg at 224 x 224, the sheet's gammas,
class 483) is compared with the reference in float64 and in float32. Everything else (other
gammas, classes, methods, recomputation counts, redraws, the curve button) runs on the
stand-in narrowed to an eighth of its channels (``narrow``), at 224 x 224 too: the explorer
takes VGG-16's layers at any width and computes the same LRP, about twenty times faster.
"""

import ast
import copy
import importlib
import json
import os
import sys
from collections import OrderedDict
from pathlib import Path

import ipywidgets
import pytest
import torch
import torchvision

import utils
from lrpkit import explorer, sheet
from lrpkit.explorer import engine, widget
from lrpkit.reference import lrp

#: float64 relative L2 difference allowed (measured: 2e-14 for LRP, 0 for Gradient x Input).
TOL64 = 1e-10
#: float32 relative L2 difference allowed. Measured on the stand-in: 1.3e-6 for the gammas
#: used here, up to 6.2e-4 for random gammas in [1e-4, 10] (near-zero zp amplify rounding).
TOL32 = 2e-3
GRADIENT_MACHINERY = {"data", "detach", "backward", "autograd", "requires_grad_", "grad"}
OTHER = (0.5, 0.02, 0.3, 10**-2.5, 0.1)  # gammas unlike the sheet's, one per block


def close(R, ref, tol):
    assert R.shape == ref.shape and R.dtype == ref.dtype
    assert torch.isfinite(R).all()
    diff = float((R - ref).norm() / ref.norm())
    assert diff <= tol, f"relative L2 difference {diff:.2e} > {tol:.0e}"


def _cut(old, weight, bias):
    """A Conv2d or Linear like old holding weight and bias (corners of old's), both times
    sqrt(old's fan-in / the new fan-in): the stand-in's He-uniform bounds at the new fan-in."""
    if isinstance(old, torch.nn.Conv2d):
        new = torch.nn.Conv2d(
            weight.shape[1], len(weight), old.kernel_size, old.stride, old.padding
        )
    else:
        new = torch.nn.Linear(weight.shape[1], len(weight))
    scale = (old.weight[0].numel() / weight[0].numel()) ** 0.5
    with torch.no_grad():
        new.weight.copy_(weight * scale)
        new.bias.copy_(bias * scale)
    return new


def narrow(model, part):
    """VGG-16 with 1/part of model's channels and hidden dense units, float64, eval mode.

    The same layers (the 31 of ``features``, the adaptive average pool, the dense head with
    its 1000 classes), each holding the first channels or units of model's (a corner of each
    weight, biases of both signs, input channels that differ from output channels), rescaled
    to keep the stand-in's He-uniform bounds (``_cut``)."""
    features, old, new = [], 3, 3  # the channels going into the next layer: model's, ours
    for layer in model.features:
        if isinstance(layer, torch.nn.Conv2d):
            rows = layer.out_channels // part
            cut = _cut(layer, layer.weight[:rows, :new], layer.bias[:rows])
            layer, old, new = cut, layer.out_channels, rows
        features.append(copy.deepcopy(layer))
    # the first dense layer reads `old` groups of 7 x 7 features and keeps the first `new`
    classifier, last = [], model.classifier[-1]
    for layer in model.classifier:
        if isinstance(layer, torch.nn.Linear):
            rows = layer.out_features if layer is last else layer.out_features // part
            weight = layer.weight.unflatten(1, (old, -1))[:rows, :new].flatten(1)
            cut = _cut(layer, weight, layer.bias[:rows])
            layer, old, new = cut, layer.out_features, rows
        classifier.append(copy.deepcopy(layer))
    parts = OrderedDict(
        features=torch.nn.Sequential(*features),
        avgpool=copy.deepcopy(model.avgpool),
        flatten=torch.nn.Flatten(),
        classifier=torch.nn.Sequential(*classifier),
    )
    return torch.nn.Sequential(parts).double().eval()


@pytest.fixture(scope="module")
def view64(standin64, X64):
    """The sheet's configuration: the stand-in, float64, at its defaults (tests only read it)."""
    return explorer.explore(standin64, X64)


@pytest.fixture(scope="module")
def ex64(view64):
    return view64.explorer


@pytest.fixture(scope="module")
def thin(standin):
    """The stand-in with an eighth of its channels, float64 (8, 16, 32, 64, 64 per block)."""
    return narrow(standin, 8)


@pytest.fixture(scope="module")
def top1(thin, X64):
    """The narrow model's top class (not castle)."""
    top1 = int(thin(X64)[0].argmax())
    assert top1 != 483
    return top1


@pytest.fixture(scope="module")
def thin_ex(thin, X64):
    return explorer.explore(thin, X64).explorer


@pytest.fixture
def ex(thin_ex):
    """The narrow model's explorer, put back to its defaults after each test."""
    yield thin_ex
    thin_ex.set(sheet.GAMMAS, explorer.LRP, sheet.CLASS)


def set_gammas(ex, gammas):
    for slider, gamma in zip(ex.sliders, gammas):
        slider.value = gamma


def test_widgets(view64, ex64, standin64, X64):
    assert isinstance(view64, ipywidgets.VBox) and view64.explorer is ex64
    # the sheet's numbers and stabiliser, from their one home
    assert engine.GAMMAS is widget.GAMMAS is sheet.GAMMAS and engine.BLOCKS is sheet.BLOCKS
    assert engine.CASTLE == widget.CASTLE == sheet.CLASS
    assert engine.stabilize is lrp.stabilize is sheet.stabilize
    assert len(ex64.sliders) == 5
    for k, (slider, gamma) in enumerate(zip(ex64.sliders, lrp.GAMMAS), 1):
        assert isinstance(slider, ipywidgets.FloatLogSlider)
        assert slider.base == 10 and not slider.continuous_update  # redraws on release
        assert slider.value == gamma and f"block {k}" in slider.description
    assert ex64.method.options == (explorer.GXI, explorer.LRP) and ex64.method.value == "LRP"
    top5 = standin64(X64)[0].topk(5).indices.tolist()
    labels = dict(ex64.classes.options)
    assert labels["castle (483)"] == 483 and ex64.classes.value == 483
    assert sorted(labels.values()) == sorted({483, *top5})
    for label, i in labels.items():
        assert label == f"{utils.CLASSES[i]} ({i})"
    assert ex64.view.value == ex64.png and ex64.png.startswith(b"\x89PNG")
    assert "ΣR at the top of block 3" in ex64.table.value


def test_default_equals_reference(ex64, standin64, X64):
    """The sheet's configuration: the stand-in, 224 x 224, the sheet's gammas, castle."""
    close(ex64.relevance, lrp.lrp(standin64, X64, 483), TOL64)


def test_narrow_is_the_standin_with_fewer_channels(thin, standin):
    """VGG-16's layers in order, an eighth of the channels, the stand-in's weights' corners."""
    layers = lambda model: [m for m in model.modules() if not list(m.children())]
    kinds = [type(m) for m in layers(standin)]
    assert [type(m) for m in layers(thin)] == [*kinds[:32], torch.nn.Flatten, *kinds[32:]]
    for mine, theirs in zip(thin.features, standin.features):
        if isinstance(mine, torch.nn.Conv2d):
            assert mine.out_channels == theirs.out_channels // 8
            scale = (theirs.in_channels / mine.in_channels) ** 0.5
            corner = theirs.weight[: mine.out_channels, : mine.in_channels]
            assert torch.allclose(mine.weight, corner.double() * scale, rtol=1e-6, atol=0)
            assert (mine.bias < 0).any() and (mine.bias > 0).any()
    dense = standin.classifier[0].weight.unflatten(1, (512, 49))[:512, :64].flatten(1)
    assert torch.allclose(thin.classifier[0].weight, dense.double() * 8**0.5, rtol=1e-6, atol=0)
    assert thin.classifier[-1].out_features == 1000
    assert thin.features[0].weight.dtype == torch.float64


def test_sliders_equal_reference(ex, thin, X64):
    set_gammas(ex, OTHER)
    assert ex.gammas == OTHER
    close(ex.relevance, lrp.lrp(thin, X64, 483, OTHER), TOL64)
    ex.sliders[2].value = 4.0  # one slider back up, the others kept
    close(ex.relevance, lrp.lrp(thin, X64, 483, (*OTHER[:2], 4.0, *OTHER[3:])), TOL64)


def test_only_changed_block_and_below_recomputed(ex):
    counts = ex.engine.counts
    for k in range(1, 6):
        before = counts.copy()
        ex.sliders[k - 1].value = OTHER[k - 1]
        assert {b: counts[b] - before[b] for b in range(1, 6)} == {
            b: int(b <= k) for b in range(1, 6)
        }, f"a gamma change in block {k} must recompute blocks {k}..1 only"
        assert counts["forward"] == before["forward"] == 1 and counts["head"] == before["head"]
    before = counts.copy()
    ex.sliders[3].value = OTHER[3]  # the same value: nothing to do
    assert counts == before


def test_class_switch(ex, thin, top1, X64):
    set_gammas(ex, OTHER)
    heads = ex.engine.counts["head"]
    ex.classes.value = top1
    close(ex.relevance, lrp.lrp(thin, X64, top1, OTHER), TOL64)
    assert ex.engine.counts["head"] == heads + 1
    castle = ex.relevance
    ex.classes.value = 483
    before = ex.engine.counts.copy()
    ex.classes.value = top1  # cached: nothing recomputed
    assert ex.engine.counts == before and torch.equal(ex.relevance, castle)


def test_method_switch(ex, thin, X64):
    ex.method.value = explorer.GXI
    close(ex.relevance, lrp.gradient_x_input(thin, X64, 483), TOL64)
    assert all(s.disabled for s in ex.sliders)  # Gradient x Input has no gamma
    before = ex.engine.counts.copy()
    ex.sliders[0].value = 2.0  # ignored by Gradient x Input, used by LRP when switched back
    assert ex.engine.counts == before
    ex.method.value = explorer.LRP
    assert not any(s.disabled for s in ex.sliders)
    close(ex.relevance, lrp.lrp(thin, X64, 483, (2.0, *lrp.GAMMAS[1:])), TOL64)
    assert ex.engine.counts[1] == before[1] + 1 and ex.engine.counts[2] == before[2]


def test_gradient_x_input_other_class(ex, thin, top1, X64):
    ex.method.value = explorer.GXI
    ex.classes.value = top1
    close(ex.relevance, lrp.gradient_x_input(thin, X64, top1), TOL64)


def test_sums_conserve_without_biases(thin, X64):
    """With all biases zero, LRP-0, LRP-gamma and z^B conserve relevance: every sum is the logit."""
    model = copy.deepcopy(thin)
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
    ex = explorer.explore(model, X64, gammas=OTHER).explorer
    for method in explorer.METHODS:
        ex.method.value = method
        sums = ex.sums
        assert sums[0] == pytest.approx(float(ex.relevance.sum()), rel=1e-12)
        for k in range(6):
            assert sums[k] == pytest.approx(sums["logit"], rel=1e-6), (method, k, sums)


def test_set_redraws_once(ex, thin, top1, X64):
    gammas = (0.2, 0.05, 0.7, 0.005, 0.05)  # new in every block, whatever was cached
    before, png = ex.engine.counts.copy(), ex.png
    ex.set(gammas, explorer.LRP, top1)
    assert ex.gammas == gammas and ex.classes.value == top1 and ex.png != png
    once = {k: ex.engine.counts[k] - before[k] for k in range(1, 6)}
    assert once == dict.fromkeys(range(1, 6), 1)
    close(ex.relevance, lrp.lrp(thin, X64, top1, gammas), TOL64)


def test_float32_within_measured_tolerance(standin, X):
    ex = explorer.explore(standin, X).explorer
    assert ex.relevance.dtype == torch.float32
    close(ex.relevance, lrp.lrp(standin, X, 483), TOL32)
    set_gammas(ex, OTHER)
    close(ex.relevance, lrp.lrp(standin, X, 483, OTHER), TOL32)
    ex.method.value = explorer.GXI
    close(ex.relevance, lrp.gradient_x_input(standin, X, 483), 1e-5)


def test_rejects_bad_input(X):
    with torch.device("meta"):
        model = torchvision.models.vgg16()
    with pytest.raises(ValueError, match="eval"):
        explorer.explore(model.train(), X)
    with pytest.raises(ValueError, match="one image"):
        explorer.explore(model.eval(), X.expand(2, -1, -1, -1))
    for gammas in [(1.0, 0.1), (1.0, 0.1, 0.1, 0.0, 0.1), (1.0, 0.1, float("nan"), 0.1, 0.1)]:
        with pytest.raises(ValueError, match="gammas"):
            explorer.explore(model.eval(), X, gammas=gammas)


def test_nothing_to_paste_as_an_exercise_answer():
    """The explorer ships to students: no reference LRP, no gradient trick, no autograd, in
    any of its files."""
    files = sorted(Path(explorer.__file__).parent.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "engine.py", "widget.py"}
    nodes = [n for f in files for n in ast.walk(ast.parse(f.read_text(encoding="utf-8")))]
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            names = {node.module or "", *(f"{node.module}.{a.name}" for a in node.names)}
            assert not any("lrp" in n.split(".")[-1] for n in names if n != "lrpkit"), names
        if isinstance(node, ast.Import):
            assert not any("lrp" in a.name for a in node.names)
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            assert node.name not in {"gradient_x_input", "Conv", "ConvPx", "lrp"}, node.name
        if isinstance(node, ast.Attribute):
            assert node.attr not in GRADIENT_MACHINERY, node.attr
    fresh = import_anew("lrpkit.explorer")
    assert "lrpkit.explorer.engine" in fresh  # the import ran again
    assert "lrpkit.reference.lrp" not in fresh, "lrpkit.explorer imports lrpkit.reference.lrp"


def import_anew(module):
    """The kit's modules (utils, lrpkit.*) that importing module loads, as in a fresh
    interpreter: the kit's modules already loaded are set aside for the import and put back
    after it (third-party ones stay: they import nothing of the kit, and a second interpreter
    would spend seconds importing torch again)."""
    ours = lambda name: name in ("utils", "lrpkit") or name.startswith("lrpkit.")
    saved = dict(sys.modules)
    try:
        for name in filter(ours, saved):
            del sys.modules[name]
        importlib.import_module(module)
        return set(filter(ours, sys.modules))
    finally:
        for name in set(sys.modules) - set(saved):
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.mark.slow
def test_headless_notebook_run(tmp_path, castle_file):
    """A notebook cell ending in explore(...) runs without a frontend (as nbval/nbclient do)."""
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import utils\nfrom lrpkit.explorer import explore\n"
            f"X = utils.normalize(utils.load_image({str(castle_file)!r}))\n"
            "model = utils.load_vgg16()\nexplore(model, X)"
        )
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={**os.environ, "VGG16_WEIGHTS": "standin"})
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o for o in outputs if o.output_type == "execute_result"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0].data
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    images = [m for m in state.values() if m["model_name"] == "ImageModel"]
    assert images, "the heatmap image widget was not created"
    assert "VBox" in json.dumps(shown[0].data) or shown[0].data["text/plain"]


# ---------------------------------------------------------------------------
# the redraw (no matplotlib) and the perturbation-curve button
# ---------------------------------------------------------------------------


def test_heatmap_matches_visualize(ex64):
    """utils.visualize's colours: channel sum, limits at the 99.5th percentile, 'bwr'."""
    import numpy

    image = utils.visualize(ex64.relevance).axes[0].images[0]
    ref = image.to_rgba(image.get_array(), bytes=True)[..., :3].astype(int)
    mine = explorer.heatmap(ex64.relevance).astype(int)
    assert mine.shape == ref.shape == (224, 224, 3)
    # matplotlib truncates its float colour table to bytes, the explorer rounds it
    assert numpy.abs(mine - ref).max() <= 1 and (mine == ref).all(-1).mean() > 0.9
    R = torch.zeros(1, 3, 4, 4, dtype=torch.float64)
    R[0, 0, 0, 0], R[0, 1, 3, 3] = 5.0, -5.0
    colours = explorer.heatmap(R)
    assert colours[0, 0].tolist() == [255, 0, 0] and colours[3, 3].tolist() == [0, 0, 255]
    assert colours[1, 1].min() >= 254  # zero: the middle of 256 levels, white to a level


def test_png_is_the_image_beside_the_heatmap(ex64):
    import cv2
    import numpy

    shown = cv2.imdecode(numpy.frombuffer(ex64.png, numpy.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert shown.shape == (224, 2 * 224 + widget.GAP, 3)
    image = numpy.round(ex64.image * 255).astype(numpy.uint8)
    assert (shown[:, :224] == image).all()
    assert (shown[:, 224 : 224 + widget.GAP] == 255).all()
    assert (shown[:, -224:] == explorer.heatmap(ex64.relevance)).all()
    assert "castle (483)" in ex64.title.value and "LRP" in ex64.title.value


def test_redraw_does_not_use_matplotlib(ex, monkeypatch):
    import matplotlib.figure

    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib drew during a redraw")

    monkeypatch.setattr(matplotlib.figure.Figure, "__init__", refuse)
    png = ex.png
    ex.sliders[4].value = 0.05
    assert ex.png != png and ex.view.value == ex.png


@pytest.fixture
def short_curves(monkeypatch):
    """Curves of 4 steps instead of 32 (the button works the same)."""
    monkeypatch.setattr(widget, "CURVE_STEPS", 4)  # read where it is defined


def test_curve_button_draws_the_instructors_curve(thin, X64, short_curves):
    """An instructor passes the kit's curve (lrpkit.reference.perturbation.one_curve): its progress
    reaches the bar, and the explorer says whose curve it draws."""
    from lrpkit.reference import perturbation

    ex = explorer.explore(thin, X64, curve=perturbation.one_curve).explorer
    assert ex.curve is None and "lrpkit.reference.perturbation.one_curve" in ex.curve_note.value
    ex.sliders[1].value = 0.05
    ex.curve_button.click()
    ref = perturbation.curve(thin, X64, ex.relevance, 483, widget.CURVE_SIZE, 4)[0]
    assert ex.curve.shape == (5,) and torch.allclose(ex.curve, ref, rtol=1e-10, atol=0)
    assert ex.progress.value == 100 and bytes(ex.curve_view.value).startswith(b"\x89PNG")
    assert ex.curve_view.layout.display is None  # shown
    assert (
        "AOPC" in ex.curve_note.value
        and "lrpkit.reference.perturbation.one_curve" in ex.curve_note.value
    )
    ex.sliders[1].value = 0.1  # another heatmap: the curve shown no longer belongs to it
    assert ex.curve is None and bytes(ex.curve_view.value) == b"" and ex.progress.value == 0
    assert ex.curve_view.layout.display == "none"


def test_curve_button_runs_a_students_function(thin, X64, short_curves):
    calls = []

    def perturbation_curve(model, X, R, c, size, steps, seed):
        calls.append((model, tuple(X.shape), tuple(R.shape), c, size, steps, seed))
        return torch.linspace(3.0, 1.0, steps + 1, dtype=X.dtype, requires_grad=True)

    ex = explorer.explore(thin, X64, curve=perturbation_curve).explorer
    ex.curve_button.click()
    assert len(calls) == 2  # the heatmap's order and the random order
    assert calls[0] == (thin, (1, 3, 224, 224), (1, 3, 224, 224), 483, 14, 4, 0)
    assert ex.curve.tolist() == torch.linspace(3.0, 1.0, 5).tolist()
    ex.curve_button.click()
    assert len(calls) == 3, "the random order's curve is kept per class"


class Shell:
    """IPython's shell as the explorer sees it: the notebook's namespace."""

    def __init__(self, **names):
        self.user_ns = names


def test_curve_button_uses_the_notebooks_perturbation_curve(thin, X64, monkeypatch):
    """Without curve=, the function the notebook defines (Exercise 5), named as the student's."""
    import IPython

    def perturbation_curve(model, X, R, c, size, steps, seed):
        return torch.linspace(3.0, 1.0, steps + 1, dtype=X.dtype)

    perturbation_curve.__module__ = "__main__"  # as defined in a notebook cell
    monkeypatch.setattr(
        IPython, "get_ipython", lambda: Shell(perturbation_curve=perturbation_curve)
    )
    ex = explorer.explore(thin, X64).explorer
    assert ex.whose == "your perturbation_curve (defined in this notebook)"
    assert "your perturbation_curve" in ex.curve_note.value
    assert ex.curve_button in ex.widget.children[-1].children
    assert ex.draw_curve().tolist() == torch.linspace(3.0, 1.0, widget.CURVE_STEPS + 1).tolist()


@pytest.mark.parametrize("names", [{}, {"perturbation_curve": "not a function"}])
def test_no_curve_button_without_a_curve_function(thin, X64, monkeypatch, names):
    """Neither curve= nor a notebook function: no button at all (nothing broken to press)."""
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell(**names))
    ex = explorer.explore(thin, X64).explorer
    assert ex.curve_button is None and ex.draw_curve() is None and ex.curve is None
    shown = [w for box in ex.widget.children for w in getattr(box, "children", ())]
    assert not any(isinstance(w, ipywidgets.Button) for w in shown)
    assert "curve" not in repr(ex.widget.children)


def test_a_curve_function_that_raises_is_reported_beside_the_button(thin, X64):
    """The handed-out notebook's perturbation_curve raises NotImplementedError until Exercise 5
    is done: the button says so instead of breaking."""

    def perturbation_curve(model, X, R, c, size, steps, seed):
        raise NotImplementedError("Exercise 5 -- return the steps + 1 logits")

    ex = explorer.explore(thin, X64, curve=perturbation_curve).explorer
    assert ex.draw_curve() is None and ex.curve is None
    assert "raised NotImplementedError: Exercise 5 -- return the steps + 1 logits" in (
        ex.curve_note.value
    )
    assert ex.curve_view.layout.display == "none"
