"""Region perturbation (lrpkit.reference.perturbation) against literal twins and Quantus, AOPC, and
the
literal curves of typical mistakes that Exercise 5's check is judged against (its check:
tests/test_checks_curve.py).

Comparisons run in float64 on crops of castle.jpg (VGG-16 takes any size from 32 x 32 up),
so the twins agree to rounding; float32 is compared with float64 at a measured tolerance.
"""

import ast
import inspect
import itertools

import pytest
import torch

import utils
from lrpkit.bench.perturbation import quantus_curve
from lrpkit.reference import perturbation
from lrpkit.sheet import CLASS

#: relative L2 difference allowed between twins in float64
TOL = 1e-6


def rel(a, b):
    return float((a - b).norm() / b.norm())


def crop(X, size, top=80):
    return X[..., top : top + size, top : top + size].contiguous()


@pytest.fixture(scope="module")
def x64(X):
    """A 64 x 64 crop of castle.jpg in float64 (float32 values, so Quantus sees them exactly)."""
    return crop(X, 64).double()


@pytest.fixture(scope="module")
def R64(x64):
    return torch.randn(x64.shape, generator=torch.Generator().manual_seed(3), dtype=x64.dtype)


def explicit_curve(model, x, R, c, size, steps, B):
    """The curve the slowest way: Python loops over regions, one forward pass per step."""
    H, W = x.shape[-2:]
    corners = [(i, j) for i in range(0, H, size) for j in range(0, W, size)]
    relevance = [float(R[0, :, i : i + size, j : j + size].sum()) for i, j in corners]
    order = sorted(range(len(corners)), key=lambda r: -relevance[r])  # stable
    current = x.clone()
    with torch.no_grad():
        scores = [model(current)[0, c]]
        for r in order[:steps]:
            i, j = corners[r]
            current[..., i : i + size, j : j + size] = B[..., i : i + size, j : j + size]
            scores.append(model(current)[0, c])
    return torch.stack(scores)


@pytest.mark.parametrize("baseline", perturbation.BASELINES)
def test_both_engines_equal_the_explicit_loop(standin64, x64, R64, baseline):
    size, steps = 8, 12
    B = perturbation.baseline_image(x64, baseline, seed=5, size=size)
    ref = explicit_curve(standin64, x64, R64, CLASS, size, steps, B)
    for incremental in (True, False):
        got = perturbation.curve(
            standin64, x64, R64, CLASS, size, steps, baseline, seed=5, incremental=incremental
        )
        assert got.shape == (1, steps + 1) and got.dtype == torch.float64
        assert rel(got[0], ref) < TOL, incremental


def test_incremental_on_a_whole_image_with_regions_at_every_border(standin64, X64):
    """224 x 224, 14 x 14 regions; the ranking puts border and corner regions first."""
    R = torch.zeros_like(X64)
    for i, (r, c) in enumerate([(0, 0), (15, 15), (0, 15), (15, 0), (7, 0), (0, 8), (15, 9)]):
        R[..., r * 14 : r * 14 + 14, c * 14 : c * 14 + 14] = 10.0 - i
    B = perturbation.baseline_image(X64, "uniform", seed=2)
    ref = perturbation.curve(standin64, X64, R, CLASS, 14, 7, B, incremental=False)
    got = perturbation.curve(standin64, X64, R, CLASS, 14, 7, B, incremental=True, batch=3)
    assert rel(got, ref) < TOL


def test_matches_quantus_region_perturbation(standin64, x64, R64):
    """Quantus 0.6 RegionPerturbation (MoRF, 8 x 8 patches, no normalisation, logits) returns
    f(x) - f(x^(k)) for k = 1..L; the same noise is passed to both."""
    pytest.importorskip("quantus")
    size, steps = 8, 20
    B = perturbation.baseline_image(x64, "uniform", seed=5)

    class Float64(torch.nn.Module):  # Quantus hands the model float32 tensors
        def forward(self, x):
            return x.double()

    model = torch.nn.Sequential(Float64(), standin64).eval()
    drops = quantus_curve(model, x64, R64, B, CLASS, size, steps)
    curve = perturbation.curve(standin64, x64, R64, CLASS, size, steps, B)[0]
    ours = curve[0] - curve[1:]
    assert rel(drops, ours) < TOL


