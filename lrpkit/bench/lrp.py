"""Benchmark of the reference explanations on VGG-16 at 224 x 224 (instructors; `make bench`).

    python -m lrpkit.bench.lrp [--threads N] [--reps R] [--batch B] [--no-gpu]

On the CPU, one castle.jpg each: the forward pass, Gradient x Input, LRP (lrpkit.reference.lrp) and
zennit 0.5.1 with the same rules (ZBox on features[0], Gamma with the block's gamma on the
other convolutions, dense layers left to the plain gradient, relevance started from the
dense head's activation x gradient), as median wall-clock times after warm-up runs.
Targets: LRP <= 1.7 x Gradient x Input, zennit >= 3.5 x LRP. When CUDA is available, also
the batch throughput (images/s) of Gradient x Input and LRP on the GPU. Exits with status 1
when a target is missed.

Timings depend on the weights only through their values, so the stand-in is used unless
--weights says otherwise. Other processes on the machine distort timings: the load average
is printed before and after.
"""

import argparse
import copy

import torch

from lrpkit import sheet
from lrpkit.bench import tools as benchtools
from lrpkit.reference import lrp

C = sheet.CLASS
TARGET_LRP_OVER_GXI = 1.7  # at most
TARGET_ZENNIT_OVER_LRP = 3.5  # at least


def forward(model, X):
    with torch.no_grad():
        return model(X)


def bench_cpu(model, X, reps, warmup):
    """The CPU table; returns the targets, measured."""
    zmodel = benchtools.zennit_model(model)
    jobs = {
        "forward": lambda: forward(model, X),
        "Gradient x Input": lambda: lrp.gradient_x_input(model, X, C),
        "LRP (lrpkit.reference.lrp)": lambda: lrp.lrp(model, X, C),
        "zennit, same rules": lambda: benchtools.zennit_lrp(zmodel, X, C),
    }
    # zennit and lrpkit compute the same relevance (float32 rounding: ~1e-6 relative)
    agreement = benchtools.relative(
        jobs["zennit, same rules"](), jobs["LRP (lrpkit.reference.lrp)"]()
    )
    times = benchtools.timed(jobs, reps, warmup)
    print()
    print(benchtools.table(times, "Gradient x Input", "CPU, 1 x 3 x 224 x 224, float32"))
    print(f"zennit vs lrpkit relevance: relative L2 difference {agreement:.1e} (float32)")
    gxi, lrp_t = times["Gradient x Input"], times["LRP (lrpkit.reference.lrp)"]
    zennit_t = times["zennit, same rules"]
    # the ratios of the minima are the ones least disturbed by load
    print(
        f"ratios of the minima: LRP / GxI {lrp_t.minimum / gxi.minimum:.2f}, "
        f"zennit / LRP {zennit_t.minimum / lrp_t.minimum:.2f}"
    )
    return [
        benchtools.Target(
            "LRP / Gradient x Input (medians)",
            lrp_t.median / gxi.median,
            "<=",
            TARGET_LRP_OVER_GXI,
        ),
        benchtools.Target(
            "zennit / LRP (medians)", zennit_t.median / lrp_t.median, ">=", TARGET_ZENNIT_OVER_LRP
        ),
    ]


def bench_gpu(model, X, batch, reps, warmup, device="cuda"):
    """Batch throughput of Gradient x Input and LRP (device: "cuda"; "cpu" to try it out)."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    model = copy.deepcopy(model).to(device)
    Xb = X.to(device).expand(batch, -1, -1, -1).contiguous()
    classes = torch.arange(batch, device=device) * 31 % 1000  # one class per sample
    name = torch.cuda.get_device_name(device) if cuda else benchtools.cpu_name()
    print(f"\n{device.type.upper()}: {name}, batch {batch} x 3 x 224 x 224, float32")
    if cuda:
        print(f"(cuDNN may use TF32 in convolutions: {torch.backends.cudnn.allow_tf32})")
    jobs = {
        "forward": lambda: forward(model, Xb),
        "Gradient x Input": lambda: lrp.gradient_x_input(model, Xb, classes),
        "LRP (lrpkit.reference.lrp)": lambda: lrp.lrp(model, Xb, classes),
    }
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    print(f"{'':<32}{'images/s':>10}{'ms/batch':>10}")
    for job, t in benchtools.timed(jobs, reps, warmup, sync).items():
        print(f"{job:<32}{batch / t.median:>10.1f}{t.median * 1e3:>10.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--reps", type=int, default=7, help="timed runs per method (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--batch", type=int, default=32, help="GPU batch size")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU section")
    parser.add_argument("--weights", default="standin", help="VGG-16 weights (default: stand-in)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model, X = benchtools.load_model(args.weights), benchtools.castle()
    print(benchtools.header())
    targets = bench_cpu(model, X, args.reps, args.warmup)
    if torch.cuda.is_available() and not args.no_gpu:
        bench_gpu(model, X, args.batch, args.reps, args.warmup)
    else:
        print("\nGPU: none available (CUDA not found); batch throughput not measured")
    return benchtools.report(targets)


if __name__ == "__main__":
    raise SystemExit(main())
