"""Benchmark of the reference explanations on VGG-16 at 224 x 224 (instructors; `make bench`).

    python -m lrpkit.bench [--threads N] [--reps R] [--batch B] [--no-gpu]

On the CPU, one castle.jpg each: the forward pass, Gradient x Input, LRP (lrpkit.lrp) and
zennit 0.5.1 with the same rules (ZBox on features[0], Gamma with the block's gamma on the
other convolutions, dense layers left to the plain gradient, relevance started from the
dense head's activation x gradient), as median wall-clock times after warm-up runs.
Targets: LRP <= 1.7 x Gradient x Input, zennit >= 3.5 x LRP. When CUDA is available, also
the batch throughput (images/s) of Gradient x Input and LRP on the GPU.

Timings depend on the weights only through their values, so the stand-in is used unless
--weights says otherwise. Other processes on the machine distort timings: the load average
is printed before and after.
"""

import argparse
import copy
import os
import platform
import statistics
import time

import torch

import utils
from lrpkit import lrp, sheet

C = sheet.CLASS
TARGET_LRP_OVER_GXI = 1.7  # at most
TARGET_ZENNIT_OVER_LRP = 3.5  # at least


def zennit_model(model):
    """A copy of the model for zennit: out-of-place ReLUs (zennit keeps layer inputs)."""
    model = copy.deepcopy(model)
    for layer in model.modules():
        if isinstance(layer, torch.nn.ReLU):
            layer.inplace = False
    return model


def zennit_lrp(model, X, c, gammas=sheet.GAMMAS):
    """LRP by zennit on the full model, same rules as lrpkit.lrp (dense layers: gradient)."""
    from zennit.core import Composite
    from zennit.rules import Gamma, ZBox

    L, H = utils.bounds(X.detach())
    low, high = L[:1, :, :1, :1], H[:1, :, :1, :1]

    def module_map(ctx, name, module):
        if not name.startswith("features.") or not isinstance(module, torch.nn.Conv2d):
            return None
        i = int(name.split(".")[1])
        if i == 0:
            return ZBox(low=low, high=high, stabilizer=sheet.EPS)
        return Gamma(gamma=gammas[sheet.block_of(i) - 1], stabilizer=sheet.EPS)

    X = X.detach().requires_grad_(True)
    with lrp.frozen(model), Composite(module_map=module_map).context(model) as hooked:
        A = hooked.features(X)
        out = hooked.classifier(torch.flatten(hooked.avgpool(A), 1))
        # the dense head's gradient x input at the output of features starts the relevance
        (grad,) = torch.autograd.grad(lrp._select(out, c), A, retain_graph=True)
        (R,) = torch.autograd.grad(A, X, grad_outputs=A.detach() * grad)
    return R.detach()


def forward(model, X, c):
    with torch.no_grad():
        return model(X)


def timed(jobs, reps, warmup, sync=lambda: None):
    """{name: (median, minimum) wall-clock seconds} of each job, after warm-up runs.

    The jobs take turns (one run of each per round), so a change in the machine's load
    during the benchmark affects all of them alike.
    """
    for f in jobs.values():
        for _ in range(warmup):
            f()
    sync()
    times = {name: [] for name in jobs}
    for _ in range(reps):
        for name, f in jobs.items():
            start = time.perf_counter()
            f()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


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


def verdict(ok):
    return "PASS" if ok else "MISS"


def bench_cpu(model, X, reps, warmup):
    zmodel = zennit_model(model)
    jobs = {
        "forward": lambda: forward(model, X, C),
        "Gradient x Input": lambda: lrp.gradient_x_input(model, X, C),
        "LRP (lrpkit.lrp)": lambda: lrp.lrp(model, X, C),
        "zennit, same rules": lambda: zennit_lrp(zmodel, X, C),
    }
    # zennit and lrpkit compute the same relevance (float32 rounding: ~1e-6 relative)
    R, Rz = jobs["LRP (lrpkit.lrp)"](), jobs["zennit, same rules"]()
    agreement = float((R - Rz).norm() / R.norm())
    times = timed(jobs, reps, warmup)
    gxi, gxi_min = times["Gradient x Input"]
    print(f"\n{'CPU, 1 x 3 x 224 x 224, float32':<32}{'median ms':>10}{'min ms':>9}{'x GxI':>8}")
    for name, (median, best) in times.items():
        print(f"{name:<32}{median * 1e3:>10.0f}{best * 1e3:>9.0f}{median / gxi:>8.2f}")
    lrp_t, lrp_min = times["LRP (lrpkit.lrp)"]
    zennit_t, zennit_min = times["zennit, same rules"]
    r1, r2 = lrp_t / gxi, zennit_t / lrp_t
    # verdicts on the medians; the ratios of the minima are the ones least disturbed by load
    print()
    print(
        f"LRP / Gradient x Input = {r1:.2f}  (target <= {TARGET_LRP_OVER_GXI})  "
        f"{verdict(r1 <= TARGET_LRP_OVER_GXI)}   [minima: {lrp_min / gxi_min:.2f}]"
    )
    print(
        f"zennit / LRP           = {r2:.2f}  (target >= {TARGET_ZENNIT_OVER_LRP})  "
        f"{verdict(r2 >= TARGET_ZENNIT_OVER_LRP)}   [minima: {zennit_min / lrp_min:.2f}]"
    )
    print(f"zennit vs lrpkit relevance: relative L2 difference {agreement:.1e} (float32)")
    return r1, r2


def bench_gpu(model, X, batch, reps, warmup, device="cuda"):
    """Batch throughput of Gradient x Input and LRP (device: "cuda"; "cpu" to try it out)."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    model = copy.deepcopy(model).to(device)
    Xb = X.to(device).expand(batch, -1, -1, -1).contiguous()
    classes = torch.arange(batch, device=device) * 31 % 1000  # one class per sample
    name = torch.cuda.get_device_name(device) if cuda else cpu_name()
    print(f"\n{device.type.upper()}: {name}, batch {batch} x 3 x 224 x 224, float32")
    if cuda:
        print(f"(cuDNN may use TF32 in convolutions: {torch.backends.cudnn.allow_tf32})")
    jobs = {
        "forward": lambda: forward(model, Xb, classes),
        "Gradient x Input": lambda: lrp.gradient_x_input(model, Xb, classes),
        "LRP (lrpkit.lrp)": lambda: lrp.lrp(model, Xb, classes),
    }
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    print(f"{'':<32}{'images/s':>10}{'ms/batch':>10}")
    for job, (median, _) in timed(jobs, reps, warmup, sync).items():
        print(f"{job:<32}{batch / median:>10.1f}{median * 1e3:>10.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--reps", type=int, default=7, help="timed runs per method (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--batch", type=int, default=32, help="GPU batch size")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU section")
    parser.add_argument("--weights", default="standin", help="VGG-16 weights (default: stand-in)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = utils.load_vgg16(args.weights)
    X = utils.normalize(utils.load_image(utils.castle_path()))
    print(f"torch {torch.__version__}; CPU: {cpu_name()}; {torch.get_num_threads()} threads")
    print(f"before: {load()}  ({os.cpu_count()} cores; timings are unreliable when busy)")
    bench_cpu(model, X, args.reps, args.warmup)
    if torch.cuda.is_available() and not args.no_gpu:
        bench_gpu(model, X, args.batch, args.reps, args.warmup)
    else:
        print("\nGPU: none available (CUDA not found); batch throughput not measured")
    print(f"\nafter: {load()}")


if __name__ == "__main__":
    main()
