"""What the checks run code on: a grading configuration and the inputs, models and probes it fixes.

Students get this module with the self-checks (``lrpkit.selfcheck.checks``). A ``Config`` names a
crop
of castle.jpg's 224 x 224 input, the class explained (and a second one), the gamma of each
LRP-gamma layer of the whole LRP model and the seed, shape and gamma of the probe layers.
``Config.public()`` is the self-checks' configuration, whose expected results are stored in
``data/reference/``; the grader draws a hidden one per submission (``Config.draw``) and
computes its expected results itself (``lrpkit.reference.references``). Nothing here computes an
expected result: only what code under test is run on.
"""

import contextlib
import copy
import dataclasses
import functools
import hashlib
import hmac
import io
import json
import math
from collections import OrderedDict

import numpy
import torch
import torch.nn.functional as F

import utils
from lrpkit import sheet
from lrpkit.selfcheck import onepixel

REFERENCE = utils.DATA / "reference"
#: VGG-16's input size; a crop lies inside the SIZE x SIZE image.
SIZE = 224
#: crop sizes drawn: five 2 x 2 max-poolings leave 1 x 1 of 32 ... 63 pixels (0 of fewer).
MIN_CROP, MAX_CROP = 32, 48
#: the public probe layers' seed (any number would do; the stored references use this one).
PUBLIC_PROBE_SEED = 483
#: the self-checks' crop: the CROP x CROP centre crop.
CROP = 32
#: features indices of the LRP-gamma convolutions (all but the first), in order.
LRP_LAYERS = tuple(sheet.layer_gammas())
#: output channels of VGG-16's convolutions per block 1-5 (the input has 3).
CHANNELS = (64, 128, 256, 512, 512)
#: drawn ranges: gamma per LRP-gamma layer and the probe layer's gamma (log-uniform).
GAMMA_RANGE, PROBE_GAMMA_RANGE = (1e-3, 3.0), (0.05, 2.0)
#: channels of every convolution of the tiny VGG-shaped model, width of its dense layers.
TINY, TINY_DENSE = 8, 32


class StaleReferences(RuntimeError):
    """The stored references do not belong to this installation (not a student's mistake)."""


def _int(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"Config.{name} must be an integer in [{low}, {high}]; got {value!r}")
    return value


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Config.{name} must be a number; got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"Config.{name} must be finite and positive; got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Config:
    """A grading configuration: crop (top, left, size) of the 224 x 224 input, class c (and c2,
    another class), gamma per LRP-gamma layer (in LRP_LAYERS' order), and the probe layer's
    seed, gamma and shape (out channels, in channels, kernel size, image size)."""

    top: int
    left: int
    size: int
    c: int
    c2: int
    gammas: tuple
    probe_seed: int
    probe_gamma: float
    probe_shape: tuple

    def __post_init__(self):
        _int(self.size, "size", MIN_CROP, SIZE)
        _int(self.top, "top", 0, SIZE - self.size)
        _int(self.left, "left", 0, SIZE - self.size)
        _int(self.c, "c", 0, 999)
        _int(self.c2, "c2", 0, 999)
        if self.c == self.c2:
            raise ValueError("Config.c2 must differ from Config.c")
        if not isinstance(self.gammas, tuple | list) or len(self.gammas) != len(LRP_LAYERS):
            raise ValueError(f"Config.gammas must hold {len(LRP_LAYERS)} gammas (LRP_LAYERS)")
        gammas = tuple(_positive(g, "gammas") for g in self.gammas)
        _int(self.probe_seed, "probe_seed", 0, 2**63 - 1)
        gamma = _positive(self.probe_gamma, "probe_gamma")
        shape = self.probe_shape
        if not isinstance(shape, tuple | list) or len(shape) != 4:
            raise ValueError("Config.probe_shape is (out channels, in channels, kernel, size)")
        out, in_, kernel, n = shape
        shape = (_int(out, "probe_shape", 2, 16), _int(in_, "probe_shape", 2, 16))
        shape += (_int(kernel, "probe_shape", 1, 7), _int(n, "probe_shape", 3, 16))
        if kernel % 2 == 0:
            raise ValueError("Config.probe_shape: the kernel size must be odd")
        object.__setattr__(self, "gammas", gammas)
        object.__setattr__(self, "probe_gamma", gamma)
        object.__setattr__(self, "probe_shape", shape)

    @classmethod
    def public(cls):
        """The self-checks' configuration: the centre 32 x 32 crop, the sheet's class and
        gammas, a probe layer of the shape and gamma the checks have always used."""
        top = (SIZE - CROP) // 2
        gammas = tuple(sheet.layer_gammas().values())
        c2 = (sheet.CLASS + 500) % 1000
        return cls(top, top, CROP, sheet.CLASS, c2, gammas, PUBLIC_PROBE_SEED, 0.25, (6, 4, 3, 5))

    @classmethod
    def draw(cls, secret, student, attempt=0):
        """The configuration of one student, derived from hmac-sha256(secret, student):
        the same for the same (secret, student, attempt), unpredictable without the secret.
        A grader that finds it degenerate (lrpkit.reference.references) takes the next attempt."""
        if not isinstance(secret, bytes | bytearray) or not secret:
            raise ValueError("the secret must be non-empty bytes")
        message = f"{student}\x00{int(attempt)}".encode()
        seed = int.from_bytes(hmac.new(bytes(secret), message, hashlib.sha256).digest(), "big")
        rng = numpy.random.Generator(numpy.random.PCG64(seed))
        size = int(rng.integers(MIN_CROP, MAX_CROP + 1))
        top, left = (int(x) for x in rng.integers(0, SIZE - size + 1, 2))
        c, c2 = (int(x) for x in rng.choice(1000, 2, replace=False))
        logs = numpy.log10(GAMMA_RANGE)
        gammas = tuple(float(g) for g in 10 ** rng.uniform(*logs, len(LRP_LAYERS)))
        probe_gamma = float(10 ** rng.uniform(*numpy.log10(PROBE_GAMMA_RANGE)))
        shape = (int(rng.integers(4, 9)), int(rng.integers(3, 9)))
        shape += (int(rng.choice([1, 3, 5])), int(rng.integers(4, 8)))
        probe_seed = int(rng.integers(2**62))
        return cls(top, left, size, c, c2, gammas, probe_seed, probe_gamma, shape)

    def layer_gammas(self):
        """{features index: gamma} of the LRP-gamma convolutions."""
        return dict(zip(LRP_LAYERS, self.gammas, strict=True))

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        """The Config that to_json wrote; ValueError for anything else."""
        try:
            fields = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ValueError(f"not a Config's JSON ({error})") from None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(fields, dict) or set(fields) != names:
            raise ValueError(f"a Config's JSON has exactly the fields {sorted(names)}")
        return cls(**fields)


