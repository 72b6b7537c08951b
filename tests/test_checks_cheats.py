"""Nothing students get earns points: calling the kit's own code or returning stored arrays.

The checks record any call of the code under test into the kit's answering code (the
explorer's engine, the checks' own computations) and fail it, on the public configuration
and on hidden ones; a stored array matches no hidden configuration.
"""

import pytest
from check_cases import ConvPx, gradient_x_input, lrp_relevance

from lrpkit import checks, explorer, observe, references
from lrpkit.config import Config

SECRET = b"a course secret for the cheat tests"


@pytest.fixture(scope="module")
def drawn():
    return references.draw(SECRET, "cheater")


def relevance_by_the_checks(lrpmodel, X, c):
    return observe.relevance(lrpmodel, X, c)


def gxi_by_the_explorer(model, X, c):
    return explorer.Engine(model, X).relevance(explorer.GXI, c)[0]


def test_calling_the_checks_own_relevance_fails_on_both_configurations(drawn, capsys):
    config, expected = drawn
    assert not checks.check_relevance(relevance_by_the_checks, ConvPx)
    assert "called the kit's own observe.py: relevance" in capsys.readouterr().out
    obs = checks.decode_observation(
        checks.observation("check_relevance", relevance_by_the_checks, ConvPx, config=config)
    )
    ok, line = checks.verdict("check_relevance", obs, expected)
    assert not ok and "kit's own observe.py: relevance" in line, line


def test_calling_the_explorer_fails(drawn):
    config, expected = drawn
    text = checks.observation("check_gradient_x_input", gxi_by_the_explorer, config=config)
    ok, line = checks.verdict("check_gradient_x_input", checks.decode_observation(text), expected)
    assert not ok and "kit's own explorer.py" in line, line


def test_returning_the_stored_arrays_fails_on_a_hidden_configuration(drawn):
    config, expected = drawn
    stored = checks.stored()
    for name, key, args in (
        ("check_gradient_x_input", "gxi", ()),
        ("check_relevance", "zb", (ConvPx,)),
    ):
        array = checks.torch.from_numpy(stored[key])

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