def test_float32_close_to_float64(standin, standin64, X):
    """float32 against float64, the same noise (measured on the stand-in: ~1e-6 relative)."""
    x32 = crop(X, 96)
    R = torch.randn(x32.shape, generator=torch.Generator().manual_seed(4))
    B = perturbation.baseline_image(x32, "uniform")  # float32 noise: drawn per dtype
    got = perturbation.curve(standin, x32, R, CLASS, 12, 10, B)
    ref = perturbation.curve(standin64, x32.double(), R.double(), CLASS, 12, 10, B.double())
    assert got.dtype == torch.float32
    assert rel(got.double(), ref) < 1e-4


def test_batch_of_images_with_one_class_each(standin64, x64, R64):
    X2, R2 = torch.cat([x64, x64.flip(-1)]), torch.cat([R64, R64.flip(-2)])
    both = perturbation.curve(standin64, X2, R2, [CLASS, 7], 16, 6)
    assert both.shape == (2, 7)
    for n, c in enumerate([CLASS, 7]):
        one = perturbation.curve(standin64, X2[n : n + 1], R2[n : n + 1], c, 16, 6)
        B = perturbation.baseline_image(X2, "uniform")[n : n + 1]  # the batch's noise
        assert (
            rel(both[n], explicit_curve(standin64, X2[n : n + 1], R2[n : n + 1], c, 16, 6, B)) < TOL
        )
        assert one.shape == (1, 7)


def test_any_model_uses_the_batched_engine():
    model = (
        torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1),
            torch.nn.Tanh(),
            torch.nn.Flatten(),
            torch.nn.Linear(4 * 16 * 16, 5),
        )
        .double()
        .eval()
    )
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    R = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    B = perturbation.baseline_image(x, "mean")
    got = perturbation.curve(model, x, R, 2, 4, 16, "mean", batch=5)
    assert rel(got[0], explicit_curve(model, x, R, 2, 4, 16, B)) < TOL
    with pytest.raises(ValueError, match="VGG"):
        perturbation.curve(model, x, R, 2, 4, 3, incremental=True)


def test_progress_reaches_the_end(standin64, x64, R64):
    seen = []
    perturbation.curve(standin64, x64, R64, CLASS, 16, 4, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] and sorted(seen) == seen


def test_aopc_equals_literal_sum():
    curves = torch.tensor([[3.0, 2.5, 1.0, 0.5], [1.0, 1.5, 0.0, -1.0]], dtype=torch.float64)
    literal = []
    for f in curves.tolist():
        L = len(f) - 1
        literal.append(sum(f[0] - f[k] for k in range(L + 1)) / (L + 1))
    assert perturbation.aopc(curves) == pytest.approx(sum(literal) / len(literal), rel=1e-15)
    assert perturbation.aopc(curves[0]) == pytest.approx(literal[0], rel=1e-15)


def test_ranking_sums_regions_over_channels():
    R = torch.zeros(1, 3, 4, 4)
    R[0, 0, 0, 2], R[0, 2, 1, 3] = 1.0, 2.0  # region 1 (top right) holds 3 over two channels
    R[0, 1, 3, 0] = 2.5  # region 2 (bottom left)
    R[0, 0, 2, 2] = -1.0  # region 3 (bottom right)
    assert perturbation.regions(R, 2).tolist() == [[0.0, 3.0, 2.5, -1.0]]
    assert perturbation.ranking(R, 2).tolist() == [[1, 2, 0, 3]]
    assert perturbation.ranking(torch.zeros(1, 3, 4, 4), 2).tolist() == [[0, 1, 2, 3]]  # stable


def test_baselines(x64):
    L, H = utils.bounds(x64)
    u = perturbation.baseline_image(x64, "uniform", seed=9)
    assert torch.equal(u, perturbation.baseline_image(x64, "uniform", seed=9))
    assert not torch.equal(u, perturbation.baseline_image(x64, "uniform", seed=10))
    assert bool((u >= L).all() and (u <= H).all()) and u.dtype == x64.dtype
    mean = perturbation.baseline_image(x64, "mean")
    assert torch.allclose(mean[0, :, 5, 7], x64.mean((2, 3))[0])
    flat = torch.full_like(x64, 0.25)
    assert torch.allclose(perturbation.baseline_image(flat, "blur"), flat, rtol=0, atol=1e-14)
    blurred = perturbation.baseline_image(x64, "blur")
    assert blurred.shape == x64.shape and blurred.std() < x64.std()
    with pytest.raises(ValueError, match="baseline"):
        perturbation.baseline_image(x64, "zeros")