# ---------------------------------------------------------------------------
# the stored references and the grading input and model
# ---------------------------------------------------------------------------


def fingerprint(state):
    """sha256 over names, shapes and a strided sample of every tensor of a state dict."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        sample = tensor.detach().reshape(-1)[::97].contiguous().cpu().numpy()
        digest.update(sample.tobytes())
    return digest.hexdigest()


def input_sha256(X):
    """sha256 of the float32 input's bytes: the same castle.jpg decoded the same way."""
    return hashlib.sha256(X.detach().float().contiguous().numpy().tobytes()).hexdigest()


def castle_input():
    """castle.jpg as VGG-16's input X (1 x 3 x 224 x 224 float32), as the notebooks build it."""
    return utils.normalize(utils.load_image(utils.castle_path()))


def castle_pixels():
    """castle.jpg decoded here, as 224 x 224 x 3 RGB bytes (what data/reference/ stores)."""
    return numpy.round(utils.load_image(utils.castle_path()) * 255).astype(numpy.uint8)


def standin():
    """The stand-in VGG-16 (float32, eval mode), loaded without printing its banner."""
    with contextlib.redirect_stdout(io.StringIO()):
        return utils.load_vgg16("standin")


@functools.cache
def _meta():
    path = REFERENCE / "meta.json"
    if not path.is_file():
        raise StaleReferences(
            f"{path} is missing. Instructors: run `make references`. Students: your copy of "
            "the kit is incomplete; download the student bundle again."
        )
    return json.loads(path.read_text())


@functools.cache
def _arrays():
    """The stored references: {name: numpy array} of every file meta.json lists."""
    arrays = {}
    for name in _meta()["files"]:
        with numpy.load(REFERENCE / name, allow_pickle=False) as npz:
            arrays.update({key: npz[key] for key in npz.files})
    return arrays


def stale(what):
    meta = _meta()
    here = f"torch {torch.__version__}, numpy {numpy.__version__}"
    there = ", ".join(f"{k} {meta['versions'][k]}" for k in ("torch", "numpy"))
    return StaleReferences(
        f"{what} differs from the one data/reference/ was computed with (there: {there}; "
        f"here: {here}), so the checks cannot judge your code. Students: install the pinned "
        "environment (environment.yml). Instructors: run `make references` in this environment."
    )


