"""Benchmark of the gamma explorer (instructors): a gamma change per block, redraw included.

``python -m lrpkit.bench.explorer`` (``make bench``) times on the CPU, at 224 x 224, with the
stand-in VGG-16 on castle.jpg, in one run and interleaved (so a load change hits all alike):

- a gamma change in block k = 1..5 as a user makes it: a slider of ``lrpkit.explorer`` set,
  which recomputes blocks k..1 and redraws the image beside the heatmap (PNG);
- the same without the redraw (``Engine.relevance``), and the redraw alone;
- a full LRP recompute with the reference ``lrpkit.reference.lrp.lrp``;
- zennit recomputing the same explanation (ZBox on the first conv, Gamma per block);
- one Gradient x Input (``lrpkit.reference.lrp.gradient_x_input``, parameters frozen).

Targets (issue 11): a gamma change including the redraw, worst block <= 0.5 x Gradient x
Input, median over blocks <= 0.4 x. Timings are medians over the repetitions; the machine's
load is printed beside them. Exits with status 1 when a target is missed.
"""

import argparse
import statistics

from lrpkit import explorer, sheet
from lrpkit.bench import tools as benchtools
from lrpkit.reference import lrp

C = sheet.CLASS
WORST, MEDIAN = 0.5, 0.4  # targets, as multiples of one Gradient x Input


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--repeat", type=int, default=7, help="repetitions (median is reported)")
    args = parser.parse_args(argv)

    model, X = benchtools.load_model(), benchtools.castle()
    print(benchtools.header())
    view = explorer.Explorer(model, X)
    engine = explorer.Engine(model, X)

    # Sanity: every method here computes the same explanation (float32 tolerances).
    R = lrp.lrp(model, X, C)
    zmodel = benchtools.zennit_model(model)
    for name, other in [
        ("explorer", view.relevance),
        ("zennit", benchtools.zennit_lrp(zmodel, X, C, sheet.GAMMAS)),
    ]:
        print(
            f"{name} vs lrpkit.reference.lrp.lrp: relative L2 difference "
            f"{benchtools.relative(other, R):.1e}"
        )

    def toggle(gammas, k):
        # block k between the sheet's gamma and twice it, so each call recomputes
        gammas[k - 1] = sheet.GAMMAS[k - 1] * (2 if gammas[k - 1] == sheet.GAMMAS[k - 1] else 1)
        return gammas[k - 1]

    def slide(k):
        view.sliders[k - 1].value = toggle(shown, k)  # recompute and redraw, as on screen

    def compute(k):
        toggle(computed, k)
        _, changed = engine.relevance(explorer.LRP, C, computed)
        assert changed == [k], changed

    shown, computed = list(sheet.GAMMAS), list(sheet.GAMMAS)
    engine.relevance(explorer.LRP, C, computed)
    jobs = {"Gradient x Input": lambda: lrp.gradient_x_input(model, X, C)}
    jobs.update({f"gamma change + redraw, block {k}": (lambda k=k: slide(k)) for k in range(1, 6)})
    jobs.update({f"gamma change only, block {k}": (lambda k=k: compute(k)) for k in (1, 5)})
    jobs["redraw alone (heatmap, PNG)"] = view.render
    jobs["full LRP (lrpkit.reference.lrp.lrp)"] = lambda: lrp.lrp(model, X, C)
    jobs["zennit, same rules"] = lambda: benchtools.zennit_lrp(zmodel, X, C, sheet.GAMMAS)
    times = benchtools.timed(jobs, args.repeat, warmup=1)
    print()
    print(benchtools.table(times, "Gradient x Input", "CPU, 1 x 3 x 224 x 224, float32"))

    gxi = times["Gradient x Input"].median
    blocks = [times[f"gamma change + redraw, block {k}"].median / gxi for k in range(1, 6)]
    return benchtools.report(
        [
            benchtools.Target("gamma change + redraw, worst block / GxI", max(blocks), "<=", WORST),
            benchtools.Target(
                "gamma change + redraw, median block / GxI",
                statistics.median(blocks),
                "<=",
                MEDIAN,
            ),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
