"""Time one SNN training step against the ANN floor: the table of issue 5 in one command.

    python benchmarks/bench_step.py                       # GPU: ResNet-19, T = 4 and 6, B = 128, all cases
    python benchmarks/bench_step.py --models resnet19 resnet18 vggsnn --timesteps 4
    python benchmarks/bench_step.py --device cpu --smoke  # CPU: a tiny run that checks every case works
    python benchmarks/bench_step.py --table results.jsonl # print a saved run as the markdown table

Prints one JSON line per case (see ``spikedistill.bench``); ``--out FILE`` also appends them to FILE,
and the markdown table (ms eager / compiled with ratio to the floor, peak GB) follows on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys

from spikedistill.bench import CASES, EXTRA_CASES, MODES, run_bench


def markdown_table(records: list[dict]) -> str:
    """One row per (model, T, case): ms eager / compiled with the ratio to the floor, peak GB (CUDA)
    and GB saved for backward by one eager forward."""
    rows = {}
    for r in records:
        if "skipped" in r:
            continue
        cell = f"{r['ms']:.1f} ({r['ratio_to_floor']:.2f}×)" if r.get("ratio_to_floor") else f"{r['ms']:.1f}"
        rows.setdefault((r["model"], r["timesteps"], r["case"]), {})[r["mode"]] = (cell, r["peak_gb"], r["saved_gb"])
    lines = ["| model | T | case | ms/step eager | ms/step compiled | peak GB eager / compiled | saved GB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for (model, timesteps, case), modes in rows.items():
        eager, compiled = modes.get("eager", ("–", None, None)), modes.get("compile", ("–", None, None))
        peak = " / ".join("–" if m[1] is None else f"{m[1]:.2f}" for m in (eager, compiled))
        saved = "–" if eager[2] is None else f"{eager[2]:.4g}"
        lines.append(f"| {model} | {timesteps} | {case} | {eager[0]} | {compiled[0]} | {peak} | {saved} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check, not a measurement")
    parser.add_argument("--models", nargs="+", help="default: resnet19 (also resnet18, vggsnn, small_cnn)")
    parser.add_argument("--timesteps", nargs="+", type=int, help="default: 4 6")
    parser.add_argument("--batch", type=int, help="default: 128")
    parser.add_argument("--cases", nargs="+", choices=CASES + EXTRA_CASES)
    parser.add_argument("--modes", nargs="+", choices=MODES)
    parser.add_argument("--iters", type=int, help="timed steps per case (median reported); default 20")
    parser.add_argument("--warmup", type=int, help="untimed steps per case; default 5")
    parser.add_argument("--compile-backend", dest="compile_backend", help="torch.compile backend; default inductor")
    parser.add_argument("--out", help="append the JSON lines to this file too")
    parser.add_argument("--table", help="print the markdown table of a saved JSON-lines file and exit")
    args = parser.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            print(markdown_table([json.loads(line) for line in f if line.strip()]))
        return 0

    captured = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, captured)):
        code = run_bench(args)
    records = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
    print(markdown_table(records), file=sys.stderr)
    return code


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


if __name__ == "__main__":
    sys.exit(main())
