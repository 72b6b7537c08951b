"""Expected results of the checks for a configuration (instructors, the grader); stored ones.

``expected(config)`` computes, with the reference implementation ``lrpkit.reference.lrp`` (never
shipped to students), everything ``lrpkit.selfcheck.checks`` judges an observation against for a
``Config``: on its crop of castle.jpg's normalised input, in float64 with the stand-in
VGG-16 (and the tiny VGG-shaped model of ``lrpkit.selfcheck.config``),

- ``X`` the crop; ``gxi``: Gradient x Input of class c; ``lrp``: LRP (z^B on features[0],
  LRP-gamma with the config's gamma per layer); ``zb``: the relevance of the model with the
  z^B rule on features[0] only (plain gradient elsewhere); ``rel``: lrp_relevance's, the same
  on the model the checks hand it, whose convolutions above the first carry the config's
  gamma per layer in their weights (``relevance_model``), with its X dX, L dL, H dH terms
  summed over colour channels (``rel_x_sum`` ...);
- mistakes told apart: Gradient x Input of the softmax and of the top class (channel sums);
  ``gxi_tiny``, ``gxi_tiny_c2``, ``zb_tiny``, ``zb_tiny_c2``: on the tiny model, classes c, c2;
- the probe layers' outputs and gradients, right and of typical mistakes (``px_*``, ``conv_*``);
- ``castle_pixels``: castle.jpg's 224 x 224 RGB bytes (check_input's reference).

``draw(secret, student)`` draws a student's configuration and its expected results, taking
the next attempt while a draw is degenerate. ``python -m lrpkit.reference.references`` (``make
references``) writes ``data/reference/``: the public configuration's expected results
(``expected.npz``, ``input.npz``) and ``meta.json`` (the stand-in's fingerprint, the input's
sha256, versions). The checks refuse to judge when the stand-in or the input built on their
machine differs from the recorded one (torch, numpy or OpenCV changed).
"""

import copy
import dataclasses
import functools
import json
import platform
import time

import cv2
import numpy
import torch
import torch.nn.functional as F
import torchvision

import utils
from lrpkit import sheet
from lrpkit.reference import lrp, perturbation
from lrpkit.selfcheck import config as cfg
from lrpkit.selfcheck import faithfulness_checks as fc
from lrpkit.selfcheck import onepixel
from lrpkit.selfcheck.judge import NEAR

FILES = ("expected.npz", "input.npz", "perturbation.npz")
#: files of this module's earlier layout, removed when writing (other files are left alone).
LEGACY = ("gxi.npz", "lrp.npz", "diagnosis.npz")
#: a drawn configuration is degenerate when two results the checks tell apart are closer.
SEPARATION = 10 * NEAR


def zb_terms(model, X, c):
    """X dX, L dL, H dH of the model with the z^B rule on features[0] and plain layers above."""
    L, H = utils.bounds(X)
    X, L, H = (t.detach().requires_grad_(True) for t in (X, L, H))
    conv = model.features[0]
    with lrp.frozen(model), torch.enable_grad():
        z = conv(X)
        zp = (
            z
            - F.conv2d(L, conv.weight.clamp(min=0), conv.bias.clamp(min=0), padding=1)
            - F.conv2d(H, conv.weight.clamp(max=0), conv.bias.clamp(max=0), padding=1)
        )
        a = model.features[1:](lrp.trick(z, zp))
        out = model.classifier(torch.flatten(model.avgpool(a), 1))
        dX, dL, dH = torch.autograd.grad(out[0, c], (X, L, H))
    return X.detach() * dX, L.detach() * dL, H.detach() * dH


#: VGG-16 on 32-63 pixel crops with a reduced dense head (the checks' model is one too)
OnePixel = onepixel.OnePixel


@functools.lru_cache(maxsize=1)
def one_pixel(model):
    """OnePixel(model), made once per model (a float64 VGG-16 whose weights stay as they are);
    model itself when it is a OnePixel already (config.float64_model)."""
    return model if isinstance(model, OnePixel) else OnePixel(model)


