"""Exercise 5's check (lrpkit.selfcheck.faithfulness_checks, called as
checks.check_perturbation_curve):
the solution passes, on the public configuration and on drawn ones; each typical mistake
fails with its own verdict, in the self-check and on a drawn configuration.

The expected curves come from lrpkit.reference.perturbation.literal (one region at a time), which
tests/test_perturbation.py compares with an explicit loop, the kit's fast curve and Quantus.
"""

import dataclasses

import numpy
import pytest
import torch
from check_cases import notebook_model32
from curve_cases import CURVE_MUTANTS, curve_mutant, perturbation_curve

import utils
from lrpkit.reference import perturbation, references
from lrpkit.selfcheck import checks
from lrpkit.selfcheck import faithfulness_checks as fc
from lrpkit.selfcheck.config import Config

SECRET = b"the course secret of the curve tests"
PUBLIC = Config.public()


def self_check(capsys, function):
    """(passed, the one line printed) of the self-check."""
    ok = checks.check_perturbation_curve(function)
    (line,) = capsys.readouterr().out.splitlines()
    return ok, line


def judged(function, config, expected):
    """(passed, line) the grader's way: observed on config, through text, judged here."""
    text = checks.observation("check_perturbation_curve", function, config=config)
    return checks.verdict("check_perturbation_curve", checks.decode_observation(text), expected)


def literal(mistake=None):
    """A perturbation_curve made of the reference's literal curve (or one of its mistakes)."""

    def perturbation_curve(model, X, R, c, size, steps, seed):
        out = perturbation.literal(model, X, R, c, size, steps, seed, mistake)
        return out.softmax(1)[:, c] if mistake == "softmax" else out[:, c]

    return perturbation_curve


# ---------------------------------------------------------------------------
# the calls and the stored curves
# ---------------------------------------------------------------------------


def test_public_calls_and_stored_curves_are_the_references():
    """The stored curves are what the reference computes for the public calls now (no stale
    file), and the kit's fast curve gives the same."""
    stored = checks.stored()
    calls = fc.curve_calls(PUBLIC)
    assert (calls.main.size, calls.main.steps, calls.main.seed, calls.main.c) == (8, 6, 7, 483)
    assert calls.second.tiny and calls.second.c == PUBLIC.c2 and calls.second.size == 12
    again = references.curve_expected(PUBLIC)
    assert set(again) | {"curve_R", "curve_noise"} == {k for k in stored if k.startswith("curve")}
    for key, value in again.items():
        assert numpy.allclose(value, stored[key], rtol=1e-12, atol=0), key
    X, R = calls.main.inputs()
    fast = perturbation.one_curve(checks._model()[0], X, R, 483, 8, 6, 7)
    assert numpy.allclose(fast.numpy(), stored["curve"], rtol=1e-12, atol=0)
    assert references.curve_degenerate(PUBLIC, again) is None


def test_the_relevance_ranks_apart_what_the_mistakes_confuse():
    """Region sums alternate in sign by size with the largest negative: the most relevant
    region is neither the largest in |R| nor the least relevant one, for every size."""
    for n, sizes in fc.SIZES.items():
        for size in sizes:
            R = fc.curve_relevance(n, size, seed=size)
            sums = perturbation.regions(R, size)[0]
            assert len(set(sums.round(decimals=3).tolist())) == len(sums)  # no ties
            assert sums.abs().argmax() == sums.argmin() != sums.argmax()
            assert R.dtype == torch.float64 and R.shape == (1, 3, n, n)


def test_drawn_calls_cover_sizes_and_keep_arguments_apart():
    for k in range(200):
        config = Config.draw(SECRET, f"student {k}")
        calls = fc.curve_calls(config)
        main, second = calls.main, calls.second
        assert main.n <= config.size and (main.top, main.left, main.c) == (
            config.top,
            config.left,
            config.c,
        )
        assert second.tiny and second.c == config.c2 and second.size != main.size
        assert calls.other_size != second.size and calls.other_seed != second.seed
        assert calls.other_c not in (config.c, config.c2)
        for call in (main, second):
            assert call.size in fc.SIZES[call.n] and fc.STEPS[0] <= call.steps <= fc.STEPS[1]
        assert fc.curve_calls(config) == calls


