"""Every benchmark, one after another: ``python -m lrpkit.bench [NAME ...]`` (names such as
``lrp`` or ``grading``; all by default). Each prints its measured figures beside their
targets; the exit status is 1 when one of them missed a target."""

import argparse
import subprocess
import sys

#: the benchmark modules under lrpkit.bench, in the order they run
BENCHMARKS = ("lrp", "explorer", "perturbation", "checks", "grading", "similarity")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lrpkit.bench", description=__doc__.split("\n")[0], allow_abbrev=False
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"one of {', '.join(BENCHMARKS)} (default: all)"
    )
    names = parser.parse_args(argv).names or BENCHMARKS
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    status = 0
    for name in names:
        print(f"== python -m lrpkit.bench.{name}", flush=True)
        status |= subprocess.run([sys.executable, "-m", f"lrpkit.bench.{name}"]).returncode != 0
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