def test_rejects_bad_settings(standin64, x64, R64):
    with pytest.raises(ValueError, match="divide"):
        perturbation.curve(standin64, x64, R64, CLASS, 10, 3)
    with pytest.raises(ValueError, match="steps"):
        perturbation.curve(standin64, x64, R64, CLASS, 16, 17)
    with pytest.raises(ValueError, match="shaped like"):
        perturbation.curve(standin64, x64, R64[..., :32], CLASS, 16, 3)


# ---------------------------------------------------------------------------
# the literal twin with typical mistakes (Exercise 5's expected results)
# ---------------------------------------------------------------------------


def test_literal_is_the_explicit_loop_and_the_kits_curve(standin64, x64, R64):
    """literal() builds the images one region at a time and classifies them in one batch:
    the explicit loop's curve, and the kit's (lrpkit.reference.perturbation.one_curve)."""
    size, steps = 16, 6
    B = perturbation.baseline_image(x64, "uniform", seed=9)
    out = perturbation.literal(standin64, x64, R64, CLASS, size, steps, 9)
    assert out.shape == (steps + 1, 1000)
    assert rel(out[:, CLASS], explicit_curve(standin64, x64, R64, CLASS, size, steps, B)) < TOL
    fast = perturbation.one_curve(standin64, x64, R64, CLASS, size, steps, 9)
    assert rel(fast, out[:, CLASS]) < TOL


@pytest.mark.parametrize("mistake", perturbation.MISTAKES)
def test_literal_mistakes_are_what_they_say(standin64, x64, R64, mistake):
    """Each mistake against the explicit loop with that mistake written out."""
    size, steps, seed = 16, 5, 4
    x, R, B = x64, R64, perturbation.baseline_image(x64, "uniform", seed=seed)
    L, H = utils.bounds(x)
    if mistake == "lerf":
        R = -R
    elif mistake == "absolute":
        R = R.abs()
    elif mistake == "unmapped":
        B = (B - L) / (H - L)  # u itself
    elif mistake == "pixels":
        size = 1
    got = perturbation.literal(standin64, x64, R64, CLASS, 16, steps, seed, mistake)[:, CLASS]
    if mistake == "single":  # each step on the unperturbed image
        order = perturbation.ranking(R, size)[0, :steps].tolist()
        ref = [explicit_curve(standin64, x, R, CLASS, size, 0, B)[0]]
        for r in order:
            top, left = r // (64 // size) * size, r % (64 // size) * size
            one = x.clone()
            one[..., top : top + size, left : left + size] = B[
                ..., top : top + size, left : left + size
            ]
            with torch.no_grad():
                ref.append(standin64(one)[0, CLASS])
        ref = torch.stack(ref)
    elif mistake == "fresh_noise":  # region k from the k-th draw of one generator
        gen = torch.Generator().manual_seed(seed)
        draws = [torch.rand(x.shape, generator=gen, dtype=x.dtype) for _ in range(steps)]
        order = perturbation.ranking(R, size)[0, :steps].tolist()
        current, ref = x.clone(), [explicit_curve(standin64, x, R, CLASS, size, 0, B)[0]]
        for k, r in enumerate(order):
            top, left = r // (64 // size) * size, r % (64 // size) * size
            noise = L + draws[k] * (H - L)
            current[..., top : top + size, left : left + size] = noise[
                ..., top : top + size, left : left + size
            ]
            with torch.no_grad():
                ref.append(standin64(current)[0, CLASS])
        ref = torch.stack(ref)
    else:
        ref = explicit_curve(standin64, x, R, CLASS, size, steps, B)
    assert rel(got, ref) < TOL
    right = perturbation.literal(standin64, x64, R64, CLASS, 16, steps, seed)[:, CLASS]
    assert rel(got, right) > 1e-3, "the mistake changes the curve"


def test_check_ships_without_the_solution():
    """Exercise 5's check goes to students: it must not import the kit's curve or the LRP."""
    from lrpkit.selfcheck import faithfulness_checks

    tree = ast.parse(inspect.getsource(faithfulness_checks))
    imported = set(
        itertools.chain.from_iterable(
            [n.module or "", *(f"{n.module}.{a.name}" for a in n.names)]
            if isinstance(n, ast.ImportFrom)
            else [a.name for a in n.names]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
        )
    )
    assert (
        not {"lrpkit.reference.perturbation", "lrpkit.reference.lrp", "lrpkit.reference.references"}
        & imported
    ), imported