# ---------------------------------------------------------------------------
# the self-check (public configuration)
# ---------------------------------------------------------------------------


def test_the_solution_and_the_literal_twin_pass(capsys):
    for function in (perturbation_curve, literal()):
        ok, line = self_check(capsys, function)
        assert ok and line.startswith("PASS check_perturbation_curve: "), line


@pytest.mark.parametrize("name", list(CURVE_MUTANTS))
def test_each_mutant_of_the_solution_fails_the_self_check_with_its_verdict(capsys, name):
    """The issue's mutants: size ignored, class hard-coded, stored curve returned, least
    relevant first, not accumulated, unseeded noise."""
    ok, line = self_check(capsys, curve_mutant(name))
    assert not ok and line.startswith("FAIL check_perturbation_curve: "), line
    assert CURVE_MUTANTS[name][2] in line.split(". Hint: ")[0], line


@pytest.mark.parametrize(
    "mistake, words",
    [
        ("lerf", "the least relevant regions go first"),
        ("pixels", "single pixels are replaced, not regions"),
        ("single", "the perturbations do not accumulate"),
        ("absolute", "the regions are ranked by absolute relevance"),
        ("fresh_noise", "each step draws new noise"),
        ("unmapped", "the noise is not in the pixel range"),
        ("softmax", "the curve holds softmax probabilities"),
    ],
)
def test_each_typical_mistake_is_named(capsys, mistake, words):
    ok, line = self_check(capsys, literal(mistake))
    assert line.startswith(f"FAIL check_perturbation_curve: {words}"), line


def with_seed(seed):
    return lambda model, X, R, c, size, steps, _: literal()(model, X, R, c, size, steps, seed)


def wrong(change):
    return lambda *args: change(literal()(*args))


def changes_x(model, X, R, c, size, steps, seed):
    curve = literal()(model, X, R, c, size, steps, seed)
    X[..., :size, :size] = 0  # perturbs the caller's X
    return curve


def changes_r(model, X, R, c, size, steps, seed):
    curve = literal()(model, X, R, c, size, steps, seed)
    R.zero_()
    return curve


def notebook_model(model, X, R, c, size, steps, seed):
    return literal()(notebook_model32(), X, R, c, size, steps, seed)


def converts(model, X, R, c, size, steps, seed):
    return literal()(model, X.float(), R, c, size, steps, seed)


def stub(*args):
    raise NotImplementedError("Exercise 5 -- return the steps + 1 logits")


@pytest.mark.parametrize(
    "function, start, hint",
    [
        (with_seed(7), "perturbation_curve gives the same curve for seeds 11 and 12", "seed"),
        (with_seed(0), "perturbation_curve gives the same curve for seeds 11 and 12", "seed"),
        (wrong(lambda f: f[1:]), "perturbation_curve's result has 6 values, one short", "k = 0"),
        (wrong(lambda f: f[None]), "perturbation_curve's result has shape (1, 7)", "1-D"),
        (wrong(lambda f: f.float()), "perturbation_curve's result is torch.float32", ".float()"),
        (wrong(lambda f: f.tolist()), "perturbation_curve's result is a list", "1-D"),
        (wrong(lambda f: f * float("nan")), "perturbation_curve's result contains NaN", "1-D"),
        (wrong(lambda f: torch.cat([f[:1] + 1, f[1:]])), "the first value is not the logit", ""),
        (changes_x, "perturbation_curve changed the values of the caller's X", "in place"),
        (changes_r, "perturbation_curve changed the values of the caller's R", "in place"),
        (notebook_model, "perturbation_curve(model, X, R, c, size, steps, seed) raised", "never"),
        (converts, "perturbation_curve(model, X, R, c, size, steps, seed) raised", ".float()"),
        (stub, "perturbation_curve(model, X, R, c, size, steps, seed) raised Not", "replace"),
    ],
)
def test_wrong_results_are_named(capsys, function, start, hint):
    ok, line = self_check(capsys, function)
    what, _, given = line.partition(". Hint: ")
    assert not ok and what.startswith(f"FAIL check_perturbation_curve: {start}"), line
    assert hint in given, line


