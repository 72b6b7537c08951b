"""Benchmark of region perturbation (instructors): the kit's curve, forward passes, Quantus.

``python -m lrpkit.bench.perturbation`` (``make bench``) times on the CPU, float32, the
stand-in VGG-16 on castle.jpg (224 x 224, one image), the sheet's LRP heatmap, 256 regions of
14 x 14 pixels, 32 steps, uniform noise, side by side in one run:

- the kit's curve, ``lrpkit.reference.perturbation.curve`` (incremental engine for VGG-16);
- the kit's curve with its engine for any model (masks, batched forward passes);
- the same number of plain batched forward passes (33 images, the kit's batch of 16);
- Quantus 0.6 ``RegionPerturbation`` on the same settings (MoRF, 14 x 14 patches, logits,
  no normalisation, the same noise), one forward pass per step.

It first checks that the kit's curve and Quantus's agree. Targets (issue 11): the kit's
curve <= 1.2 x the plain batched forward passes, and >= 5 x faster than Quantus. Exits with
status 1 when a target is missed.
"""

import argparse
import warnings

import numpy
import torch

from lrpkit import sheet
from lrpkit.bench import tools as benchtools
from lrpkit.reference import lrp, perturbation

C = sheet.CLASS
SIZE, STEPS, BATCH = 14, 32, 16
FORWARDS, QUANTUS = 1.2, 5.0  # targets: at most x forward passes, at least x faster


def quantus_curve(model, X, R, B, c=C, size=SIZE, steps=STEPS):
    """f(x) - f(x^(k)), k = 1..steps, by Quantus's RegionPerturbation (MoRF, size x size
    patches, no normalisation, logits of class c) with the noise B (what tests compare with)."""
    import quantus

    noise = B.numpy().reshape(1, -1)

    def replace(arr, indices, **kwargs):
        out = arr.copy()
        rows = numpy.arange(len(arr))[:, None]
        out[rows, indices] = noise[rows, indices]
        return out

    metric = quantus.RegionPerturbation(
        patch_size=size,
        regions_evaluation=steps,
        order="morf",
        normalise=False,
        abs=False,
        perturb_func=replace,
        disable_warnings=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drops = metric(
            model=model,
            x_batch=X.numpy(),
            y_batch=numpy.array([c]),
            a_batch=R.numpy(),
            softmax=False,
            device="cpu",
        )
    return torch.as_tensor(numpy.asarray(drops))[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--reps", type=int, default=3, help="timed rounds (median is reported)")
    args = parser.parse_args(argv)

    model, X = benchtools.load_model(), benchtools.castle()
    print(benchtools.header())
    R = lrp.lrp(model, X, C)
    B = perturbation.baseline_image(X, "uniform")
    images = X.expand(STEPS + 1, -1, -1, -1).contiguous()

    def forwards():
        with torch.no_grad():
            for batch in images.split(BATCH):
                model(batch)

    def kit(incremental):
        return perturbation.curve(
            model, X, R, C, SIZE, STEPS, B, batch=BATCH, incremental=incremental
        )

    # Sanity: the three give the same curve (float32 rounding).
    fast, masks = kit(True)[0], kit(False)[0]
    drops = quantus_curve(model, X, R, B)
    print(
        f"kit, incremental vs masks: relative L2 difference {benchtools.relative(fast, masks):.1e}"
    )
    quantus_diff = benchtools.relative(fast[0] - fast[1:], drops.to(fast))
    print(f"kit vs Quantus (f(x) - f(x^(k))): relative L2 difference {quantus_diff:.1e}")

    jobs = {
        f"{STEPS + 1} plain forward passes (batch {BATCH})": forwards,
        "kit curve (lrpkit.reference.perturbation.curve)": lambda: kit(True),
        "kit curve, engine for any model": lambda: kit(False),
        "Quantus RegionPerturbation": lambda: quantus_curve(model, X, R, B),
    }
    times = benchtools.timed(jobs, args.reps, warmup=0)  # the sanity runs warmed up
    plain = times[f"{STEPS + 1} plain forward passes (batch {BATCH})"].median
    title = f"CPU, 224 x 224, {SIZE} x {SIZE} regions, {STEPS} steps"
    print()
    print(benchtools.table(times, next(iter(times)), title))
    ours = times["kit curve (lrpkit.reference.perturbation.curve)"].median
    quantus = times["Quantus RegionPerturbation"].median
    return benchtools.report(
        [
            benchtools.Target(
                "kit curve / plain batched forward passes", ours / plain, "<=", FORWARDS
            ),
            benchtools.Target("Quantus / kit curve (speed-up)", quantus / ours, ">=", QUANTUS),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