def relevance_model(model, config):
    """model's modules anew around its parameters, with the config's gamma per layer in its
    convolutions' weights (config.gamma_model): the model the checks hand lrp_relevance."""
    shared = {id(p): p for p in model.parameters()}
    return cfg.gamma_model(copy.deepcopy(model, memo=shared), config.layer_gammas())


def gxi_variants(model, X, c):
    """Gradient x Input of the logit of c, of the softmax of c and of the top class (the
    runner-up when c is on top), in one batched pass."""
    Xb = X.detach().repeat(3, 1, 1, 1).requires_grad_(True)
    with lrp.frozen(model), torch.enable_grad():
        out = model(Xb)
        top = out[0].detach().topk(2).indices.tolist()
        top = top[1] if top[0] == c else top[0]
        f = out[0, c] + out[1].softmax(0)[c] + out[2, top]
        (grad,) = torch.autograd.grad(f, Xb)
    return tuple(Xb.detach() * grad)


def px_expected(config):
    """The given ConvPx's output z and relevance on the px probe."""
    probe = cfg.px_probe(config)
    w, b = probe["conv"].weight, probe["conv"].bias
    X, L, H, s = probe["X"], probe["L"], probe["H"], probe["s"]
    T = torch.ones_like(X, requires_grad=True)
    Xt, Lt, Ht = T * X, T * L, T * H
    z = F.conv2d(Xt, w, b, padding=1)
    zp = (
        z
        - F.conv2d(Lt, w.clamp(min=0), b.clamp(min=0), padding=1)
        - F.conv2d(Ht, w.clamp(max=0), b.clamp(max=0), padding=1)
    )
    (R,) = torch.autograd.grad((lrp.trick(z, zp) * s).sum(), T)
    return {"px_z": z.detach(), "px_R": R, "px_zp": zp.detach()}


def conv_expected(config):
    """LRP-gamma's output and gradient on the conv probe, and those of typical mistakes."""
    probe = cfg.conv_probe(config)
    conv, a, s, gamma = probe["conv"], probe["a"], probe["s"], probe["gamma"]
    w, b, pad = conv.weight, conv.bias, conv.padding

    def grad(rho_w, rho_b, ratio=True):
        x = a.clone().requires_grad_(True)
        zp = F.conv2d(x, rho_w, rho_b, padding=pad)
        out = lrp.trick(F.conv2d(x, w, b, padding=pad), zp) if ratio else zp
        return torch.autograd.grad((out * s).sum(), x)[0]

    gw, gb = lrp.gamma_weights(w, gamma), lrp.gamma_weights(b, gamma)
    wrong = sorted({*sheet.GAMMAS, cfg.Config.public().probe_gamma} - {gamma})
    probe = {
        "conv_z": F.conv2d(a, w, b, padding=pad),
        "conv_zp": F.conv2d(a, gw, gb, padding=pad),
        "conv_grad": grad(gw, gb),
        "conv_grad_plain": grad(w, b, ratio=False),
        "conv_grad_neg": grad(w + gamma * w.clamp(max=0), b + gamma * b.clamp(max=0)),
        "conv_grad_nobias": grad(gw, b),
        "conv_grad_zp": grad(gw, gb, ratio=False),
        "conv_wrong_gammas": torch.tensor(wrong, dtype=torch.float64),
    }
    for k, g in enumerate(wrong):
        probe[f"conv_grad_gamma{k}"] = grad(lrp.gamma_weights(w, g), lrp.gamma_weights(b, g))
    return probe


