"""Nothing students get earns points: calling the kit's own code or returning stored arrays.

The checks record any call of the code under test into the kit's answering code (the
explorer's engine, the checks' own computations) and fail it, on the public configuration
and on hidden ones; a stored array matches no hidden configuration.
"""

import dataclasses

import pytest
import torch
from check_cases import ConvPx, gradient_x_input, lrp_relevance

from lrpkit import explorer
from lrpkit.reference import references
from lrpkit.selfcheck import checks, observe
from lrpkit.selfcheck import config as cfg
from lrpkit.selfcheck.config import Config

SECRET = b"a course secret for the cheat tests"


@pytest.fixture(scope="module")
def drawn():
    return references.draw(SECRET, "cheater")


def relevance_by_the_checks(lrpmodel, X, c):
    return observe.relevance(lrpmodel, X, c)


def gxi_by_the_explorer(model, X, c):
    return explorer.Engine(model, X).relevance(explorer.GXI, c)[0]


def gxi_by_the_explorers_widget(model, X, c):
    """The widget's relevance: computed by the engine, which the tripwire sees."""
    view = explorer.Explorer(model, X, c)
    view.set(method=explorer.GXI)
    return view.relevance


def test_calling_the_checks_own_relevance_fails_on_both_configurations(drawn, capsys):
    config, expected = drawn
    assert not checks.check_relevance(relevance_by_the_checks, ConvPx)
    assert "called the kit's own selfcheck/observe.py: relevance" in capsys.readouterr().out
    obs = checks.decode_observation(
        checks.observation("check_relevance", relevance_by_the_checks, ConvPx, config=config)
    )
    ok, line = checks.verdict("check_relevance", obs, expected)
    assert not ok and "kit's own selfcheck/observe.py: relevance" in line, line


@pytest.mark.parametrize("cheat", [gxi_by_the_explorer, gxi_by_the_explorers_widget])
def test_calling_the_explorer_fails(drawn, cheat):
    config, expected = drawn
    text = checks.observation("check_gradient_x_input", cheat, config=config)
    ok, line = checks.verdict("check_gradient_x_input", checks.decode_observation(text), expected)
    assert not ok and "kit's own explorer/engine.py: " in line, line


def test_the_answering_files_are_the_ones_that_compute():
    """observe.ANSWERING names files that exist, the explorer's engine among them. The
    explorer's other files compute no relevance, so they need no watching: __init__.py
    defines nothing, widget.py convolves nothing and reaches no LRP rule but through Engine
    (a computation moved there must bring widget.py into ANSWERING)."""
    import ast
    from pathlib import Path

    package = Path(observe.__file__).resolve().parents[1]
    assert all((package / name).is_file() for name in observe.ANSWERING), observe.ANSWERING
    assert "explorer/engine.py" in observe.ANSWERING
    assert not {"explorer/__init__.py", "explorer/widget.py"} & set(observe.ANSWERING)
    init = ast.parse((package / "explorer" / "__init__.py").read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(init) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    widget = ast.parse((package / "explorer" / "widget.py").read_text(encoding="utf-8"))
    used = {n.attr for n in ast.walk(widget) if isinstance(n, ast.Attribute)}
    used |= {a.name for n in ast.walk(widget) if isinstance(n, ast.ImportFrom) for a in n.names}
    computing = {"conv2d", "conv_transpose2d", "max_pool2d", "max_unpool2d", "functional"}
    computing |= {"lrp0", "lrp_gamma", "zbox", "route", "_block", "_head_message", "_Conv"}
    assert not used & computing, used & computing


def test_returning_the_stored_arrays_fails_on_a_hidden_configuration(drawn):
    config, expected = drawn
    stored = checks.stored()
    for name, key, args in (
        ("check_gradient_x_input", "gxi", ()),
        ("check_relevance", "rel", (ConvPx,)),
        ("check_relevance", "zb", (ConvPx,)),
    ):
        array = torch.from_numpy(stored[key])

        def cheat(model, X, c, array=array):
            return array.reshape(X.shape) if array.numel() == X.numel() else array

        text = checks.observation(name, cheat, *args, config=config)
        ok, line = checks.verdict(name, checks.decode_observation(text), expected)
        assert not ok, (name, line)


def test_the_solutions_still_pass_with_the_tripwire_on(drawn):
    config, expected = drawn
    assert config != Config.public()
    for name, fn, args in (
        ("check_gradient_x_input", gradient_x_input, ()),
        ("check_relevance", lrp_relevance, (ConvPx,)),
    ):
        text = checks.observation(name, fn, *args, config=config)
        ok, line = checks.verdict(name, checks.decode_observation(text), expected)
        assert ok, line


def public_handed_model():
    """The model the self-check hands lrp_relevance on the public configuration, rebuilt as a
    student could from the shipped code: the stand-in, the public gamma per layer, ConvPx."""
    model = cfg.gamma_model(cfg.grading_model(), Config.public().layer_gammas())
    model.features[0] = ConvPx(model.features[0])
    return model.eval()


def relevance_on_its_own_model(lrpmodel, X, c):
    """Honest on small models (the checks' tiny one), but VGG-16 is always the public one."""
    big = lrpmodel.features[2].in_channels == 64
    return lrp_relevance(public_handed_model() if big else lrpmodel, X, c)


def test_relevance_that_ignores_the_handed_model_fails_on_hidden_gammas(drawn):
    """The model handed to lrp_relevance carries the configuration's gamma per layer, so a
    function that swaps in another VGG-16 matches on the public configuration only."""
    config, expected = drawn
    public = Config.public()
    assert config.gammas != public.gammas
    for where, exp, passes in ((public, checks.stored(), True), (config, expected, False)):
        text = checks.observation(
            "check_relevance", relevance_on_its_own_model, ConvPx, config=where
        )
        ok, line = checks.verdict("check_relevance", checks.decode_observation(text), exp)
        assert ok is passes, line
    assert "differs from the reference" in line, line
    # the same hidden crop and class with the public gammas: only the gammas tell them apart
    same = dataclasses.replace(config, gammas=public.gammas)
    text = checks.observation("check_relevance", relevance_on_its_own_model, ConvPx, config=same)
    ok, line = checks.verdict(
        "check_relevance", checks.decode_observation(text), references.expected(same)
    )
    assert ok, line
