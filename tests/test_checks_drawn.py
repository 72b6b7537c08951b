"""Grading with hidden configurations: Config, observations as text, expected results.

A grader draws a configuration per student (Config.draw), runs each check's observation in the
kernel, carries it out as text (encode_observation) and judges it against expected results it
computes itself (references.expected). The solution must pass on any drawn configuration; every
typical mistake must fail there with its diagnosis, those the public one cannot reveal too.
"""

import base64
import copy
import dataclasses
import io
import json
import re
import zipfile

import lrp_twins
import numpy
import pytest
import torch
from check_cases import (
    CONV_MISTAKES,
    GXI_HIDDEN_MISTAKES,
    GXI_MISTAKES,
    GXI_VARIANTS,
    LRPMODEL_MISTAKES,
    RELEVANCE_HIDDEN_MISTAKES,
    RELEVANCE_MISTAKES,
    Conv,
    ConvPx,
    gradient_x_input,
    lrp_relevance,
    sheet_lrpmodel,
)

from lrpkit import sheet
from lrpkit.reference import lrp, references
from lrpkit.selfcheck import checks
from lrpkit.selfcheck.config import MAX_CROP, MIN_CROP, SIZE, Config

SECRET = b"a course's grading secret"
PUBLIC = Config.public()
#: observations the grader carries out of the kernel stay below this (characters)
MAX_OBSERVATION = 300_000


def judged(name, config, exp, *args):
    """(passed, line) of check `name` the grader's way: observe on config, through text,
    judged against exp."""
    text = checks.observation(name, *args, config=config)
    assert len(text) < MAX_OBSERVATION and text.isascii() and not any(c.isspace() for c in text)
    return checks.verdict(name, checks.decode_observation(text), exp)


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


def test_draw_is_deterministic_and_differs_across_students_and_secrets():
    one = Config.draw(SECRET, "student 1")
    assert Config.draw(SECRET, "student 1") == one
    assert Config.draw(bytearray(SECRET), "student 1") == one
    assert Config.draw(SECRET, "student 2") != one
    assert Config.draw(b"another secret", "student 1") != one
    assert Config.draw(SECRET, "student 1", attempt=1) != one
    assert one != PUBLIC
    with pytest.raises(ValueError, match="bytes"):
        Config.draw("a str", "student 1")


def test_draws_cover_the_ranges():
    draws = [Config.draw(SECRET, f"s{k}") for k in range(300)]
    sizes = {d.size for d in draws}
    assert sizes == set(range(MIN_CROP, MAX_CROP + 1))
    for d in draws:
        assert 0 <= d.top <= SIZE - d.size and 0 <= d.left <= SIZE - d.size
        assert d.c != d.c2 and 1e-3 <= min(d.gammas) and max(d.gammas) <= 3
        assert 0.05 <= d.probe_gamma <= 2 and d.probe_shape[2] in (1, 3, 5)
    assert len({d.c for d in draws}) > 200 and len({d.top for d in draws}) > 100
    assert len({d.gammas for d in draws}) == 300
    gammas = numpy.log10([g for d in draws for g in d.gammas])
    assert gammas.min() < -2.9 and gammas.max() > 0.4  # log-uniform over [1e-3, 3]


def test_config_json_round_trip():
    for config in (PUBLIC, Config.draw(SECRET, "student 1")):
        text = config.to_json()
        assert Config.from_json(text) == config
        assert json.loads(text)["gammas"] == list(config.gammas)
    assert PUBLIC.layer_gammas() == sheet.layer_gammas()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"top": 1}',
        json.dumps(json.loads(PUBLIC.to_json()) | {"extra": 1}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"size": 24}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"top": 200}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"c": 1000}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"c2": 483}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"c": "483"}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"c": True}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"gammas": [0.1] * 11}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"gammas": [0.1] * 11 + [-1]}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"probe_gamma": 0}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"probe_shape": [6, 4, 2, 5]}),
        json.dumps(json.loads(PUBLIC.to_json()) | {"probe_seed": -1}),
    ],
)
def test_config_from_json_rejects_junk(text):
    with pytest.raises(ValueError):
        Config.from_json(text)


# ---------------------------------------------------------------------------
# observations as text
# ---------------------------------------------------------------------------


