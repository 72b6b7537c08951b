"""Exercise 5's check, region perturbation (students, and the grader): run it, then judge it.

``checks.check_perturbation_curve(perturbation_curve)`` prints one line, ``PASS ...`` or
``FAIL ...: <what is wrong>. Hint: <what to do>``. Like the checks of Exercises 3 and 4
(``lrpkit.selfcheck.checks``) it is an observation (``observe_perturbation_curve``: runs your
function
in the kernel, records what it returned) and a judgement (``judge_perturbation_curve``:
compares with expected curves). A ``Config`` fixes the calls (``curve_calls``):

- on the checks' VGG-16 (the stand-in in float64) and a crop of castle.jpg: the config's
  class, a region size, steps and noise seed, and a relevance R made for the check (its
  regions' sums alternate in sign, so ranking by |R| or least relevant first shows);
- a second configuration: the small VGG-shaped model, another crop, class, region size and
  seed, twice (seeded noise gives the same curve); then with one of seed, region size and
  class changed at a time (a curve that stays the same ignores that argument).

The public configuration's expected curves are stored in ``data/reference/perturbation.npz``
(``make references``); the grader computes those of a hidden configuration itself.
"""

import dataclasses

import numpy
import torch

from lrpkit import sheet
from lrpkit.selfcheck import config as cfg
from lrpkit.selfcheck import observe
from lrpkit.selfcheck.judge import (
    NEAR,
    TOL,
    Fail,
    caller_unchanged,
    get,
    judged,
    model_dtype_hint,
    raised,
    rel,
)

#: drop curves this close to a typical mistake's are that mistake (relative L2)
CURVE_NEAR = 1e-4
#: two calls whose curves differ by less than this (relative L2) gave the same curve
SAME = 1e-9
#: a call's region sizes: they divide its crop (32 or 48 pixels) into at least 3 x 3 regions
SIZES = {32: (4, 8), 48: (4, 8, 12, 16)}
#: steps drawn for hidden configurations (the curve has steps + 1 values)
STEPS = (4, 6)
#: typical mistakes, tried in this order: (name, what is wrong, hint); their curves are
#: lrpkit.reference.perturbation.literal's (the reference, never shipped)
MISTAKES = (
    (
        "lerf",
        "the least relevant regions go first",
        "sort the regions by summed relevance in descending order: the most relevant first",
    ),
    (
        "pixels",
        "single pixels are replaced, not regions",
        "sum the relevance over each size x size region (and the colour channels), rank the "
        "regions, and replace whole regions",
    ),
    (
        "single",
        "the perturbations do not accumulate: step k replaces only the k-th region",
        "keep replacing in the same image: step k has the k most relevant regions replaced",
    ),
    (
        "absolute",
        "the regions are ranked by absolute relevance",
        "rank by the summed relevance itself: negative evidence goes last",
    ),
    (
        "fresh_noise",
        "each step draws new noise: region k gets the k-th draw",
        "draw the noise once, before the loop, and take each region's values from it",
    ),
    (
        "unmapped",
        "the noise is not in the pixel range: u was used as it is",
        "map u in [0, 1) to the normalised pixel range: L + u * (H - L), L, H = utils.bounds(X)",
    ),
)
FN = "perturbation_curve"
ARGS = "(model, X, R, c, size, steps, seed)"
CURVE_HINT = (
    "return a 1-D tensor of steps + 1 scores: the logit of class c for the unperturbed image "
    "(k = 0), then after each of the steps replacements"
)
ARGS_HINT = f"use only the arguments {ARGS}, never the notebook's model, X, R or c1"
SEED_HINT = (
    "draw u once with torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), "
    "dtype=X.dtype)"
)


# ---------------------------------------------------------------------------
# what the check runs perturbation_curve on
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CurveCall:
    """One call perturbation_curve(model, X, R, c, size, steps, seed): on the checks' VGG-16
    or (tiny) the small VGG-shaped model; X the n x n crop at (top, left) of the grading
    input; R made from relevance_seed (curve_relevance); class c, region size, steps, seed."""

    tiny: bool
    top: int
    left: int
    n: int
    c: int
    size: int
    steps: int
    seed: int
    relevance_seed: int

    def inputs(self, full=None):
        """(X, R) of the call, float64, 1 x 3 x n x n: X cropped from full (default: the
        grading input, castle.jpg's 224 x 224 normalised input)."""
        full = cfg._X() if full is None else full
        X = full[..., self.top : self.top + self.n, self.left : self.left + self.n]
        return X.double().contiguous(), curve_relevance(self.n, self.size, self.relevance_seed)

    def args(self, model, X, R, **change):
        """perturbation_curve's arguments, with fields changed (size=..., c=..., seed=...)."""
        call = dataclasses.replace(self, **change)
        return model, X.clone(), R.clone(), call.c, call.size, call.steps, call.seed


