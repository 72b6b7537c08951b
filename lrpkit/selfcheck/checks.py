"""Self-checks of Exercises 3, 4 and 5 (students, and the grader): one verdict line per check.

Each check runs your code itself on a fixed grading configuration -- the stand-in VGG-16
(``utils.load_vgg16("standin")``) converted to float64, on the 32 x 32 centre crop of
castle.jpg (rows and columns 96-127 of the 224 x 224 input, normalised), class 483 (castle),
and small probe layers -- whatever model your notebook uses, and compares the result with
reference results stored in ``data/reference/`` (written by ``make references``);
Exercise 5's check is ``lrpkit.selfcheck.faithfulness_checks``'s, called as the others. The crop
keeps grading fast; your code must work for any input size, model and class: the checks also
call it on a second, small model and another class, twice on the same X, and on an X that
already requires grad, and the grader runs them on a configuration of its own. Only
``check_input`` looks at your full 224 x 224 ``X``. A check prints exactly one line,
``PASS <check>: ...`` or ``FAIL <check>: <what is wrong>. Hint: <what to do>``, and returns
True or False. A mistake in your code never raises here: an exception becomes a FAIL line.

Results are compared by their relative L2 error ||R - R_ref|| / ||R_ref|| in float64, which
must stay below ``TOL`` (1e-6). (On the whole image in float32, two correct LRP
implementations differ by about 1e-2, because divisions by near-zero zp amplify rounding; in
float64 by about 1e-8.) So write code that works in any dtype: no ``.float()`` inside your
functions.

For graders: a check is an observation (``observe_*``: runs the code, in the kernel) and a
judgement (``judge_*``: compares with expected results, anywhere); ``encode_observation``
and ``decode_observation`` carry an observation out of the kernel as one line of text.
"""

import base64
import io
import re
import zipfile

import numpy

from lrpkit.selfcheck import judge, observe
from lrpkit.selfcheck.config import (  # noqa: F401 -- the checks' names; caches the grader shares
    _X,
    CROP,
    REFERENCE,
    Config,
    StaleReferences,
    _arrays,
    _meta,
    _model,
    castle_input,
    castle_pixels,
    fingerprint,
    grading_input,
    grading_model,
    input_sha256,
    one_thread,
    stale,
    standin,
)
from lrpkit.selfcheck.faithfulness_checks import (
    judge_perturbation_curve,
    observe_perturbation_curve,
)
from lrpkit.selfcheck.judge import NEAR, PASS_TOL, TOL, Fail  # noqa: F401
from lrpkit.selfcheck.judge_lrp import judge_conv, judge_lrpmodel, judge_relevance
from lrpkit.selfcheck.observe import (
    observe_conv,
    observe_gradient_x_input,
    observe_input,
    observe_lrpmodel,
    observe_relevance,
)
from lrpkit.sheet import CLASS  # noqa: F401

judge_input, judge_gradient_x_input = judge.judge_input, judge.judge_gradient_x_input

#: check name -> (observe, judge): observe(*the check's arguments, config) -> observation;
#: judge(observation, expected) -> the PASS message or a Fail.
CHECKS = {
    "check_input": (observe_input, judge_input),
    "check_gradient_x_input": (observe_gradient_x_input, judge_gradient_x_input),
    "check_conv": (observe_conv, judge_conv),
    "check_lrpmodel": (observe_lrpmodel, judge_lrpmodel),
    "check_relevance": (observe_relevance, judge_relevance),
    "check_perturbation_curve": (observe_perturbation_curve, judge_perturbation_curve),
}
# ---------------------------------------------------------------------------
# observations as one line of text
# ---------------------------------------------------------------------------

#: an encoded observation starts with this and holds no whitespace.
PREFIX = "lrpobs1:"
#: bounds that decode_observation enforces (encoded characters, arrays, decoded bytes).
MAX_ENCODED, MAX_ARRAYS, MAX_BYTES = 4_000_000, 2_000, 16_000_000
_KEY = re.compile(r"[A-Za-z0-9_.]{1,64}")
_KINDS = "biufU"  # bool, integers, floats, str: never objects


def _array(key, value):
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"observation key {key!r}: letters, digits, _ and . only")
    array = numpy.asarray(value)
    if array.dtype.kind not in _KINDS:
        raise ValueError(f"observation {key!r}: {array.dtype} is not a plain array")
    return array