def test_observation_round_trip(X):
    obs = {
        "flag": True,
        "count": 3,
        "value": 0.1 + 1e-17,
        "text": "ZeroDivisionError: division by zero ünïcödé",
        "R": numpy.random.default_rng(0).normal(size=(1, 3, 5, 5)),
        "shape": numpy.array([1, 3, 224, 224], dtype=numpy.int64),
        "empty": numpy.zeros((0, 4)),
        "a.b_c": numpy.float32(2.5),
    }
    back = checks.decode_observation(checks.encode_observation(obs))
    assert set(back) == set(obs)
    for key, value in obs.items():
        assert numpy.array_equal(back[key], numpy.asarray(value)), key
        assert back[key].dtype == numpy.asarray(value).dtype, key
    real = checks.observe_input(X)
    back = checks.decode_observation(checks.encode_observation(real))
    assert back.keys() == real.keys() and numpy.array_equal(back["X"], real["X"])
    assert checks.verdict("check_input", back, checks.stored())[0]


def _zip(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return checks.PREFIX + base64.b64encode(buffer.getvalue()).decode()


def _npy(array, allow_pickle=False):
    data = io.BytesIO()
    numpy.lib.format.write_array(data, array, allow_pickle=allow_pickle)
    return data.getvalue()


@pytest.mark.parametrize(
    "junk",
    [
        None,
        b"lrpobs1:",
        "",
        "PASS check_conv: looks fine",
        checks.PREFIX,
        checks.PREFIX + "not base64!",
        checks.PREFIX + base64.b64encode(b"not a zip").decode(),
        checks.PREFIX + "A" * (checks.MAX_ENCODED + 1),
        _zip({"R.npy": _npy(numpy.array([object()]), allow_pickle=True)}),
        _zip({"R.txt": _npy(numpy.zeros(3))}),
        _zip({"../R.npy": _npy(numpy.zeros(3))}),
        _zip({"R.npy": b"not an npy file"}),
        _zip({"R.npy": _npy(numpy.zeros(3, dtype=complex))}),
        _zip({"R.npy": b"\0" * (checks.MAX_BYTES + 1)}),
        _zip({f"k{i}.npy": _npy(numpy.zeros(1)) for i in range(checks.MAX_ARRAYS + 1)}),
    ],
)
def test_decode_observation_rejects_junk(junk):
    with pytest.raises(ValueError):
        checks.decode_observation(junk)


def test_an_observation_that_trips_becomes_a_fail_line(monkeypatch, capsys):
    """Whatever goes wrong while observing odd code: one FAIL line, in grading as in the
    self-check."""

    def trips(*args, config):
        raise RuntimeError("odd result")

    monkeypatch.setitem(checks.CHECKS, "check_input", (trips, checks.judge_input))
    text = checks.observation("check_input", "X", config=Config.draw(SECRET, "student 1"))
    ok, line = checks.verdict("check_input", checks.decode_observation(text), None)
    assert not ok and "could not evaluate your result (RuntimeError: odd result)" in line
    assert checks.check_input("X") is False
    assert capsys.readouterr().out == line + "\n"


@pytest.mark.parametrize(
    "obs", [{"bad key": 1}, {"R": numpy.array([object()])}, {"R": None}, {"": 1}, {1: 2}]
)
def test_encode_observation_rejects_what_is_not_plain(obs):
    with pytest.raises(ValueError):
        checks.encode_observation(obs)


class DoubledConvPx(ConvPx):
    """A broken first layer: twice the convolution's output."""

    def forward(self, X):
        return 2 * super().forward(X)


def test_an_observation_holds_no_expected_value():
    """The kernel emits what the code did (here: wrong everywhere), never a reference."""
    obs = checks.observe_relevance(lambda m, X, c: 3 * torch.ones_like(X), DoubledConvPx, PUBLIC)
    assert obs["R"].shape == (1, 3, 32, 32) and (obs["R"] == 3).all()
    stored = {k: v for k, v in checks.stored().items() if k != "X"}  # X: the code's input
    for key, value in obs.items():
        for name, reference in stored.items():
            if numpy.shape(value) == reference.shape:
                assert not numpy.allclose(value, reference), (key, name)


# ---------------------------------------------------------------------------
# expected results of drawn configurations
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drawn():
    """A drawn configuration whose crop size and class differ from the public ones, and its
    expected results."""
    config, exp = references.draw(SECRET, "student 1")
    assert config.size != PUBLIC.size and config.c != PUBLIC.c
    return config, exp


@pytest.fixture(scope="module")
def same_size():
    """A configuration with the public crop size elsewhere in the image, another class."""
    config = dataclasses.replace(PUBLIC, top=8, left=150, c=17, c2=908, probe_seed=5)
    exp = references.expected(config)
    assert references.degenerate(config, exp) is None
    return config, exp


@pytest.mark.slow
def test_expected_on_one_pixel_equals_expected_on_the_whole_model(monkeypatch, drawn, standin64):
    """expected() runs VGG-16 as OnePixel on drawn crops (32-63 pixels), like the checks'
    model: the same results as the whole model, to float64 rounding."""
    config, exp = drawn
    assert isinstance(checks._model()[0], references.OnePixel)
    monkeypatch.setattr(references, "one_pixel", lambda model: model)
    whole = references.expected(config, standin64)
    assert set(whole) == set(exp)
    for name, value in whole.items():
        if numpy.abs(value).sum():
            assert numpy.linalg.norm(exp[name] - value) <= 1e-12 * numpy.linalg.norm(value), name


@pytest.mark.slow
@pytest.mark.parametrize("size", [32, 63, 64])
def test_one_pixel_is_vgg16_on_32_to_63_pixels(standin64, size):
    """Logits and input gradients of OnePixel and the whole model; other sizes refused."""
    model = references.OnePixel(standin64)
    assert model.features is standin64.features and not model.training
    X = torch.randn(
        2, 3, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(7)
    )
    if size == 64:
        with pytest.raises(ValueError, match="inputs of 32-63 pixels"):
            model(X)
        return
    grads = []
    for m in (standin64, model):
        Xg = X.clone().requires_grad_(True)
        out = m(Xg)
        (grad,) = torch.autograd.grad(out[:, 483].sum(), Xg)
        grads.append((out.detach(), grad))
    (out, grad), (out1, grad1) = grads
    assert (out1 - out).norm() <= 1e-12 * out.norm()
    assert (grad1 - grad).norm() <= 1e-12 * grad.norm()


def test_expected_keys_and_shapes_follow_the_config(drawn):
    config, exp = drawn
    probes = {k for k in exp if k.startswith("conv_grad_gamma")}
    curves = {k for k in checks.stored() if k.startswith("curve")}  # Exercise 5's: --bonus
    assert set(exp) - probes == set(checks.stored()) - probes - curves
    assert len(probes) == len(exp["conv_wrong_gammas"]) == 6  # 5 for the public probe's gamma
    crop = (1, 3, config.size, config.size)
    names = "X", "gxi", "lrp", "zb", "rel", "gxi_tiny", "gxi_tiny_c2", "zb_tiny", "zb_tiny_c2"
    for name in names:
        assert exp[name].shape == crop and exp[name].dtype == numpy.float64, name
    assert numpy.array_equal(exp["X"], checks.grading_input(config).numpy())
    assert exp["conv_z"].shape[1:] == (config.probe_shape[0], *[config.probe_shape[3]] * 2)


def test_a_degenerate_draw_is_drawn_again(monkeypatch, same_size):
    config, exp = same_size
    near = dataclasses.replace(config, probe_gamma=sheet.GAMMAS[2] * 1.001)
    assert "conv" in references.degenerate(near, exp | references.conv_expected(near))
    first = Config.draw(SECRET, "student 2")
    monkeypatch.setattr(references, "expected", lambda config, *a: config)
    monkeypatch.setattr(references, "degenerate", lambda config, exp: config == first or None)
    assert references.draw(SECRET, "student 2") == (Config.draw(SECRET, "student 2", 1),) * 2


@pytest.mark.slow
def test_lrp_takes_one_gamma_per_layer(standin64, monkeypatch, same_size):
    """Per-layer gammas against the explicit four-step twin, and per-block ones as a dict."""
    config, exp = same_size
    X = torch.from_numpy(exp["X"])
    monkeypatch.setattr(lrp_twins, "conv_blocks", lambda f: {i: i + 1 for i in range(len(f))})
    per_layer = [config.layer_gammas().get(i, 0.0) for i in range(31)]
    R = lrp.lrp(standin64, X, config.c, config.layer_gammas())
    assert float((R - lrp_twins.explicit_lrp(standin64, X, config.c, per_layer)).norm()) < (
        1e-10 * float(R.norm())
    )
    assert numpy.allclose(exp["lrp"], R.numpy(), rtol=0, atol=1e-12 * float(R.abs().max()))
    blocks = {i: sheet.GAMMAS[sheet.block_of(i) - 1] for i in sheet.layer_gammas()}
    assert torch.equal(lrp.lrp(standin64, X, config.c, blocks), lrp.lrp(standin64, X, config.c))
    with pytest.raises(ValueError, match="one gamma per LRP-gamma layer"):
        lrp.lrp(standin64, X, config.c, {2: 1.0})


# ---------------------------------------------------------------------------
# the solution passes on any drawn configuration
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_solution_passes_on_ten_drawn_configurations(capsys):
    """Worst float64 errors printed beside the tolerance (20+ configs: test_class_report.py)."""
    worst, configs = {}, set()
    key = {"check_gradient_x_input": "gxi", "check_conv": "lrp", "check_relevance": "rel"}
    calls = {
        "check_gradient_x_input": (gradient_x_input,),
        "check_conv": (Conv, ConvPx),
        "check_relevance": (lrp_relevance, ConvPx),
    }
    for k in range(10):
        config, exp = references.draw(SECRET, f"student {k:02d}")
        configs.add(config)
        for name, args in calls.items():
            obs = checks.CHECKS[name][0](*args, config=config)
            text = checks.encode_observation(obs)
            assert len(text) < MAX_OBSERVATION
            ok, line = checks.verdict(name, checks.decode_observation(text), exp)
            assert ok, (config, line)
            ref = exp[key[name]]
            error = float(numpy.linalg.norm(obs["R"] - ref) / numpy.linalg.norm(ref))
            worst[name] = max(worst.get(name, 0.0), error)
    assert len(configs) == 10 and len({c.size for c in configs}) > 3
    with capsys.disabled():
        for name, error in worst.items():
            print(f"\n{name}: worst relative L2 error {error:.1e} (tolerance {checks.TOL:.0e})")
    assert max(worst.values()) < checks.TOL / 10


@pytest.mark.parametrize("variant", list(GXI_VARIANTS))
def test_gradient_x_input_written_other_ways_passes(capsys, drawn, variant):
    """A correct Gradient x Input whose gradient comes from torch.func (grad, vjp, jacrev) or
    torch.autograd passes the self-check and a drawn configuration: the checks' light model
    (lrpkit.selfcheck.onepixel's own autograd Functions) supports those transforms."""
    fn = GXI_VARIANTS[variant]
    assert checks.check_gradient_x_input(fn), capsys.readouterr().out
    config, exp = drawn
    ok, line = judged("check_gradient_x_input", config, exp, fn)
    assert ok, line


def test_the_light_model_under_torch_func_equals_autograd_on_plain_layers():
    """The checks' light model (Conv64, Linear64) under torch.func's grad, jacrev, jvp and
    vmap against ordinary float64 layers (onepixel.plain) under torch.autograd: the twin."""
    from lrpkit.selfcheck import config as cfg
    from lrpkit.selfcheck import onepixel

    light = cfg.grading_model()
    assert onepixel.light(light.features[0]) and onepixel.light(light.classifier[3], "Linear64")
    twin = onepixel.plain(cfg.grading_model(), dense=True)
    X = checks.grading_input(PUBLIC)
    Xg = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(twin(Xg)[0, PUBLIC.c], Xg)
    logit = lambda x: light(x)[0, PUBLIC.c]  # noqa: E731
    close = lambda a, b: float((a - b).norm()) <= 1e-12 * float(b.norm())  # noqa: E731
    assert close(torch.func.grad(logit)(X), grad)
    assert close(torch.func.jacrev(logit)(X), grad)
    value, tangent = torch.func.jvp(logit, (X,), (grad,))  # forward mode: d logit . grad
    assert close(value, twin(X)[0, PUBLIC.c]) and close(tangent, (grad * grad).sum())
    both = torch.func.vmap(torch.func.grad(logit))(torch.stack([X, 2 * X]))
    (grad2,) = torch.autograd.grad(twin(2 * Xg)[0, PUBLIC.c], Xg)
    assert close(both[0], grad) and close(both[1], grad2 / 2)


def test_the_sheets_lrpmodel_passes_on_drawn_configurations(lrpmodel32):
    for k in range(5):
        config = Config.draw(SECRET, f"student {k:02d}")
        ok, line = judged("check_lrpmodel", config, None, lrpmodel32)
        assert ok, line


# ---------------------------------------------------------------------------
# every typical mistake fails on a drawn configuration
# ---------------------------------------------------------------------------


def assert_fails(result, *diagnosis):
    ok, line = result
    assert not ok and line.startswith("FAIL ") and "Hint: " in line, line
    for words in diagnosis:
        assert words in line, line
    return line


@pytest.mark.slow
@pytest.mark.parametrize("case", list(GXI_MISTAKES | GXI_HIDDEN_MISTAKES))
def test_gradient_x_input_mistakes_fail_on_a_drawn_configuration(drawn, case):
    fn, *diagnosis = (GXI_MISTAKES | GXI_HIDDEN_MISTAKES)[case]
    config, exp = drawn
    assert_fails(judged("check_gradient_x_input", config, exp, fn), *diagnosis)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RELEVANCE_MISTAKES | RELEVANCE_HIDDEN_MISTAKES))
