"""What the benchmark scripts share (instructors): model, input, timing, the results table.

``lrpkit.bench.lrp``, ``lrpkit.bench.explorer`` and ``lrpkit.bench.perturbation`` load the model and
castle.jpg here, time their jobs with ``timed`` (interleaved rounds, medians), print their
targets with ``report`` (measured beside target, PASS or MISS, the load average) and exit
with ``report``'s status: 0 when every target is met, 1 when one is missed.
"""

import contextlib
import copy
import dataclasses
import io
import operator
import os
import platform
import statistics
import time

import torch

import utils
from lrpkit import sheet

#: exit status of a benchmark that missed a target
MISSED = 1


def load_model(weights="standin", dtype=torch.float32):
    """VGG-16 in eval mode with frozen parameters (no weight gradients), quietly loaded."""
    with contextlib.redirect_stdout(io.StringIO()):
        model = utils.load_vgg16(weights)
    return model.requires_grad_(False).to(dtype)


def castle(dtype=torch.float32):
    """castle.jpg as VGG-16's normalised input, 1 x 3 x 224 x 224."""
    return utils.normalize(utils.load_image(utils.castle_path())).to(dtype)


def load():
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header():
    """One line naming the machine and its load (print it first)."""
    return (
        f"torch {torch.__version__}; CPU: {cpu_name()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads; {load()}"
    )


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of one job over the timed rounds."""

    times: tuple

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def minimum(self):
        return min(self.times)


def timed(jobs, reps=7, warmup=1, sync=lambda: None):
    """{name: Timing} of each job (a callable), after ``warmup`` untimed runs of each.

    The jobs take turns (one run of each per round), so a change in the machine's load
    during the benchmark affects all of them alike.
    """
    for job in jobs.values():
        for _ in range(warmup):
            job()
    sync()
    times = {name: [] for name in jobs}
    for _ in range(reps):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: Timing(tuple(t)) for name, t in times.items()}


def table(timings, unit, title=""):
    """Median and minimum milliseconds of each job, and its median over ``unit``'s."""
    ref = timings[unit].median
    lines = [f"{title:<44}{'median ms':>10}{'min ms':>9}{'x ' + unit[:12]:>16}"]
    for name, t in timings.items():
        lines.append(
            f"{name:<44}{t.median * 1e3:>10.1f}{t.minimum * 1e3:>9.1f}{t.median / ref:>16.2f}"
        )
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Target:
    """A measured figure beside its target: ``measured <= limit`` (or ``>=``)."""

    name: str
    measured: float
    op: str  # "<=" or ">="
    limit: float
    unit: str = "x"

    @property
    def met(self):
        return {"<=": operator.le, ">=": operator.ge}[self.op](self.measured, self.limit)

    def line(self):
        verdict = "PASS" if self.met else "MISS"
        measured, target = (
            f"{self.measured:.2f} {self.unit}",
            f"{self.op} {self.limit:g} {self.unit}",
        )
        return f"{self.name:<52}{measured:>12}   target {target:<12}{verdict}"


def report(targets):
    """Print each target, measured beside it, and the load; 0 when all are met, else MISSED."""
    print(f"\n{'target':<52}{'measured':>12}")
    for target in targets:
        print(target.line())
    print(f"{load()} (timings are unreliable while other jobs run)")
    return 0 if all(t.met for t in targets) else MISSED


def select(out, c):
    """Sum over the batch of each sample's logit of class c (an int or one class per sample)."""
    c = torch.as_tensor(c, device=out.device).reshape(-1).expand(out.shape[0])
    return out.gather(1, c[:, None]).sum()


def zennit_model(model):
    """A copy of the model for zennit: out-of-place ReLUs (zennit keeps layer inputs)."""
    model = copy.deepcopy(model)
    for layer in model.modules():
        if isinstance(layer, torch.nn.ReLU):
            layer.inplace = False
    return model


def zennit_lrp(model, X, c, gammas=sheet.GAMMAS):
    """The kit's LRP by zennit 0.5.1: ZBox on features[0], Gamma with the block's gamma on the
    other convolutions, the dense head's gradient x input at the output of ``features``."""
    from zennit.core import Composite
    from zennit.rules import Gamma, ZBox

    L, H = utils.bounds(X.detach())
    low, high = L[:1, :, :1, :1], H[:1, :, :1, :1]

    def module_map(ctx, name, module):
        if not name.startswith("features.") or not isinstance(module, torch.nn.Conv2d):
            return None
        i = int(name.split(".")[1])
        if i == sheet.FIRST:
            return ZBox(low=low, high=high, stabilizer=sheet.EPS)
        return Gamma(gamma=gammas[sheet.block_of(i) - 1], stabilizer=sheet.EPS)

    X = X.detach().requires_grad_(True)
    with Composite(module_map=module_map).context(model) as hooked:
        A = hooked.features(X)
        out = hooked.classifier(torch.flatten(hooked.avgpool(A), 1))
        (grad,) = torch.autograd.grad(select(out, c), A, retain_graph=True)
        (R,) = torch.autograd.grad(A, X, grad_outputs=A.detach() * grad)
    return R.detach()


def relative(a, b):
    """Relative L2 difference ||a - b|| / ||b||."""
    return float((a - b).norm() / b.norm())