@dataclasses.dataclass(frozen=True)
class CurveCalls:
    """The check's calls: main (the checks' VGG-16), second (the small model), and the values
    of seed, size and class that the second call is repeated with, one at a time."""

    main: CurveCall
    second: CurveCall
    other_seed: int
    other_size: int
    other_c: int

    def numbers(self):
        """The calls' numbers as one array (expected results carry them for the messages)."""
        m, s = self.main, self.second
        return numpy.array(
            [m.size, m.steps, m.seed, m.c, s.size, s.steps, s.seed, s.c]
            + [self.other_seed, self.other_size, self.other_c],
            dtype=numpy.int64,
        )


def curve_calls(config):
    """The calls of a Config: for the public one, the self-check's fixed ones (8 x 8 regions
    of the 32 x 32 centre crop, class 483, 6 steps, seed 7; then the small model on a 48 x 48
    crop, 12 x 12 regions, class 983, 5 steps, seed 11); for others, drawn from the
    config's probe seed (the main crop inside the config's, the class c, then class c2)."""
    if config == cfg.Config.public():
        main = CurveCall(False, 96, 96, 32, config.c, 8, 6, 7, 5)
        second = CurveCall(True, 40, 150, 48, config.c2, 12, 5, 11, 6)
        return CurveCalls(main, second, 12, 16, 17)
    rng = numpy.random.Generator(numpy.random.PCG64([config.probe_seed, 5]))
    n = 48 if config.size >= 48 else 32
    size = int(rng.choice(SIZES[n]))
    seeds = [int(s) for s in rng.choice(2**31, 5, replace=False)]
    steps = [int(s) for s in rng.integers(STEPS[0], STEPS[1] + 1, 2)]
    main = CurveCall(False, config.top, config.left, n, config.c, size, steps[0], *seeds[:2])
    n2 = int(rng.choice([32, 48]))
    top, left = (int(x) for x in rng.integers(0, cfg.SIZE - n2 + 1, 2))
    size2 = int(rng.choice([s for s in SIZES[n2] if s != size]))  # another size than main's
    other = int(rng.choice([s for s in SIZES[n2] if s != size2]))
    second = CurveCall(True, top, left, n2, config.c2, size2, steps[1], *seeds[2:4])
    other_c = int(rng.choice([k for k in range(1000) if k not in (config.c, config.c2)]))
    return CurveCalls(main, second, seeds[4], other, other_c)


def noise(X, seed):
    """The task's seeded uniform numbers u in [0, 1), shaped like X."""
    return torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), dtype=X.dtype)


def _public_inputs(X, R, seed):
    """The public configuration's relevance and noise as stored with its expected curves
    (StaleReferences when numpy or torch make other numbers here)."""
    arrays = cfg._arrays()
    if "curve_R" not in arrays:
        raise cfg.stale("data/reference/perturbation.npz")
    if not numpy.array_equal(arrays["curve_R"], R.numpy()):
        raise cfg.stale("The relevance Exercise 5's check makes (with numpy)")
    if not numpy.array_equal(arrays["curve_noise"], noise(X, seed).numpy()):
        raise cfg.stale("torch.rand with a seeded generator (Exercise 5's noise)")


def curve_relevance(n, size, seed):
    """A relevance for the check, 1 x 3 x n x n float64: each size x size region sums to about
    its level, the levels n_regions, ..., 1 in size, the largest negative and the signs
    alternating by size, shuffled over the image, plus pixel noise that changes no ranking.
    So the most relevant region is not the largest in |R|, and least relevant first starts
    elsewhere too."""
    rng = numpy.random.Generator(numpy.random.PCG64([seed, 6]))
    k = n // size
    sizes = numpy.arange(k * k, 0, -1.0)
    levels = rng.permutation(sizes * numpy.where(numpy.arange(k * k) % 2, 1.0, -1.0))
    R = numpy.kron(levels.reshape(k, k), numpy.ones((size, size))) / (3 * size * size)
    R = R[None].repeat(3, 0) + rng.normal(scale=0.02 / size, size=(3, n, n))
    return torch.from_numpy(R[None].copy())