def test_relevance_mistakes_fail_on_a_drawn_configuration(drawn, case):
    fn, *diagnosis = (RELEVANCE_MISTAKES | RELEVANCE_HIDDEN_MISTAKES)[case]
    config, exp = drawn
    assert_fails(judged("check_relevance", config, exp, fn, ConvPx), *diagnosis)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CONV_MISTAKES))
def test_conv_mistakes_fail_on_a_drawn_configuration(drawn, case):
    Conv_, ConvPx_, *diagnosis = CONV_MISTAKES[case]
    config, exp = drawn
    line = assert_fails(judged("check_conv", config, exp, Conv_, ConvPx_), *diagnosis)
    assert "(model, X, c)" not in line


@pytest.mark.slow
@pytest.mark.parametrize("fn", ["gradient_x_input", "lrp_relevance"])
def test_returning_the_stored_public_result_fails_at_the_public_size(same_size, fn):
    """Same crop size, other place and class: the values give the stored result away."""
    config, exp = same_size
    if fn == "gradient_x_input":
        mistake = GXI_HIDDEN_MISTAKES["stored result"][0]
        result = judged("check_gradient_x_input", config, exp, mistake)
    else:
        mistake = RELEVANCE_HIDDEN_MISTAKES["stored result"][0]
        result = judged("check_relevance", config, exp, mistake, ConvPx)
    assert_fails(result, "stored reference")