def expected(config, model64=None, pixels=None):
    """{name: numpy array} of everything the checks judge against, for a Config.

    model64: the stand-in in float64, frozen (default: the checks' model with float64 layers,
    config.float64_model); pixels:
    castle.jpg's 224 x 224 x 3 bytes (default: the stored ones the checks' input comes from).
    """
    model = cfg.float64_model() if model64 is None else model64
    pixels = cfg._arrays()["castle_pixels"] if pixels is None else pixels
    X = cfg.crop(utils.normalize(pixels / 255.0), config).double().contiguous()
    if config.size // 32 == 1:  # all drawn crops: the same model, faster (OnePixel)
        model = one_pixel(model)
    c, c2 = config.c, config.c2
    tiny = cfg.tiny_vgg(config.probe_seed)
    gxi, softmax, top = gxi_variants(model, X, c)
    x, l, h = zb_terms(relevance_model(model, config), X, c)  # noqa: E741
    with cfg.one_thread():
        small = {
            "gxi_tiny": lrp.gradient_x_input(tiny, X, c),
            "gxi_tiny_c2": lrp.gradient_x_input(tiny, X, c2),
            "zb_tiny": sum(zb_terms(tiny, X, c)),
            "zb_tiny_c2": sum(zb_terms(tiny, X, c2)),
        }
        small |= px_expected(config) | conv_expected(config)
    results = {
        "X": X,
        "gxi": gxi[None],
        "gxi_softmax_sum": softmax.sum(0),
        "gxi_top_sum": top.sum(0),
        "lrp": lrp.lrp(model, X, c, gammas=config.layer_gammas()),
        "zb": sum(zb_terms(model, X, c)),
        "rel": x + l + h,
        "rel_x_sum": x.sum(1)[0],
        "rel_l_sum": l.sum(1)[0],
        "rel_h_sum": h.sum(1)[0],
    } | small
    arrays = {k: v.detach().cpu().numpy() for k, v in results.items()}
    return arrays | {"castle_pixels": numpy.asarray(pixels, dtype=numpy.uint8)}


def _sums(exp, name):
    return exp[name].sum(1)[0]


def _rel(a, b):
    return float(numpy.linalg.norm(a - b) / numpy.linalg.norm(b))


def _close_pair(results):
    """Whether two of the results (of one shape) are within SEPARATION of each other."""
    for i, one in enumerate(results):
        for other in results[i + 1 :]:
            if one.shape == other.shape and _rel(one, other) < SEPARATION:
                return True
    return False


def _conv_results(exp):
    return [v for k, v in exp.items() if k.startswith("conv_grad")]


def degenerate(config, exp):
    """Why the checks could not tell results apart for this configuration, or None."""
    for name in ("gxi", "lrp", "zb", "rel", "gxi_tiny", "gxi_tiny_c2", "zb_tiny", "zb_tiny_c2"):
        if not numpy.abs(exp[name]).sum() or not numpy.isfinite(exp[name]).all():
            return f"{name} is zero or not finite"
    x, l, h = exp["rel_x_sum"], exp["rel_l_sum"], exp["rel_h_sum"]  # noqa: E741
    gxi, X = exp["gxi"], exp["X"]
    groups = {
        "gxi": [gxi, -gxi, X, gxi * X, exp["gxi_tiny"]],
        "gxi sums": [_sums(exp, "gxi"), exp["gxi_softmax_sum"], exp["gxi_top_sum"]],
        "gxi tiny": [exp["gxi_tiny"], exp["gxi_tiny_c2"]],
        "rel": [exp["rel"], exp["zb"], exp["zb_tiny"]],
        "zb tiny": [exp["zb_tiny"], exp["zb_tiny_c2"]],
        "rel sums": [x + l + h, x, x + l, x + h, l + h, x - l - h, _sums(exp, "lrp")],
        "zb sums": [_sums(exp, "zb"), _sums(exp, "lrp")],
        "conv": _conv_results(exp),
    }
    public = cfg.Config.public()
    if config != public:
        try:
            stored = cfg._arrays()
            groups |= {
                "public gxi": [gxi, stored["gxi"]],
                "public rel": [exp["rel"], stored["rel"]],
            }
        except cfg.StaleReferences:
            pass
    for name, results in groups.items():
        if _close_pair(results):
            return f"two results of {name} within {SEPARATION:g} of each other"
    zp, s = exp["px_zp"], cfg.px_probe(config)["s"].numpy()
    if (zp[0, 0, :2, :2] != 0).any() or (abs(zp[s != 0]) < 1e-3).any():
        return "the px probe's zp is not exactly 0 where it must be, or near 0 elsewhere"
    return None


