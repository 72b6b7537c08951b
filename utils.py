"""Helpers for Exercise Sheet 12 (students): image, model, LRP rule helper, heatmaps.

Read this file next to the sheet. Each section is short on purpose:

1. image    -- castle.jpg, ``load_image``, the normalised input ``X`` and its bounds ``L``, ``H``
2. model    -- ``load_vgg16`` (real ImageNet weights, or the offline stand-in) and ``topk``
3. rules    -- ``newlayer``, the tutorial's helper to build a layer with transformed weights
4. heatmaps -- ``visualize``
"""

import copy
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import cv2
import numpy
import torch
import torchvision
from matplotlib.figure import Figure

DATA = Path(__file__).resolve().parent / "data"

# ---------------------------------------------------------------------------
# 1. image
# ---------------------------------------------------------------------------

CASTLE_URL = (
    "https://raw.githubusercontent.com/rodrigobdz/lrp/"
    "a2b6bd164df3e7f44e96f534e16b3df2ff8224ac/data/castle.jpg"
)
CASTLE_SHA256 = "daf55e51a775f0feda22d21dd485f4e696ab2e06753069546d09e762f5782e96"
SIZE = 224  # VGG-16's input size
MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(1, -1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).reshape(1, -1, 1, 1)


def sha256(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def castle_path(url=CASTLE_URL, dest=DATA / "castle.jpg"):
    """Path to castle.jpg: downloaded from its pinned source on first use, sha256-checked."""
    dest = Path(dest)
    if dest.exists():
        if sha256(dest) != CASTLE_SHA256:
            raise ValueError(
                f"{dest} is not the pinned castle.jpg (sha256 differs). Your file is left "
                "as it is: move it away to download the original again, or open your own "
                "picture with load_image(path)."
            )
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Download into a temporary file beside dest, so an interrupted download leaves nothing.
    with tempfile.NamedTemporaryFile(dir=dest.parent, suffix=".part", delete=False) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                shutil.copyfileobj(response, tmp)
            tmp.close()
            if sha256(tmp.name) != CASTLE_SHA256:
                raise ValueError(f"the file downloaded from {url} has the wrong sha256")
            os.replace(tmp.name, dest)
        except Exception as error:
            tmp.close()
            os.unlink(tmp.name)
            raise RuntimeError(
                f"Could not fetch castle.jpg ({error}). Copy castle.jpg (sha256 "
                f"{CASTLE_SHA256}) into {dest.parent}, or check your internet connection."
            ) from error
    return dest


def load_image(path):
    """Read an image file as RGB floats in [0, 1], shape SIZE x SIZE x 3.

    Grayscale images get three equal channels, transparent ones are put on white,
    16-bit ones are scaled by 65535. An image that is not 224 x 224 is resized so its
    shorter side is 224, then its centre is cropped to 224 x 224 (VGG-16's input size;
    keeps the aspect ratio), and a note says so.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file. Check the path.")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{path}: the file is empty. Download or copy it again.")
    img = cv2.imdecode(numpy.frombuffer(data, numpy.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        known = data[:2] == b"\xff\xd8" or data[:8] == b"\x89PNG\r\n\x1a\n"
        problem = "is truncated or corrupt" if known else "is not an image OpenCV can read"
        raise ValueError(f"{path}: the file {problem}. Use a complete JPEG or PNG file.")
    if img.dtype not in (numpy.uint8, numpy.uint16):
        raise ValueError(f"{path}: {img.dtype} pixels are not supported; use 8- or 16-bit.")
    img = img / (65535.0 if img.dtype == numpy.uint16 else 255.0)
    if img.ndim == 2:
        img = numpy.stack([img] * 3, axis=-1)
    if img.shape[2] == 4:  # BGRA: composite on white
        img = img[..., :3] * img[..., 3:] + (1 - img[..., 3:])
    img = img[..., ::-1]  # OpenCV reads BGR; VGG-16 expects RGB
    h, w = img.shape[:2]
    if (h, w) != (SIZE, SIZE):
        scale = SIZE / min(h, w)
        nh, nw = max(SIZE, round(h * scale)), max(SIZE, round(w * scale))
        img = cv2.resize(numpy.ascontiguousarray(img), (nw, nh), interpolation=cv2.INTER_AREA)
        top, left = (nh - SIZE) // 2, (nw - SIZE) // 2
        img = img[top : top + SIZE, left : left + SIZE]
        print(f"note: {path.name} is {w}x{h}; resized and centre-cropped to {SIZE}x{SIZE}")
    return numpy.ascontiguousarray(img.clip(0, 1))


def check_image(img):
    """img itself if it is an H x W x 3 image; else a ValueError naming the likely slip."""
    shape = getattr(img, "shape", None)
    if shape is None or len(shape) != 3:
        raise ValueError(f"expected an H x W x 3 image (numpy array); got shape {shape}")
    if shape[-1] == 2:
        raise ValueError(
            f"the image has 2 colour channels (shape {tuple(shape)}): [..., :-1] drops the "
            "red channel. OpenCV reads B, G, R; reverse the order with [..., ::-1] instead."
        )
    if shape[-1] != 3:
        raise ValueError(f"expected the colour channels last (H x W x 3); got shape {tuple(shape)}")
    return img


def normalize(img):
    """VGG-16 input X (1 x 3 x H x W): the RGB image minus ImageNet's mean, over its std."""
    img = numpy.asarray(check_image(img))
    X = torch.from_numpy(numpy.ascontiguousarray(img.transpose(2, 0, 1))[None]).float()
    return (X - MEAN) / STD


def bounds(X):
    """Lowest and highest input values L, H (pixel values 0 and 1, normalised), shaped as X."""
    mean, std = MEAN.to(X), STD.to(X)
    L = ((0 - mean) / std).expand_as(X).clone()
    H = ((1 - mean) / std).expand_as(X).clone()
    return L, H


# ---------------------------------------------------------------------------
# 2. model
# ---------------------------------------------------------------------------

WEIGHTS = torchvision.models.VGG16_Weights.IMAGENET1K_V1  # the same file as pretrained=True
VGG16_URL = WEIGHTS.url
VGG16_FILE = "vgg16-397923af.pth"
VGG16_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
CLASSES = WEIGHTS.meta["categories"]  # ImageNet class names, offline
STANDIN_SEED = 12
STANDIN_NOTE = (
    "*** STAND-IN VGG-16: VGG-16's architecture with seeded random weights, NOT the "
    "ImageNet model. Its predictions and heatmaps mean nothing. ***"
)
OFFLINE_HELP = (
    "Could not get VGG-16's ImageNet weights ({error}). Either download {url} on a machine "
    "with internet and set VGG16_WEIGHTS=/path/to/{file}, or set VGG16_WEIGHTS=standin to "
    "work offline with the stand-in model (random weights, meaningless heatmaps)."
)


def _empty_vgg16():
    """VGG-16 with unallocated parameters (skips the slow random init), to be loaded into."""
    with torch.device("meta"):
        return torchvision.models.vgg16(weights=None)


def standin_state_dict():
    """Deterministic weights for the stand-in: He-uniform from a seeded PCG64 generator.

    Only integer-exact random floats and one float32 multiply per value are used, so every
    machine with the pinned numpy gets the same bits. (2 u - 1) * bound is computed in place:
    the same float32 operations, without three temporary copies of the largest layer.
    """
    rng = numpy.random.Generator(numpy.random.PCG64(STANDIN_SEED))
    state = {}
    for name, p in _empty_vgg16().state_dict().items():
        if name.endswith("weight"):
            fan_in = p[0].numel()
            bound = numpy.float32((6.0 / fan_in) ** 0.5)
        else:
            bound = numpy.float32(0.1 / fan_in**0.5)
        u = rng.random(p.shape, dtype=numpy.float32)
        u *= 2
        u -= 1
        u *= bound
        state[name] = torch.from_numpy(u)
    return state


def read_weights(path, expected_sha256=None):
    """State dict from a weight file, with a clear error for a missing or broken file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"VGG16_WEIGHTS: {path} does not exist. Check the path.")
    if expected_sha256 is not None and sha256(path) != expected_sha256:
        raise ValueError(
            f"{path}: sha256 differs from the official {VGG16_FILE}; the file is corrupt or "
            f"incomplete. Download it again from {VGG16_URL}."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a readable PyTorch weight file ({error}).") from error


#: weights read or made once per session, {source: state dict}: the models load_vgg16 makes
#: from one source share their weight tensors (528 MB once, not per model). Each model has
#: its own layers: replacing one model's layers, or their weights, leaves the others alone;
#: only changing a weight tensor in place (weight.data.clamp_()) would reach them all.
_WEIGHTS = {}


def _weights(source):
    """load_vgg16's state dict for source: the stand-in, a file, or the torch hub's copy."""
    if source == "standin":
        key, load = "standin", standin_state_dict
    else:
        path = Path(source or Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE)
        path = path.expanduser()
        if not source and not path.is_file():
            try:
                return torch.hub.load_state_dict_from_url(VGG16_URL, check_hash=True)
            except Exception as error:
                text = OFFLINE_HELP.format(error=error, url=VGG16_URL, file=VGG16_FILE)
                raise RuntimeError(text) from error
        stat = path.stat() if path.is_file() else None
        digest = VGG16_SHA256 if path.name == VGG16_FILE else None
        key = (str(path), stat and (stat.st_size, stat.st_mtime_ns), digest)
        load = lambda: read_weights(path, digest)  # noqa: E731
    if key not in _WEIGHTS:
        _WEIGHTS[key] = load()
    return _WEIGHTS[key]


def load_vgg16(source=None):
    """VGG-16 in eval mode with ImageNet weights (IMAGENET1K_V1), or the seeded stand-in.

    ``source`` (default: the environment variable VGG16_WEIGHTS) is ``"standin"``, a path
    to a weight file, or empty: then the torch hub cache, else a download. The weights are
    read once per session and shared by the models made from them (see _WEIGHTS).
    """
    source = os.environ.get("VGG16_WEIGHTS", "") if source is None else str(source)
    if source == "standin":
        print(STANDIN_NOTE)
    state = _weights(source)
    model = _empty_vgg16()
    try:
        model.load_state_dict(dict(state), assign=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise ValueError(f"{source or 'weights'}: not VGG-16 weights ({error}).") from error
    return model.eval()


def topk(scores, k=5):
    """Print and return the k highest classes of a 1 x 1000 score tensor: (index, name, score)."""
    scores = scores.detach().reshape(-1)
    values, indices = scores.topk(k)
    top = [(int(i), CLASSES[int(i)], float(v)) for v, i in zip(values, indices)]
    for i, name, value in top:
        print(f"{name} ({i}): {value:.3f}")
    return top


# ---------------------------------------------------------------------------
# 3. rules
# ---------------------------------------------------------------------------


def newlayer(layer, g):
    """Copy of ``layer`` whose weight and bias are replaced by g(weight) and g(bias)."""
    layer = copy.deepcopy(layer)
    with torch.no_grad():
        for name in ("weight", "bias"):
            p = getattr(layer, name, None)
            if p is not None:
                setattr(layer, name, torch.nn.Parameter(g(p), requires_grad=p.requires_grad))
    return layer


# ---------------------------------------------------------------------------
# 4. heatmaps
# ---------------------------------------------------------------------------


def visualize(R, ax=None, title=None):
    """Heatmap of relevance R summed over colour channels: red positive, blue negative.

    R is 1 x 3 x H x W, 3 x H x W or H x W (tensor, even one that requires grad, or array).
    The colour limits are symmetric, at the 99.5th percentile of |R|, so zero is white and
    a few extreme pixels do not wash out the rest. Returns the figure (shown when it is
    the last line of a notebook cell; else use ``display(fig)`` or ``fig.savefig``).
    """
    if torch.is_tensor(R):
        R = R.detach().cpu().double().numpy()
    R = numpy.asarray(R, dtype=float)
    if R.ndim == 4:
        if R.shape[0] != 1:
            raise ValueError(f"visualize shows one image; got a batch of {R.shape[0]}: pass R[:1]")
        R = R[0]
    if R.ndim == 3:
        R = R.sum(axis=0)
    if R.ndim != 2:
        raise ValueError(f"visualize needs 1x3xHxW, 3xHxW or HxW relevance; got shape {R.shape}")
    lim = numpy.percentile(numpy.abs(R), 99.5) or numpy.abs(R).max() or 1.0
    if ax is None:
        ax = Figure(figsize=(3.5, 3.5)).add_subplot()
    ax.imshow(R, cmap="bwr", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure
