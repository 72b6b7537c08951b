"""The reference explanations (lrpkit.reference.lrp) against their slow, literal twins
(tests/lrp_twins.py).

Cross-implementation comparisons are in float64 on the stand-in VGG-16 with castle.jpg:
in float32, divisions where z is near zero amplify rounding. Measured on the stand-in
(x86-64 CPU, torch 2.14.1): gradient trick vs explicit four-step LRP and vs zennit differ by
~1e-14 in relative L2 (largest element-wise relative difference ~5e-10, on tiny values).
Tolerances: explicit twin, torch.allclose with rtol 1e-8 and atol 1e-10 * max|R|, and
relative L2 <= 1e-10; zennit, relative L2 <= 1e-5 (the issue's bound).
"""

import copy

import numpy
import pytest
import torch
from lrp_twins import autograd_gradient_x_input, explicit_lrp, zennit_lrp

import utils
from lrpkit.reference import lrp

CASTLE = 483  # ImageNet class "castle"


def rel_l2(R, reference):
    """Relative L2 difference ||R - reference|| / ||reference||."""
    return float((R - reference).norm() / reference.norm())


@pytest.fixture(scope="module")
def R64(standin64, X64):
    """Reference LRP of castle.jpg, float64."""
    return lrp.lrp(standin64, X64, CASTLE)


@pytest.fixture(scope="module")
def G64(standin64, X64):
    """Reference Gradient x Input of castle.jpg, float64."""
    return lrp.gradient_x_input(standin64, X64, CASTLE)


@pytest.fixture(scope="module")
def zero_bias64(standin64):
    """A float64 stand-in with every bias zero: then the network is positively homogeneous."""
    model = copy.deepcopy(standin64)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
    return model


@pytest.fixture(scope="module")
def crops64(X64):
    """Two different 64 x 64 crops of castle.jpg (float64) as a batch; small, so fast."""
    return torch.cat([X64[..., 40:104, 60:124], X64[..., 150:214, 0:64]])


# ---------------------------------------------------------------------------
# LRP == its twins
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_lrp_equals_explicit_four_step_lrp(standin64, X64, R64):
    R = explicit_lrp(standin64, X64, CASTLE)
    assert R.shape == X64.shape and R.dtype == torch.float64
    # Same arithmetic in another order: float64 rounding, amplified where z is small.
    torch.testing.assert_close(R64, R, rtol=1e-8, atol=1e-10 * float(R.abs().max()))
    assert rel_l2(R64, R) <= 1e-10


@pytest.mark.slow
def test_lrp_equals_zennit(standin64, X64, R64):
    R = zennit_lrp(standin64, X64, CASTLE)
    assert rel_l2(R64, R) <= 1e-5


@pytest.mark.slow
def test_lrp_follows_the_gammas_argument(standin64, crops64):
    X = crops64[:1]
    other = (0.5, 0.25, 0.0, 0.0, 1.0)  # none of the sheet's
    R = lrp.lrp(standin64, X, CASTLE, gammas=other)
    assert rel_l2(R, explicit_lrp(standin64, X, CASTLE, gammas=other)) <= 1e-10
    assert rel_l2(R, lrp.lrp(standin64, X, CASTLE)) > 1e-3


# ---------------------------------------------------------------------------
# Gradient x Input; conservation
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_gradient_x_input_equals_autograd(standin64, X64, G64):
    assert G64.shape == X64.shape and G64.dtype == torch.float64 and not G64.requires_grad
    torch.testing.assert_close(G64, autograd_gradient_x_input(standin64, X64, CASTLE))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradient_x_input", "lrp"])
def test_zero_bias_conserves_the_logit(zero_bias64, X64, method):
    """With zero biases, sum R = f_c(X): ReLU networks are then positively homogeneous
    (Gradient x Input) and every LRP rule used here redistributes without loss."""
    R = getattr(lrp, method)(zero_bias64, X64, CASTLE)
    with torch.no_grad():
        logit = float(zero_bias64(X64)[0, CASTLE])
    assert abs(logit) > 1e-3  # a meaningful check, not 0 == 0
    # measured: 5e-15 (Gradient x Input), 2e-9 (LRP: the stabiliser eps takes its share)
    assert float(R.sum()) == pytest.approx(logit, rel=1e-7)


