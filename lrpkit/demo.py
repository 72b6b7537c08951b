"""The kit's main job (``make demo``): castle.jpg, VGG-16's top-5 and two explanations in one PNG.

Run ``python -m lrpkit.demo --out figures/castle.png``. The model comes from
``utils.load_vgg16()``, so the environment variable VGG16_WEIGHTS decides: unset for the
ImageNet weights (hub cache or download), a path to a weight file, or ``standin`` for the
offline stand-in, which the figure then labels in red. Without weights and offline the demo
prints utils' message naming both remedies and exits with status 2 (no traceback).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy
from matplotlib.figure import Figure

import utils
from lrpkit.reference import lrp
from lrpkit.sheet import CLASS as CASTLE

#: errors with a message meant for the user (missing weights, offline, bad files)
USER_ERRORS = (RuntimeError, ValueError, OSError)


def uses_standin():
    """True when load_vgg16() picks the stand-in (the same test utils.load_vgg16 makes)."""
    return os.environ.get("VGG16_WEIGHTS", "") == "standin"


def render(img, scores, R_gxi, R_lrp, standin=False, c=CASTLE):
    """Figure: image | Gradient x Input | LRP of class c, with the top-5 classes beneath."""
    fig = Figure(figsize=(10.5, 4.4), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(img)
    axes[0].set_axis_off()
    axes[0].set_title("castle.jpg")
    utils.visualize(R_gxi, ax=axes[1], title="Gradient \u00d7 Input")
    utils.visualize(R_lrp, ax=axes[2], title="LRP (z$^B$ + LRP-\u03b3)")
    name = utils.CLASSES[c]
    fig.suptitle(f"What speaks for (red) and against (blue) VGG-16's class {name} ({c})")
    top = "   ".join(f"{name} ({i}): {value:.3f}" for i, name, value in scores)
    fig.text(0.5, 0.02, f"top-5 logits:  {top}", ha="center", fontsize=9)
    if standin:
        fig.text(
            0.5,
            0.075,
            "STAND-IN model: VGG-16 architecture with seeded random weights, NOT ImageNet. "
            "Classes and heatmaps mean nothing.",
            ha="center",
            fontsize=9.5,
            color="white",
            weight="bold",
            bbox={"facecolor": "#c00000", "edgecolor": "none", "pad": 4},
        )
    # Leave room at the bottom for the text lines (constrained layout ignores fig.text).
    bottom = 0.12 if standin else 0.06
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    return fig


def run(out, c=CASTLE):
    """Load castle.jpg and the model, print the top-5, write the figure to ``out``."""
    img = utils.load_image(utils.castle_path())
    X = utils.normalize(img)
    standin = uses_standin()
    model = utils.load_vgg16()
    print("top-5 classes:")
    scores = utils.topk(model(X).detach())
    R_gxi = lrp.gradient_x_input(model, X, c)
    R_lrp = lrp.lrp(model, X, c)
    fig = render(numpy.asarray(img), scores, R_gxi, R_lrp, standin=standin, c=c)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m lrpkit.demo",
        description="Explain VGG-16's 'castle' on castle.jpg: Gradient x Input and LRP.",
        epilog="VGG16_WEIGHTS: unset (ImageNet weights from the hub cache or a download), "
        "/path/to/vgg16-397923af.pth, or 'standin' (offline, seeded random weights).",
    )
    parser.add_argument("--out", default="figures/castle.png", help="PNG file to write")
    args = parser.parse_args(argv)
    try:
        run(args.out)
    except USER_ERRORS as error:
        # The message already says what to do; a traceback would only hide it.
        print(f"lrpkit.demo: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