# ---------------------------------------------------------------------------
# observation (in the kernel)
# ---------------------------------------------------------------------------


def observe_perturbation_curve(perturbation_curve, config=None):
    """perturbation_curve on the checks' VGG-16 (result, the dtype its model was handed,
    whether X or R was changed), then on the small model: twice the same call, then with
    another seed, region size and class (how much the curve changed)."""
    config = config or cfg.Config.public()
    calls = curve_calls(config)
    obs = {}
    model, tiny = cfg.grading_model(), cfg.tiny_vgg(config.probe_seed)
    X, R = calls.main.inputs()
    if config == cfg.Config.public():
        _public_inputs(X, R, calls.main.seed)
    args = calls.main.args(model, X, R)
    with observe.quiet(), cfg.one_thread():
        with observe.model_input(obs, "R", model):
            curve, ok = observe.run(obs, "R", perturbation_curve, *args)
        obs["R.changed_values"] = not torch.equal(args[1], X)
        obs["R.changed_relevance"] = not torch.equal(args[2], R)
        if not ok:
            return obs
        observe.record(obs, "R", curve)
        X2, R2 = calls.second.inputs()
        second, ok = observe.run(obs, "tiny", perturbation_curve, *calls.second.args(tiny, X2, R2))
        if not ok:
            return obs
        observe.record(obs, "tiny", second)
        changes = {
            "again": {},
            "seed": {"seed": calls.other_seed},
            "size": {"size": calls.other_size},
            "class": {"c": calls.other_c},
        }
        for key, change in changes.items():
            args2 = calls.second.args(tiny, X2, R2, **change)
            result, ok = observe.run(obs, key, perturbation_curve, *args2)
            if ok:
                observe.record(obs, key, result, second)
    return obs


# ---------------------------------------------------------------------------
# judgement (anywhere)
# ---------------------------------------------------------------------------


#: the hint for an exception about dtypes, from what the checks' model was handed
dtype_hint = model_dtype_hint(FN, ARGS)


def curve(obs, key, ref, what):
    """The observed curve under key as a float64 array, after checking type, shape, dtype."""
    kind = get(obs, key + ".type")
    if kind != "Tensor":
        raise Fail(f"{what} is a {kind}, not a torch tensor", CURVE_HINT)
    shape, steps = tuple(get(obs, key + ".shape").reshape(-1).tolist()), len(ref) - 1
    stored(get(obs, key), ref, what)
    if shape == (steps,):
        raise Fail(
            f"{what} has {steps} values, one short of steps + 1 = {steps + 1}",
            "start the curve with the score of the unperturbed image (k = 0)",
        )
    if shape != ref.shape:
        raise Fail(f"{what} has shape {shape}, expected {ref.shape}", CURVE_HINT)
    dtype = get(obs, key + ".dtype")
    if dtype != "torch.float64":
        raise Fail(
            f"{what} is {dtype}, but X was torch.float64",
            f"do not convert dtypes inside {FN} (no .float()): return the model's scores as "
            "they are",
        )
    values = get(obs, key)
    if not numpy.isfinite(values).all():
        raise Fail(f"{what} contains NaN or inf", CURVE_HINT)
    return values


def stored(values, ref, what):
    """A Fail when values are the self-check's stored curve, and ref (the right one) is not."""
    public = _public()
    if values is not None and public is not None and values.shape == public.shape:
        if rel(values, public) < NEAR and not (
            ref.shape == public.shape and rel(ref, public) < NEAR
        ):
            raise Fail(
                f"{what} is the self-check's stored curve (data/reference/perturbation.npz), "
                "not one computed from the arguments",
                "compute the curve from the arguments you are given; do not load or keep "
                "stored results",
            )


def _public():
    try:
        return cfg._arrays()["curve"]
    except Exception:
        return None


def unseeded(obs):
    """A Fail when the same call twice gave different curves."""
    diff = get(obs, "again.diff")
    if diff is not None and diff > SAME:
        raise Fail(
            "two runs with the same seed give different curves: the noise is not seeded",
            SEED_HINT,
        )


