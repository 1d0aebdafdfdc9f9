"""Time one SNN training step against the ANN floor, round-robin: the tables of issues 5 and 17.

    python benchmarks/bench_step.py                       # GPU: ResNet-19, T = 4 and 6, B = 128
    python benchmarks/bench_step.py --device cpu          # CPU: small_cnn, B = 8, T = 1 2 4 8, eager
    python benchmarks/bench_step.py --device cpu --cases ann_floor snn_default snn_torch spikingjelly \\
        --timesteps 4 --threads 2 --iters 21
    python benchmarks/bench_step.py --device cpu --smoke  # a tiny run that checks every case works
    python benchmarks/bench_step.py --table results.jsonl # print a saved run as the markdown table

The same as ``spikedistill bench`` (see ``spikedistill.bench`` for what is measured and how); ``--out
FILE`` also appends the JSON lines to FILE.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys

from spikedistill.bench import CASES, EXTRA_CASES, MODES, run_bench, summary_table

__all__ = ["main", "summary_table"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check, not a measurement")
    parser.add_argument("--models", nargs="+", help="default: resnet19 on CUDA, small_cnn on a CPU")
    parser.add_argument("--timesteps", nargs="+", type=int, help="default: 4 6 on CUDA, 1 2 4 8 on a CPU")
    parser.add_argument("--batch", type=int, help="default: 128 on CUDA, 8 on a CPU")
    parser.add_argument("--cases", nargs="+", choices=CASES + EXTRA_CASES)
    parser.add_argument("--modes", nargs="+", choices=MODES)
    parser.add_argument("--iters", type=int, help="timed rounds (one step of every case each); default 20 / 15")
    parser.add_argument("--warmup", type=int, help="untimed steps per case; default 3")
    parser.add_argument("--threads", type=int, help="torch threads for the run")
    parser.add_argument("--no-memory", dest="no_memory", action="store_true", help="CPU: no peak-RSS children")
    parser.add_argument("--compile-backend", dest="compile_backend", help="torch.compile backend; default inductor")
    parser.add_argument("--out", help="append the JSON lines to this file too")
    parser.add_argument("--table", help="print the markdown table of a saved JSON-lines file and exit")
    args = parser.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            print(summary_table([json.loads(line) for line in f if line.strip()]))
        return 0
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = run_bench(args)
    sys.stdout.write(captured.getvalue())
    if args.out:
        with open(args.out, "a") as f:
            f.write(captured.getvalue())
    return code


if __name__ == "__main__":
    sys.exit(main())