@functools.cache
def _X():
    """The grading input: castle.jpg's pixels as stored with the references, normalised.

    The pixels come from data/reference/, not from decoding castle.jpg here, so a JPEG
    decoder that rounds a few pixels differently (another OpenCV build) changes nothing.
    """
    X = utils.normalize(_arrays()["castle_pixels"] / 255.0)
    if input_sha256(X) != _meta()["input_sha256"]:
        raise stale("The grading input rebuilt from data/reference/")
    return X


def crop(X, config):
    """The config's crop of X (... x 224 x 224)."""
    top, left, size = config.top, config.left, config.size
    return X[..., top : top + size, left : left + size]


def grading_input(config=None):
    """The input the checks run code on: the config's crop (default: the public one's) of the
    grading input, float64."""
    return crop(_X(), config or Config.public()).double().contiguous()


# ---------------------------------------------------------------------------
# the checks' VGG-16: made once per kernel, as much of it as 32-63 pixel crops need
# ---------------------------------------------------------------------------


def _tensors(model):
    return [*model.parameters(), *model.buffers()]


def _sample(model):
    return torch.cat([t.detach().reshape(-1)[::997].double() for t in _tensors(model)])


#: set by the grader's guard cell (never by students): a function returning the stand-in's
#: weights in float64, converted once per grading run and memory-mapped, so no kernel
#: converts weights and all of them share the pages.
STANDIN64 = None


@functools.cache
def _model():
    """The checks' model: the stand-in computing in float64 as OnePixel (lrpkit.selfcheck.onepixel:
    17
    MB of its own, not 1.1 GB), frozen, made once per kernel; and a sample of its weights.
    Made on the stand-in weights that utils shares with the notebook's models when the
    notebook uses the stand-in (checked by their fingerprint; made anew when they were
    changed), else on new ones."""
    if STANDIN64 is not None:
        return _with_sample(onepixel.one_pixel_model(STANDIN64()))
    state = utils._WEIGHTS.get("standin")
    if state is None or fingerprint(state) != _meta()["standin_fingerprint"]:
        state = utils.standin_state_dict()
        if fingerprint(state) != _meta()["standin_fingerprint"]:
            raise stale("The stand-in VGG-16 built here")
    return _with_sample(onepixel.one_pixel_model(state))


def _with_sample(model):
    return model, _sample(model)


def grading_model():
    """The checks' model for one check: new modules around the parameters of the model made
    once per kernel (_model), so hooks and replaced layers of one check do not reach the
    next; weights changed in place by code under test are noticed, and the model made anew."""
    base, sample = _model()
    if any(p.dtype != torch.float64 for p in base.parameters()) or not torch.equal(
        _sample(base), sample
    ):
        _model.cache_clear()
        base, sample = _model()
    for p in base.parameters():  # undo what a previous check's code may have switched on
        p.requires_grad_(False)
        p.grad = None
    shared = {id(t): t for t in _tensors(base)}
    return copy.deepcopy(base, memo=shared).eval()


def float64_model():
    """The checks' model with ordinary float64 layers (285 MB more): what the grader's
    reference implementation computes expected results with (never the kernel's checks)."""
    base = _model()[0]
    model = copy.deepcopy(base, memo={id(t): t for t in _tensors(base)})
    return onepixel.plain(model, dense=True)


def gamma_model(model, gammas):
    """model with each convolution features[i] of gammas ({index: gamma}) replaced by an
    ordinary Conv2d with the weights w + gamma w+ and bias b + gamma b+ (model.features
    changes; the layers it held do not). A different network, not an LRP one: the model the
    checks hand lrp_relevance carries the configuration's gamma per layer, so only a function
    that uses its lrpmodel argument gets the expected relevance."""
    with torch.no_grad():
        for i, gamma in gammas.items():
            conv = model.features[i]
            if onepixel.light(conv):
                new = conv.plain()
            else:
                new = copy.deepcopy(conv, memo={id(p): p for p in conv.parameters()})
            for name in ("weight", "bias"):
                p = getattr(new, name)
                setattr(new, name, torch.nn.Parameter(p + gamma * p.clamp(min=0), False))
            model.features[i] = new
    return model