def encode_observation(obs):
    """An observation ({key: array, number, str or flag}) as one line of ASCII text."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in obs.items():
            data = io.BytesIO()
            numpy.lib.format.write_array(data, _array(key, value), allow_pickle=False)
            archive.writestr(key + ".npy", data.getvalue())
    text = PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")
    if len(text) > MAX_ENCODED:
        raise ValueError(f"the observation is too large ({len(text)} characters)")
    return text


def decode_observation(text):
    """The observation encode_observation wrote; ValueError for anything else."""
    if not isinstance(text, str) or not text.startswith(PREFIX) or len(text) > MAX_ENCODED:
        raise ValueError("not an encoded observation")
    try:
        raw = base64.b64decode(text[len(PREFIX) :].strip(), validate=True)
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ARRAYS or sum(i.file_size for i in infos) > MAX_BYTES:
                raise ValueError("too large")
            obs = {}
            for info in infos:
                key = info.filename.removesuffix(".npy")
                if not info.filename.endswith(".npy") or key in obs:
                    raise ValueError(f"unexpected entry {info.filename!r}")
                data = io.BytesIO(archive.read(info))
                obs[key] = _array(key, numpy.lib.format.read_array(data, allow_pickle=False))
            return obs
    except ValueError:
        raise
    except Exception as error:
        raise ValueError(f"not an encoded observation ({type(error).__name__})") from None


# ---------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------


def stored():
    """The expected results of the public configuration (data/reference/), checked for
    belonging to this installation (StaleReferences otherwise)."""
    _X()
    return _arrays()


def observation(name, *args, config=None):
    """Grading, in the kernel: the observation of check `name` on the code under test (the
    check's arguments) and a Config (default: the public one), as one line of text. Never
    raises for the code under test (StaleReferences: not the student's doing)."""
    try:
        with one_thread():  # small tensors: on a busy machine, threads wait more than they work
            obs = CHECKS[name][0](*args, config=config or Config.public())
        return encode_observation(obs)
    except StaleReferences:
        raise
    except Exception as error:  # a result so odd that the observation tripped over it
        return encode_observation({"observe.error": observe.describe(error)})


def verdict(name, obs, expected):
    """(passed, the one verdict line) of check `name` for an observation and expected results."""
    kit = sorted(str(judge.get(obs, k)) for k in obs if k.endswith(".kit"))
    if "observe.error" in obs:
        result = Fail(
            f"the check could not evaluate your result ({judge.get(obs, 'observe.error')})",
            "return a torch tensor shaped like X, as the task asks",
        )
    elif kit:
        result = Fail(
            f"your code called the kit's own {kit[0]} instead of computing the result itself",
            "write the computation yourself: the checks' and the explorer's code earn no points",
        )
    else:
        result = CHECKS[name][1](obs, expected)
    if isinstance(result, Fail):
        line, ok = f"FAIL {name}: {result.what}. Hint: {result.hint}", False
    else:
        line, ok = f"PASS {name}: {result}", True
    return ok, " ".join(line.split())  # one line, whatever the messages contain


#: set by the grader's guard cell to a hidden Config: the checks then only observe on it and
#: print the observation, which the grader judges outside the kernel (never set by students).
GRADING = None


def _check(name, *args):
    """Observe on the public configuration, judge against the stored references, print one
    line; the observation goes through its text form, as in grading. While grading, print
    the observation on the hidden configuration instead."""
    if GRADING is not None:
        print(observation(name, *args, config=GRADING))
        return None
    ok, line = verdict(name, decode_observation(observation(name, *args)), stored())
    print(line)
    return ok


def check_input(X):
    """X is castle.jpg as VGG-16 expects it: 1 x 3 x 224 x 224, float32, RGB, normalised."""
    return _check("check_input", X)


def check_gradient_x_input(gradient_x_input):
    """gradient_x_input(model, X, c) returns R_i = x_i * df_c/dx_i, shaped like X."""
    return _check("check_gradient_x_input", gradient_x_input)


def check_conv(Conv, ConvPx):
    """Conv(conv, gamma) implements LRP-gamma by the gradient trick; the LRP model built the
    sheet's way with it gives the reference relevance."""
    return _check("check_conv", Conv, ConvPx)


def check_lrpmodel(lrpmodel, model=None):
    """lrpmodel has the sheet's layers (the z^B rule on features[0], LRP-gamma with each
    block's gamma on the others), the dense layers intact, and dropout off; the notebook's
    model (when given) is another model, left as it was."""
    return _check("check_lrpmodel", lrpmodel, model)


def check_relevance(lrp_relevance, ConvPx):
    """lrp_relevance(lrpmodel, X, c) returns the extended Gradient x Input
    R = X * dX + L * dL + H * dH, shaped like X."""
    return _check("check_relevance", lrp_relevance, ConvPx)


def check_perturbation_curve(perturbation_curve):
    """perturbation_curve(model, X, R, c, size, steps, seed) returns f_c(x^(k)), k = 0..steps,
    the k most relevant size x size regions replaced by seeded uniform noise (Exercise 5)."""
    return _check("check_perturbation_curve", perturbation_curve)
