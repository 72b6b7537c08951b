"""Self-checks for Exercise 5, region perturbation (students, and the grader): one verdict line.

``check_perturbation_curve(perturbation_curve)`` runs your function itself on a fixed small
configuration -- the stand-in VGG-16 in float64 on the 32 x 32 centre crop of castle.jpg (as
the checks of Exercises 3 and 4, see ``lrpkit.checks``), class 483, the sheet's LRP relevance
of that crop, ``SIZE`` x ``SIZE`` regions, ``STEPS`` steps, noise seed ``SEED`` -- and
compares the curve with the one stored in ``data/reference/perturbation.npz``; when they
differ, with stored curves of typical mistakes, to say which one it is. It prints exactly
one line, ``PASS ...`` or ``FAIL ...: <what is wrong>. Hint: <what to do>``, and returns True
or False.
"""

import functools

import numpy
import torch

from lrpkit import checks
from lrpkit.checks import Fail, _call, _rel, _verdict

FILE = checks.REFERENCE / "perturbation.npz"
#: the check's configuration: regions of SIZE x SIZE pixels on the 32 x 32 crop, STEPS steps
SIZE, STEPS, SEED, OTHER_SEED = 8, 8, 7, 8
#: largest accepted relative L2 error of the curve (float64)
TOL = checks.TOL
#: a drop curve this close to a mistake's is that mistake
NEAR = 1e-4
#: stored curves of mistakes: (name, what is wrong, hint), tried in this order
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
    (
        "softmax",
        "the curve holds softmax probabilities",
        "record the logit model(x)[0, c], the score before the softmax",
    ),
)
CURVE_HINT = (
    "return a 1-D tensor of steps + 1 scores: the logit of class c for the unperturbed image "
    "(k = 0), then after each of the steps replacements"
)


@functools.cache
def _stored():
    if not FILE.is_file():
        raise checks.StaleReferences(
            f"{FILE} is missing. Instructors: run `python -m lrpkit.perturbation references`. "
            "Students: your copy of the kit is incomplete; download the student bundle again."
        )
    with numpy.load(FILE) as npz:
        return {key: torch.from_numpy(npz[key]) for key in npz.files}


def _inputs():
    """The grading model and input, and the stored relevance; refuses stale references."""
    stored = _stored()
    X = checks.grading_input()
    if not torch.equal(X, stored["X"]):
        raise checks.stale("The grading input of data/reference/perturbation.npz")
    return checks.grading_model(), X, stored["R"].clone()


def _curve(result, steps, like):
    """The result as a detached 1-D float64 tensor, after checking type, shape and dtype."""
    what = "perturbation_curve's result"
    if not torch.is_tensor(result):
        raise Fail(f"{what} is a {type(result).__name__}, not a torch tensor", CURVE_HINT)
    shape, want = tuple(result.shape), (steps + 1,)
    if shape == (steps,):
        raise Fail(
            f"{what} has {steps} values, one short of steps + 1 = {steps + 1}",
            "start the curve with the score of the unperturbed image (k = 0)",
        )
    if shape != want:
        raise Fail(f"{what} has shape {shape}, expected {want}", CURVE_HINT)
    if result.dtype != like.dtype:
        raise Fail(f"{what} is {result.dtype}, but X was {like.dtype}", checks.DTYPE_HINT)
    result = result.detach()
    if not torch.isfinite(result).all():
        raise Fail(f"{what} contains NaN or inf", CURVE_HINT)
    return result


def check_perturbation_curve(perturbation_curve):
    """perturbation_curve(model, X, R, c, size, steps, seed) returns f_c(x^(k)), k = 0..steps,
    the k most relevant size x size regions replaced by seeded uniform noise."""

    def run():
        stored = _stored()
        model, X, R = _inputs()
        hint = "make it work for any model, input, relevance, class, size, steps and seed"

        def call(seed):
            args = (model, X.clone(), R.clone(), checks.CLASS, SIZE, STEPS, seed)
            return _curve(
                _call("perturbation_curve(...)", hint, perturbation_curve, *args), STEPS, X
            )

        first = call(SEED)
        if not torch.equal(first, call(SEED)):
            raise Fail(
                "two runs with the same seed give different curves: the noise is not seeded",
                "draw u with torch.rand(X.shape, generator=torch.Generator().manual_seed(seed), "
                "dtype=X.dtype)",
            )
        ref = stored["curve"]
        error = _rel(first, ref)
        if error < TOL:
            return (
                f"the perturbation curve matches the reference ({STEPS} steps of {SIZE} x {SIZE} "
                f"regions; relative L2 error below {TOL:.0e} in float64)"
            )
        if torch.equal(first, call(OTHER_SEED)):
            raise Fail(
                "the curve does not change with the seed",
                "seed the generator with the seed argument, not a fixed number",
            )
        if _rel(first[:1], ref[:1]) > TOL:
            if _rel(first, stored["softmax"]) < NEAR:
                raise Fail(MISTAKES[-1][1], MISTAKES[-1][2])
            raise Fail(
                "the first value is not the logit of the unperturbed image",
                "start the curve with model(X)[0, c] for the image as it is (k = 0)",
            )
        drop = first[0] - first
        for name, what, fix in MISTAKES:
            variant = stored[name]
            if _rel(drop, variant[0] - variant) < NEAR:
                raise Fail(what, fix)
        raise Fail(
            f"the curve differs from the reference (relative L2 error {error:.2g})",
            "rank the size x size regions by summed relevance, most relevant first; step k "
            "replaces the k most relevant regions by the noise L + u * (H - L), u drawn once",
        )

    return _verdict("check_perturbation_curve", run)