def draw(secret, student, model64=None, pixels=None, attempts=50, bonus=False):
    """(config, expected(config)) of a student: Config.draw(secret, student, attempt) for the
    first attempt 0, 1, ... that is not degenerate; with bonus, for Exercise 5's check too
    (its expected curves then join the others, those of typical mistakes left out)."""
    for attempt in range(attempts):
        config = cfg.Config.draw(secret, student, attempt)
        # the conv probe's results alone decide most degenerate draws (1 in 4), in ~1/100
        # of the time of all results: degenerate() would refuse the same configurations
        with cfg.one_thread():  # as expected() computes them
            probe = {k: v.detach().numpy() for k, v in conv_expected(config).items()}
        if _close_pair(_conv_results(probe)):
            continue
        exp = expected(config, model64, pixels)
        if degenerate(config, exp) is not None:
            continue
        if bonus:
            more = curve_expected(config, model64, pixels, mistakes=False)
            if curve_degenerate(config, more) is not None:
                continue
            exp = exp | more
        return config, exp
    raise RuntimeError(f"no usable configuration for {student!r} in {attempts} attempts")


# ---------------------------------------------------------------------------
# Exercise 5: region perturbation curves (lrpkit.selfcheck.faithfulness_checks)
# ---------------------------------------------------------------------------


def curve_expected(config, model64=None, pixels=None, mistakes=True):
    """{name: numpy array} of what Exercise 5's check judges against, for a Config (the calls
    of faithfulness_checks.curve_calls), computed the literal way (lrpkit.reference.perturbation):
    ``curve`` on the checks' VGG-16 and ``curve_softmax`` (the same images, probabilities);
    ``curve_tiny`` on the small model, and ``curve_tiny_seed``, ``_size``, ``_class`` with
    one argument changed; ``curve_calls`` (the calls' numbers); with mistakes, the curve of
    each typical mistake (``curve_lerf`` ...), which the check needs only for a wrong curve.
    """
    calls = fc.curve_calls(config)
    model = one_pixel(cfg.float64_model() if model64 is None else model64)
    full = None if pixels is None else utils.normalize(pixels / 255.0)
    main = calls.main
    X, R = main.inputs(full)
    args = (X, R, main.c, main.size, main.steps, main.seed)
    outs = perturbation.literal(model, *args)
    results = {"curve": outs[:, main.c], "curve_softmax": outs.softmax(1)[:, main.c]}
    for name in perturbation.MISTAKES if mistakes else ():
        results[f"curve_{name}"] = perturbation.literal(model, *args, name)[:, main.c]
    tiny = cfg.tiny_vgg(config.probe_seed)
    X2, R2 = calls.second.inputs(full)
    changes = {"": {}, "_seed": {"seed": calls.other_seed}, "_size": {"size": calls.other_size}}
    changes["_class"] = {"c": calls.other_c}
    with cfg.one_thread():
        for key, change in changes.items():
            call = dataclasses.replace(calls.second, **change)
            out = perturbation.literal(tiny, X2, R2, call.c, call.size, call.steps, call.seed)
            results[f"curve_tiny{key}"] = out[:, call.c]
    arrays = {k: v.detach().cpu().numpy() for k, v in results.items()}
    return arrays | {"curve_calls": calls.numbers()}