def tiny_vgg(seed):
    """A small model shaped like VGG-16 (the same 31 layers of features, avgpool, three dense
    layers, 1000 classes) with TINY channels, seeded weights, float64, eval mode: a second,
    cheap model to run code under test on."""
    rng = numpy.random.Generator(numpy.random.PCG64([seed, 2]))
    layers, channels = [], 3
    for convs in sheet.BLOCKS:
        for _ in convs:
            layers += [torch.nn.Conv2d(channels, TINY, 3, padding=1), torch.nn.ReLU(inplace=True)]
            channels = TINY
        layers.append(torch.nn.MaxPool2d(2, 2))
    dense = [TINY * 49, TINY_DENSE, TINY_DENSE, 1000]
    classifier = []
    for k in range(3):
        classifier += [torch.nn.Linear(dense[k], dense[k + 1])]
        classifier += [torch.nn.ReLU(inplace=True), torch.nn.Dropout()] if k < 2 else []
    parts = OrderedDict(
        features=torch.nn.Sequential(*layers),
        avgpool=torch.nn.AdaptiveAvgPool2d(7),
        flatten=torch.nn.Flatten(),
        classifier=torch.nn.Sequential(*classifier),
    )
    model = torch.nn.Sequential(parts).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                fan_in = m.weight[0].numel()
                bound = (6.0 / fan_in) ** 0.5
                m.weight.copy_(torch.from_numpy(rng.uniform(-bound, bound, m.weight.shape)))
                m.bias.copy_(torch.from_numpy(rng.uniform(0, 0.1, m.bias.shape)))
    return model.requires_grad_(False).eval()


# ---------------------------------------------------------------------------
# probe layers
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def one_thread():
    """Small tensors on one thread: there a parallel region costs more than it saves (on a
    busy machine, milliseconds per operation)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _conv2d(w, b):
    """A float64 Conv2d with weights w, bias b (frozen), padding that keeps the image size."""
    conv = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=w.shape[2] // 2)
    conv = conv.double()
    with torch.no_grad():
        conv.weight = torch.nn.Parameter(w.clone(), requires_grad=False)
        conv.bias = torch.nn.Parameter(b.clone(), requires_grad=False)
    return conv


def px_probe(config):
    """A small first convolution (3 -> 4 channels) for the given ConvPx on a 6 x 6 image with a
    black 3 x 3 corner: filter 0 has positive weights only, so its zp is exactly 0 at outputs
    (0..1, 0..1): z / zp is 0 / 0 there unless zp is stabilised. s: a cotangent, zero there."""
    rng = numpy.random.Generator(numpy.random.PCG64([config.probe_seed, 0]))
    w = rng.uniform(-1, 1, (4, 3, 3, 3))
    w[0] = numpy.abs(w[0])
    b = rng.uniform(0.05, 0.2, 4) * rng.choice([-1.0, 1.0], 4)
    b[0] = abs(b[0])
    img = rng.uniform(0, 1, (6, 6, 3))
    img[:3, :3] = 0
    img[4, 4] = 1
    X = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
    X = (X - utils.MEAN.double()) / utils.STD.double()
    L, H = utils.bounds(X)
    s = torch.from_numpy(rng.normal(size=(1, 4, 6, 6)))
    s[0, 0, :2, :2] = 0  # no relevance to pass back where zp = 0
    conv = _conv2d(torch.from_numpy(w), torch.from_numpy(b))
    return {"conv": conv, "X": X, "L": L, "H": H, "s": s}


def conv_probe(config):
    """The probe convolution for Conv (config.probe_shape, seeded), its input a (ReLU-like),
    a cotangent s (zero where |z| or |zp| is small, so that any stabiliser of zp gives the
    same gradient) and the config's gamma."""
    out, in_, kernel, n = config.probe_shape
    gamma = config.probe_gamma
    rng = numpy.random.Generator(numpy.random.PCG64([config.probe_seed, 1]))
    w = torch.from_numpy(rng.uniform(-0.5, 0.5, (out, in_, kernel, kernel)))
    b = torch.from_numpy(rng.uniform(0.2, 0.6, out) * rng.choice([-1.0, 1.0], out))
    a = torch.from_numpy(rng.normal(size=(1, in_, n, n))).clamp(min=0)
    s = torch.from_numpy(rng.normal(size=(1, out, n, n)))
    z = F.conv2d(a, w, b, padding=kernel // 2)
    zp = F.conv2d(a, w + gamma * w.clamp(min=0), b + gamma * b.clamp(min=0), padding=kernel // 2)
    s = s * ((zp.abs() > 0.05) & (z.abs() > 1e-3))
    return {"conv": _conv2d(w, b), "a": a, "s": s, "gamma": gamma}


def in_channels(index):
    """Input channels of VGG-16's convolution features[index]."""
    block = sheet.block_of(index)
    first = index == sheet.BLOCKS[block - 1][0]
    return 3 if index == sheet.FIRST else CHANNELS[block - 2 if first else block - 1]


def layer_rng(config, index):
    """The random generator of the probe of lrpmodel.features[index]."""
    return numpy.random.Generator(numpy.random.PCG64([config.probe_seed, 3, index]))
