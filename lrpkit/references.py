"""Stored references for the self-checks (instructors): ``python -m lrpkit.references``.

``make references`` runs this. It computes, with the reference implementation
``lrpkit.lrp``, on the grading configuration -- the stand-in VGG-16 in float64, the
``checks.CROP`` x ``checks.CROP`` (32 x 32) centre crop of castle.jpg's normalised 224 x 224
input, class 483 -- what ``lrpkit.checks`` compares the students' code with, and writes
``data/reference/``:

- ``input.npz``: castle.jpg's 224 x 224 RGB pixels (uint8), from which the checks rebuild the
  input (``check_input`` compares the student's whole X with it; the others use the crop);
- ``gxi.npz``: Gradient x Input, float64, 1 x 3 x 32 x 32;
- ``lrp.npz``: the sheet's LRP (z^B on features[0], LRP-gamma per block), float64, same shape;
- ``diagnosis.npz``: what the checks tell mistakes apart with. The relevance of the model
  with the z^B rule on features[0] only (the plain gradient elsewhere; ``check_relevance``
  uses it), summed over colour channels, in float64, and its X dX, L dL, H dH terms in float32;
  Gradient x Input of the softmax and of the top class (channel sums, float32); and small
  probe layers (float64) with the given ConvPx's and LRP-gamma's outputs and gradients and
  those of typical mistakes;
- ``meta.json``: the stand-in's fingerprint, the input's sha256, versions, shapes.

The checks refuse to judge when the stand-in or the input built on their machine has a
different fingerprint than the one recorded here (torch, numpy or OpenCV changed).
"""

import json
import platform

import cv2
import numpy
import torch
import torch.nn.functional as F
import torchvision

import utils
from lrpkit import checks, lrp, sheet

FILES = ("gxi.npz", "lrp.npz", "diagnosis.npz", "input.npz")
PROBE_SEED = 483


def zb_terms(model, X, c):
    """X dX, L dL, H dH of the model with the z^B rule on features[0] and plain layers above."""
    L, H = utils.bounds(X)
    X, L, H = (t.detach().requires_grad_(True) for t in (X, L, H))
    conv = model.features[0]
    with lrp.frozen(model):
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


def _probe_px(rng):
    """A 3 -> 4 channel first convolution on a 6 x 6 image with a black 3 x 3 corner: filter 0
    has positive weights only, so its zp is exactly 0 at outputs (0..1, 0..1): the sheet's ConvPx
    gives NaN there (z / 0), a stabilised one z."""
    w = rng.uniform(-1, 1, (4, 3, 3, 3))
    w[0] = numpy.abs(w[0])
    b = rng.uniform(0.05, 0.2, 4) * rng.choice([-1.0, 1.0], 4)
    b[0] = abs(b[0])
    img = rng.uniform(0, 1, (6, 6, 3))
    img[:3, :3] = 0
    img[4, 4] = 1
    X = (torch.from_numpy(img.transpose(2, 0, 1).copy())[None] - utils.MEAN.double()) / (
        utils.STD.double()
    )
    L, H = utils.bounds(X)
    s = torch.from_numpy(rng.normal(size=(1, 4, 6, 6)))
    w, b = torch.from_numpy(w), torch.from_numpy(b)
    T = torch.ones_like(X, requires_grad=True)
    Xt, Lt, Ht = T * X, T * L, T * H
    z = F.conv2d(Xt, w, b, padding=1)
    zp = (
        z
        - F.conv2d(Lt, w.clamp(min=0), b.clamp(min=0), padding=1)
        - F.conv2d(Ht, w.clamp(max=0), b.clamp(max=0), padding=1)
    )
    assert float(zp[0, 0, 1, 1].detach()) == 0.0
    s = s * (zp.detach() != 0)  # no relevance to pass back where zp = 0: 1 / (zp + 1e-9) is 1e9
    out = lrp.trick(z, zp)
    (R,) = torch.autograd.grad((out * s).sum(), T)
    return {
        "px_w": w,
        "px_b": b,
        "px_X": X,
        "px_L": L,
        "px_H": H,
        "px_s": s,
        "px_z": z.detach(),
        "px_R": R,
    }