def curve_degenerate(config, exp):
    """Why Exercise 5's check could not tell curves apart for this configuration, or None:
    a curve not finite or not falling by every step, the softmax's too close, a curve of the
    small model that another seed, region size or class leaves nearly the same, typical
    mistakes too close to each other (when given), or the public stored curve too close."""
    rel = _rel
    curves = {k: v for k, v in exp.items() if k.startswith("curve_") or k == "curve"}
    curves.pop("curve_calls", None)
    if not all(numpy.isfinite(v).all() for v in curves.values()):
        return "a curve is not finite"
    curve = exp["curve"]
    if (numpy.abs(numpy.diff(curve)) < 1e-6 * numpy.abs(curve).max()).any():
        return "a step leaves the score nearly the same"
    if rel(exp["curve_softmax"], curve) < 1e2 * fc.CURVE_NEAR:
        return "the softmax curve is close to the curve"
    for key in ("_seed", "_size", "_class"):
        if rel(exp["curve_tiny" + key], exp["curve_tiny"]) < 1e3 * fc.SAME:
            return f"curve_tiny{key} is close to curve_tiny"
    skip = ("curve_softmax", "curve_R", "curve_noise")
    drops = {k: v[0] - v for k, v in curves.items() if k not in skip and "tiny" not in k}
    for a in drops:
        for b in drops:
            if a < b and rel(drops[a], drops[b]) < 1e2 * fc.CURVE_NEAR:
                return f"the drops of {a} and {b} are close"
    if config != cfg.Config.public():
        public = fc._public()
        if public is not None and public.shape == curve.shape and rel(curve, public) < 1e-2:
            return "the curve is close to the public stored one"
    return None


def main(out=cfg.REFERENCE):
    model32 = cfg.standin()
    standin_fingerprint = cfg.fingerprint(model32.state_dict())  # before .double() below
    X32 = cfg.castle_input()
    public = cfg.Config.public()
    pixels = cfg.castle_pixels()
    start = time.perf_counter()
    arrays = expected(public, model32.double().requires_grad_(False), pixels)
    seconds = time.perf_counter() - start
    reason = degenerate(public, arrays)
    model64 = model32.double().requires_grad_(False)
    curves = curve_expected(public, model64, pixels)
    reason = reason or curve_degenerate(public, curves)
    if reason:
        raise RuntimeError(f"the public configuration is degenerate: {reason}")
    X, R = fc.curve_calls(public).main.inputs(utils.normalize(pixels / 255.0))
    main = fc.curve_calls(public).main
    fast = perturbation.one_curve(model64, X, R, main.c, main.size, main.steps, main.seed)
    if float(numpy.linalg.norm(fast.numpy() - curves["curve"])) > 1e-12 * abs(fast).max():
        raise RuntimeError("the kit's curve and the literal one differ")  # twins, as tested
    curves["curve_R"] = R.numpy()  # the check's relevance and noise: numpy and torch made them
    curves["curve_noise"] = fc.noise(X, main.seed).numpy()
    meta = {
        "about": "references for lrpkit.selfcheck.checks; written by "
        "`python -m lrpkit.reference.references`",
        "configuration": (
            "stand-in VGG-16 (utils.load_vgg16('standin')) in float64 on the "
            f"{public.size}x{public.size} centre crop of castle.jpg's normalised 224x224 input"
        ),
        "config": json.loads(public.to_json()),
        "crop": public.size,
        "class": public.c,
        "gammas": list(sheet.GAMMAS),
        "standin_fingerprint": standin_fingerprint,
        "input_sha256": cfg.input_sha256(X32),
        "castle_sha256": utils.CASTLE_SHA256,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": numpy.__version__,
            "opencv": cv2.__version__,
        },
        "files": list(FILES),
    }
    files = {
        "expected.npz": {k: v for k, v in arrays.items() if k != "castle_pixels"},
        "input.npz": {"castle_pixels": arrays["castle_pixels"]},
        "perturbation.npz": curves,
    }
    meta["arrays"] = {
        f"{name}/{key}": f"{'x'.join(map(str, a.shape)) or 'scalar'} {a.dtype}"
        for name, d in files.items()
        for key, a in d.items()
    }
    out.mkdir(parents=True, exist_ok=True)
    for name in LEGACY:
        (out / name).unlink(missing_ok=True)
    for name, d in files.items():
        numpy.savez_compressed(out / name, **d)
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum((out / name).stat().st_size for name in (*FILES, "meta.json"))
    print(f"wrote {out} ({size / 1e6:.2f} MB): {', '.join((*FILES, 'meta.json'))}")
    print(f"expected() of the public configuration: {seconds:.2f} s")


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(
        prog="python -m lrpkit.reference.references",
        description="write data/reference/: the public configuration's expected results "
        "(make references)",
        allow_abbrev=False,
    ).parse_args()
    main()
