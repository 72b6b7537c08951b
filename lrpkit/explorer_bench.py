"""Benchmark of the gamma explorer (instructors): latency of a gamma change per block.

``python -m lrpkit.explorer_bench`` (``make bench``) times on the CPU, at 224 x 224, with the
stand-in VGG-16 on castle.jpg, in one run and interleaved (so a load change hits all alike):

- a gamma change in block k = 1..5 in ``lrpkit.explorer`` (only blocks k..1 recomputed);
- a full LRP recompute with the reference ``lrpkit.lrp.lrp``;
- zennit recomputing the same explanation (ZBox on the first conv, Gamma per block);
- one Gradient x Input by plain autograd (parameters frozen: no weight gradients).

Targets (issue 5): worst block <= 0.6 x Gradient x Input, median over blocks <= 0.4 x.
Timings are medians over the repetitions; the machine's load is printed beside them.
"""

import argparse
import copy
import os
import statistics
import time

import torch
import zennit.composites
import zennit.rules

import utils
from lrpkit import explorer, lrp, sheet

C = sheet.CLASS
WORST, MEDIAN = 0.6, 0.4  # targets, as multiples of one Gradient x Input


def gradient_x_input(model, X, c):
    X = X.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(X)[0, c], X)
    return X.detach() * grad


def zennit_lrp(model, X, c, gammas):
    """The same LRP by zennit: conv rules below, the dense head's gradient x input on top."""
    L, H = (t[:, :, :1, :1] for t in utils.bounds(X))
    rules = [(["features.0"], zennit.rules.ZBox(L, H, stabilizer=sheet.EPS))]
    for layers, gamma in zip(sheet.BLOCKS, gammas):
        names = [f"features.{i}" for i in layers if i != 0]
        rules.append((names, zennit.rules.Gamma(gamma, stabilizer=sheet.EPS)))
    composite = zennit.composites.NameMapComposite(name_map=rules)
    X = X.detach().requires_grad_(True)
    with composite.context(model):
        a = model.features(X)
        out = model.classifier(torch.flatten(model.avgpool(a), 1))
        (grad,) = torch.autograd.grad(out[0, c], a, retain_graph=True)
        (R,) = torch.autograd.grad(a, X, grad_outputs=a.detach() * grad)
    return R


def _load():
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="repetitions (median is reported)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = utils.load_vgg16("standin")
    for p in model.parameters():
        p.requires_grad_(False)
    X = utils.normalize(utils.load_image(utils.castle_path()))
    print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; {_load()}")

    start = time.perf_counter()
    engine = explorer.Engine(model, X)
    engine.relevance(explorer.LRP, C, sheet.GAMMAS)
    setup = time.perf_counter() - start

    # Sanity: every method here computes the same explanation (float32 tolerances).
    R = lrp.lrp(model, X, C)
    for name, other in [
        ("explorer", engine.relevance(explorer.LRP, C, sheet.GAMMAS)[0]),
        ("zennit", zennit_lrp(copy.deepcopy(model), X, C, sheet.GAMMAS)),
    ]:
        diff = float((other - R).norm() / R.norm())
        print(f"{name} vs lrpkit.lrp.lrp: relative L2 difference {diff:.1e} (float32)")

    zmodel = copy.deepcopy(model)
    gammas = list(sheet.GAMMAS)

    def change(k):
        # Toggle block k between the sheet's gamma and twice it, so each call recomputes.
        gammas[k - 1] = sheet.GAMMAS[k - 1] * (2 if gammas[k - 1] == sheet.GAMMAS[k - 1] else 1)
        _, changed = engine.relevance(explorer.LRP, C, gammas)
        assert changed == [k], changed

    jobs = {"Gradient x Input": lambda: gradient_x_input(model, X, C)}
    jobs.update({f"gamma change, block {k}": (lambda k=k: change(k)) for k in range(1, 6)})
    jobs["full LRP (lrpkit.lrp.lrp)"] = lambda: lrp.lrp(model, X, C)
    jobs["zennit, same rules"] = lambda: zennit_lrp(zmodel, X, C, sheet.GAMMAS)
    times = {name: [] for name in jobs}
    for job in jobs.values():  # warm-up
        job()
    for _ in range(args.repeat):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}

    # The redraw a user waits for as well: the figure (matplotlib, PNG), not part of the target.
    view = explorer.Explorer(model, X)
    start = time.perf_counter()
    view._render("LRP")
    render = time.perf_counter() - start

    gxi = median["Gradient x Input"]
    print(f"\nexplorer setup (one forward pass + first LRP): {setup * 1000:.0f} ms")
    print(f"{'':32s} {'ms':>8s} {'x GxI':>7s}")
    for name, t in median.items():
        print(f"{name:32s} {t * 1000:8.1f} {t / gxi:7.2f}")
    print(f"{'(figure redraw, PNG)':32s} {render * 1000:8.1f} {render / gxi:7.2f}")
    blocks = [median[f"gamma change, block {k}"] / gxi for k in range(1, 6)]
    worst, mid = max(blocks), statistics.median(blocks)
    verdict = {True: "PASS", False: "MISS"}
    print(f"\nworst block  {worst:.2f} x GxI (target <= {WORST}): {verdict[worst <= WORST]}")
    print(f"median block {mid:.2f} x GxI (target <= {MEDIAN}): {verdict[mid <= MEDIAN]}")
    print(f"{_load()} (timings are unreliable while other jobs run)")
    return 0 if worst <= WORST and mid <= MEDIAN else 1


if __name__ == "__main__":
    raise SystemExit(main())