def _probe_conv(rng, gamma=0.25):
    """A 4 -> 6 channel convolution on ReLU-like activations, gamma none of the sheet's, its
    LRP-gamma gradient and the gradients of typical mistakes."""
    while True:  # |zp| well away from 0, so any stabiliser gives the same gradient
        w = torch.from_numpy(rng.uniform(-0.5, 0.5, (6, 4, 3, 3)))
        b = torch.from_numpy(rng.uniform(0.05, 0.2, 6) * rng.choice([-1.0, 1.0], 6))
        a = torch.from_numpy(rng.normal(size=(1, 4, 5, 5))).clamp(min=0)
        s = torch.from_numpy(rng.normal(size=(1, 6, 5, 5)))
        z = F.conv2d(a, w, b, padding=1)
        zp = F.conv2d(a, lrp.gamma_weights(w, gamma), lrp.gamma_weights(b, gamma), padding=1)
        if zp.abs().min() > 0.05 and z.abs().min() > 1e-3:
            break

    def grad(rho_w, rho_b, ratio=True):
        x = a.clone().requires_grad_(True)
        zp = F.conv2d(x, rho_w, rho_b, padding=1)
        out = lrp.trick(F.conv2d(x, w, b, padding=1), zp) if ratio else zp
        return torch.autograd.grad((out * s).sum(), x)[0]

    probe = {
        "conv_w": w,
        "conv_b": b,
        "conv_a": a,
        "conv_s": s,
        "conv_gamma": torch.tensor(gamma),
        "conv_z": z,
        "conv_zp": zp,
        "conv_grad": grad(lrp.gamma_weights(w, gamma), lrp.gamma_weights(b, gamma)),
        "conv_grad_plain": grad(w, b, ratio=False),
        "conv_grad_neg": grad(w + gamma * w.clamp(max=0), b + gamma * b.clamp(max=0)),
        "conv_grad_nobias": grad(lrp.gamma_weights(w, gamma), b),
        "conv_grad_zp": grad(lrp.gamma_weights(w, gamma), lrp.gamma_weights(b, gamma), ratio=False),
    }
    for k, g in enumerate(sorted(set(sheet.layer_gammas().values()))):
        probe[f"conv_grad_gamma{k}"] = grad(lrp.gamma_weights(w, g), lrp.gamma_weights(b, g))
    return probe


def compute(model, X, c=sheet.CLASS):
    """{file name: {array name: numpy array}} of the references for a float64 model and X
    (the grading input: the crop)."""
    gxi = lrp.gradient_x_input(model, X, c)
    R = lrp.lrp(model, X, c)
    with torch.no_grad():
        top = int(model(X)[0].argmax())
    if top == c:  # the top-class mistake cannot be told apart: use the runner-up
        with torch.no_grad():
            top = int(model(X)[0].topk(2).indices[1])
    softmax = torch.nn.Sequential(model, torch.nn.Softmax(dim=1)).eval()
    x, l, h = zb_terms(model, X, c)  # noqa: E741
    rng = numpy.random.Generator(numpy.random.PCG64(PROBE_SEED))
    diagnosis = {
        "zb_sum": (x + l + h).sum(1)[0],
        "zb_x_sum": x.sum(1)[0].float(),
        "zb_l_sum": l.sum(1)[0].float(),
        "zb_h_sum": h.sum(1)[0].float(),
        "gxi_softmax_sum": lrp.gradient_x_input(softmax, X, c).sum(1)[0].float(),
        "gxi_top_sum": lrp.gradient_x_input(model, X, top).sum(1)[0].float(),
    }
    diagnosis |= _probe_px(rng) | _probe_conv(rng)
    numpy_ = lambda d: {k: v.detach().numpy() for k, v in d.items()}
    return {
        "gxi.npz": numpy_({"gxi": gxi}),
        "lrp.npz": numpy_({"lrp": R}),
        "diagnosis.npz": numpy_(diagnosis),
        "input.npz": {"castle_pixels": checks.castle_pixels()},
    }


def main(out=checks.REFERENCE):
    model32 = checks.standin()
    X32 = checks.castle_input()
    meta = {
        "about": "references for lrpkit.checks; written by `python -m lrpkit.references`",
        "configuration": (
            "stand-in VGG-16 (utils.load_vgg16('standin')) in float64 on the "
            f"{checks.CROP}x{checks.CROP} centre crop of castle.jpg's normalised 224x224 input"
        ),
        "crop": checks.CROP,
        "class": sheet.CLASS,
        "gammas": list(sheet.GAMMAS),
        "standin_fingerprint": checks.fingerprint(model32.state_dict()),
        "input_sha256": checks.input_sha256(X32),
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
    arrays = compute(model32.double(), checks.crop(X32).double().contiguous())
    meta["arrays"] = {
        f"{name}/{key}": f"{'x'.join(map(str, a.shape)) or 'scalar'} {a.dtype}"
        for name, d in arrays.items()
        for key, a in d.items()
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, d in arrays.items():
        numpy.savez_compressed(out / name, **d)
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum((out / name).stat().st_size for name in (*FILES, "meta.json"))
    print(f"wrote {out} ({size / 1e6:.1f} MB): {', '.join((*FILES, 'meta.json'))}")


if __name__ == "__main__":
    main()