# ---------------------------------------------------------------------------
# Edge cases, batches, freezing, errors
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradient_x_input", "lrp"])
def test_constant_images_give_finite_relevance(standin, method):
    values = {"black": 0.0, "white": 1.0, "grey": 0.5}
    X = torch.cat([utils.normalize(numpy.full((224, 224, 3), v)) for v in values.values()])
    L, H = utils.bounds(X)
    assert torch.equal(X[0], L[0])  # every pixel at its lower bound: z^B's worst case
    assert torch.equal(X[1], H[1])  # every pixel at its upper bound
    R = getattr(lrp, method)(standin, X, CASTLE)  # one int: the same class for every sample
    finite = {name: bool(torch.isfinite(r).all()) for name, r in zip(values, R)}
    assert all(finite.values()), finite


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradient_x_input", "lrp"])
def test_batch_equals_single_images(standin64, crops64, method):
    explain = getattr(lrp, method)
    classes = [CASTLE, 17]  # one class per sample
    single = torch.cat([explain(standin64, x[None], c) for x, c in zip(crops64, classes)])
    torch.testing.assert_close(explain(standin64, crops64, torch.tensor(classes)), single)


@pytest.mark.parametrize("method", ["gradient_x_input", "lrp"])
def test_parameters_frozen_while_explaining(standin, X, method):
    model = copy.deepcopy(standin)
    model.classifier[6].bias.requires_grad_(False)  # a mix of flags, to be restored as is
    flags = [p.requires_grad for p in model.parameters()]
    seen = []
    model.classifier.register_forward_hook(
        lambda *_: seen.append(any(p.requires_grad for p in model.parameters()))
    )
    before = {k: v.clone() for k, v in model.features.state_dict().items()}
    R = getattr(lrp, method)(model, X[..., :64, :64], CASTLE)
    assert seen == [False]  # no weight gradients were computed
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(v, model.features.state_dict()[k]) for k, v in before.items())
    assert torch.isfinite(R).all()


def test_frozen_restores_flags_after_an_error(standin):
    model = copy.deepcopy(standin.classifier)
    with pytest.raises(KeyError), lrp.frozen(model):
        assert not any(p.requires_grad for p in model.parameters())
        raise KeyError("boom")
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("method", ["gradient_x_input", "lrp"])
def test_train_mode_is_refused(standin, X, method):
    model = copy.deepcopy(standin).train()
    with pytest.raises(ValueError, match=r"training mode.*eval\(\)"):
        getattr(lrp, method)(model, X, CASTLE)


@pytest.mark.parametrize("gammas", [(1.0, 0.5, 0.1), (1.0,) * 6, ()])
def test_wrong_number_of_gammas_is_refused(standin, X, gammas):
    with pytest.raises(ValueError, match="one gamma per conv block"):
        lrp.lrp(standin, X, CASTLE, gammas=gammas)


def test_device_agnostic_on_meta(standin):
    """Every tensor is made on X's device: on the meta device, a stray CPU tensor would fail."""
    model = copy.deepcopy(standin).to("meta")
    X = torch.zeros(2, 3, 224, 224, device="meta")
    with pytest.raises(RuntimeError):
        X + torch.ones(1, 3, 1, 1)  # the premise: CPU and meta tensors do not mix
    for method in (lrp.gradient_x_input, lrp.lrp):
        R = method(model, X, [CASTLE, 17])
        assert R.device.type == "meta" and R.shape == X.shape


# ---------------------------------------------------------------------------
# float32
# ---------------------------------------------------------------------------

#: float32 vs float64 of the same method, relative L2, on the stand-in with castle.jpg.
#: Measured (AMD EPYC, 1 and 2 threads alike, torch 2.14.1): LRP 5.0e-5, Gradient x Input
#: 6.8e-3 (the stand-in's random logit is a small difference of large terms). Tolerances:
#: 15-20x that, for other CPU kernels.
FLOAT32_TOLERANCE = {"lrp": 1e-3, "gradient_x_input": 1e-1}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradient_x_input", "lrp"])
def test_float32_is_close_to_float64(standin, X, R64, G64, method):
    R32 = getattr(lrp, method)(standin, X, CASTLE)
    assert R32.dtype == torch.float32 and torch.isfinite(R32).all()
    R = R64 if method == "lrp" else G64
    assert rel_l2(R32.double(), R) <= FLOAT32_TOLERANCE[method]