def test_the_explorer_is_no_way_around_the_check(capsys):
    """The explorer draws curves with the function it is given, never its own: a student
    cannot hand in a call of it."""
    from lrpkit import explorer

    assert not hasattr(explorer, "curve") and "perturbation" not in explorer.__dict__


# ---------------------------------------------------------------------------
# drawn configurations (grading)
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_solution_passes_on_twenty_drawn_configurations():
    """Each with the expected curves the grader computes first (the typical mistakes' only
    for a wrong curve); none of them degenerate (references.draw would draw again)."""
    configs = set()
    for k in range(20):
        config = Config.draw(SECRET, f"student {k:02d}")
        configs.add(config)
        exp = references.curve_expected(config, mistakes=False)
        assert "curve" in exp and "curve_lerf" not in exp
        assert references.curve_degenerate(config, exp) is None
        ok, line = judged(perturbation_curve, config, exp)
        assert ok and line.startswith("PASS check_perturbation_curve: "), (config, line)
    assert len(configs) == 20
    sizes = {fc.curve_calls(c).main.size for c in configs}
    assert len(sizes) > 1 and {fc.curve_calls(c).main.n for c in configs} == {32, 48}


@pytest.fixture(scope="module")
def drawn():
    """A drawn configuration whose main call differs from the public one, with all its
    expected curves (the typical mistakes' included)."""
    configs = (Config.draw(SECRET, f"student {k}") for k in range(100))
    config = next(c for c in configs if fc.curve_calls(c).main.size != 8 and c.c != PUBLIC.c)
    exp = references.curve_expected(config)
    assert references.curve_degenerate(config, exp) is None
    return config, exp


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CURVE_MUTANTS))
def test_each_mutant_fails_on_a_drawn_configuration_with_its_verdict(drawn, name):
    ok, line = judged(curve_mutant(name), *drawn)
    assert not ok and CURVE_MUTANTS[name][2] in line.split(". Hint: ")[0], line


@pytest.mark.slow
@pytest.mark.parametrize("mistake", [*perturbation.MISTAKES, "softmax"])
def test_each_typical_mistake_fails_on_a_drawn_configuration(drawn, mistake):
    ok, line = judged(literal(mistake), *drawn)
    names = {name: what for name, what, _ in fc.MISTAKES}
    words = names.get(mistake, "the curve holds softmax probabilities")
    assert not ok and line.startswith(f"FAIL check_perturbation_curve: {words}"), line


def test_a_config_whose_curves_are_too_close_is_degenerate():
    exp = dict(checks.stored())
    assert references.curve_degenerate(PUBLIC, exp) is None
    flat = exp | {"curve_tiny_seed": exp["curve_tiny"].copy()}
    assert "curve_tiny_seed" in references.curve_degenerate(PUBLIC, flat)
    same = exp | {"curve_single": exp["curve"].copy()}
    assert "close" in references.curve_degenerate(PUBLIC, same)
    other = dataclasses.replace(PUBLIC, c=7)
    stored = exp | {"curve": exp["curve"] * (1 + 1e-9)}
    assert "public stored" in references.curve_degenerate(other, stored)


def test_observation_holds_no_expected_curve():
    obs = fc.observe_perturbation_curve(lambda *a: torch.zeros(7, dtype=torch.float64), PUBLIC)
    assert (obs["R"] == 0).all()
    stored = {k: v for k, v in checks.stored().items() if k.startswith("curve_")}
    for key, value in obs.items():
        for name, reference in stored.items():
            if numpy.shape(value) == reference.shape and name != "curve_calls":
                assert not numpy.allclose(value, reference), (key, name)
    assert utils.bounds  # the task's bounds come from utils, as in Exercise 4