def ignored(obs, numbers, keys=("size", "class", "seed")):
    """A Fail when the curve stayed the same with another seed, region size or class."""
    _, _, _, _, size, _, seed, c, other_seed, other_size, other_c = numbers.tolist()
    cases = [
        (
            "size",
            f"region sizes {size} and {other_size}: it ignores its size argument",
            "cut the image into size x size regions with the size you are given (no fixed 8 or 14)",
        ),
        (
            "class",
            f"classes {c} and {other_c}: it ignores its class argument c",
            f"record the logit of the class c you are given, model(x)[0, c] (not c1 or "
            f"{sheet.CLASS})",
        ),
        (
            "seed",
            f"seeds {seed} and {other_seed}: the noise ignores the seed argument",
            "seed the generator with the seed you are given: "
            "torch.Generator().manual_seed(seed), not a fixed number",
        ),
    ]
    for key, what, hint in cases:
        diff = get(obs, key + ".diff") if key in keys else None
        if diff is not None and diff < SAME:
            raise Fail(f"{FN} gives the same curve for {what}", hint)


def judge_perturbation_curve(obs, expected):
    """perturbation_curve(model, X, R, c, size, steps, seed) returns f_c(x^(k)), k = 0..steps,
    the k most relevant size x size regions replaced by seeded uniform noise."""
    return judged(_perturbation_curve, obs, expected)


def _perturbation_curve(obs, exp):
    numbers = exp["curve_calls"]
    call = f"{FN}{ARGS}"
    hint = "make it work for any model, input, relevance, class, size, steps and seed"
    raised(obs, "R", call, hint, dtype_hint)
    ref = exp["curve"]
    A = curve(obs, "R", ref, f"{FN}'s result")
    error = rel(A, ref)
    if error < TOL:
        _second(obs, exp, numbers)
        caller_unchanged(obs, "R", FN)
        _relevance_unchanged(obs)
        size, steps = numbers[0], numbers[1]
        return (
            f"the perturbation curve matches the reference ({steps} steps of {size} x {size} "
            f"regions, and on a second configuration; relative L2 error below {TOL:.0e} in "
            "float64)"
        )
    unseeded(obs)
    ignored(obs, numbers, ("class",))  # before the first value, which a fixed class changes
    if rel(A[:1], ref[:1]) > TOL:
        if rel(A, exp["curve_softmax"]) < CURVE_NEAR:
            raise Fail(
                "the curve holds softmax probabilities",
                "record the logit model(x)[0, c], the score before the softmax",
            )
        raise Fail(
            "the first value is not the logit of the unperturbed image",
            "start the curve with model(X)[0, c] for the image as it is (k = 0)",
        )
    drop = A[0] - A
    for name, what, hint in MISTAKES:
        variant = exp.get(f"curve_{name}")
        if variant is not None and rel(drop, variant[0] - variant) < CURVE_NEAR:
            raise Fail(what, hint)
    ignored(obs, numbers)
    caller_unchanged(obs, "R", FN)
    _relevance_unchanged(obs)
    raise Fail(
        f"the curve differs from the reference (relative L2 error {error:.2g})",
        "rank the size x size regions by summed relevance, most relevant first; step k "
        "replaces the k most relevant regions by the noise L + u * (H - L), u drawn once",
    )


def _second(obs, exp, numbers):
    """After a right first curve: the second configuration's curve, and the same curve for
    the same call twice, different ones with another seed, region size and class."""
    other = (
        "another configuration (a small VGG-shaped model, another crop, class, region size "
        "and seed)"
    )
    raised(obs, "tiny", f"{FN}{ARGS} for {other}", ARGS_HINT, dtype_hint)
    ref = exp["curve_tiny"]
    B = curve(obs, "tiny", ref, f"{FN}'s result for {other}")
    unseeded(obs)
    for key in ("again", "seed", "size", "class"):
        raised(obs, key, f"{FN}{ARGS} for {other}", ARGS_HINT, dtype_hint)
    ignored(obs, numbers)
    error = rel(B, ref)
    if error >= TOL:
        raise Fail(
            f"{FN} is right for VGG-16 on the check's crop but wrong for {other} (relative "
            f"L2 error {error:.2g})",
            ARGS_HINT,
        )


def _relevance_unchanged(obs):
    if get(obs, "R.changed_relevance"):
        raise Fail(
            f"{FN} changed the values of the caller's R",
            "do not change R in place; rank the regions from R as it is",
        )