@pytest.mark.slow
def test_a_stored_public_result_fails_the_self_check_too(capsys):
    """Right for the public configuration, but the same for any model: the self-check's
    second model gives it away."""
    fn = GXI_HIDDEN_MISTAKES["stored result"][0]
    ok, line = checks.verdict(
        "check_gradient_x_input", checks.observe_gradient_x_input(fn, PUBLIC), checks.stored()
    )
    assert not ok and "same result for another model" in line, line


@pytest.mark.parametrize(
    "check, case",
    [("gxi", "channel sum"), ("gxi", "notebook X"), ("conv", "shape")],
)
def test_a_wrong_shape_is_described_without_the_hidden_sizes(drawn, check, case):
    """A result shaped wrongly on a drawn configuration: the verdict names the sizes (H, W,
    the probe's C), never their values; the only numbers it shows are every configuration's
    (the batch's 1, the colour channels' 3, the notebook's 224)."""
    config, exp = drawn
    if check == "gxi":
        fn, *diagnosis = GXI_MISTAKES[case]
        line = assert_fails(judged("check_gradient_x_input", config, exp, fn), *diagnosis)
    else:
        Conv_, ConvPx_, *diagnosis = CONV_MISTAKES[case]
        line = assert_fails(judged("check_conv", config, exp, Conv_, ConvPx_), *diagnosis)
    assert {int(n) for n in re.findall(r"\d+", line)} <= {1, 3, 224}, line


@pytest.fixture(scope="module")
def lrpmodel32(standin):
    return sheet_lrpmodel(copy.deepcopy(standin))


@pytest.mark.parametrize("case", list(LRPMODEL_MISTAKES))
def test_lrpmodel_mistakes_fail_on_a_drawn_configuration(lrpmodel32, case):
    gammas, ConvPx_, Conv_, *diagnosis = LRPMODEL_MISTAKES[case]
    model = copy.copy(lrpmodel32)
    plain = [layer.conv if hasattr(layer, "conv") else layer for layer in lrpmodel32.features]
    model.features = torch.nn.Sequential(*plain)
    sheet_lrpmodel(model, gammas, ConvPx_, Conv_)
    config = Config.draw(SECRET, "student 1")
    assert_fails(judged("check_lrpmodel", config, None, model), *diagnosis)
