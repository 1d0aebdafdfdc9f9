"""CIFAR-10 full-range study: an ANN teacher, then SNN students, each scored at every timestep 1..T_max.

One teacher, then students of several objectives × seeds; the claims it tests and how it rules on them
are in docs/benchmarks.md. The parts live in benchmarks/fullrange/ (profiles, budget, state, run, report).

Two profiles, each a set of YAML recipes (configs/) plus overrides, never recipes of its own:

* ``--profile gpu`` (default): ResNet-19 students of every objective, recipes configs/cifar10/*_resnet19.yaml
  turned into a short schedule, every student on the same wall-clock budget.
* ``--profile cpu``: the small SNN of configs/cifar10_cpu/*.yaml, sized for two CPU cores, trained for the
  epochs the recipes give (teacher once, then the claimed comparisons over 2 seeds, the other objectives
  over 1 seed). Writes ``cifar10_cpu.{json,md,png}``.

Stages, each checkpointing to disk and skipped when its result already exists:

1. ``teacher``  — the ANN, plain CE.
2. ``students`` — each objective × seed at T_max = 4.
3. ``report``   — ``OUT/<name>.md`` (top-1 and energy at every k, wall time, machine, seeds, commit,
   commands, the verdict) and ``OUT/<name>.png`` (the curves).

The study's state is one small JSON (gpu: ``OUT/cifar10_fullrange.json``; cpu: ``RUNS/state.json``, the
published ``OUT/cifar10_cpu.json`` is derived from it). Checkpoints live under ``--runs``: a lost teacher
checkpoint is retrained, a half-trained student resumes from its ``latest.pt``, so a study can span
several commands or an interruption (Ctrl-C or SIGTERM stops after the current step, resumable): run the
same command again until it prints ``DONE``.

    python benchmarks/cifar10_fullrange.py --device cuda --teacher-minutes 2 --budget-minutes 1.3 \
        --seeds 0 1 --out results/
    python benchmarks/cifar10_fullrange.py --profile cpu --out results/ --runs runs/cifar10_cpu \
        --log runs/cifar10_cpu.log
    python benchmarks/cifar10_fullrange.py --smoke --out /tmp/smoke        # CPU, a few hundred images, < 1 min
    python benchmarks/cifar10_fullrange.py --profile cpu --smoke --out /tmp/smoke-cpu

Data: CIFAR-10 (JPEG-q75 copy) from --data-root, else $SPIKEDISTILL_DATA. Report numbers
on it as "CIFAR-10 (JPEG-q75 copy)": they sit somewhat below published CIFAR-10 numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's spikedistill and benchmarks

import torch  # noqa: E402

from benchmarks.fullrange.console import Tee, say  # noqa: E402
from benchmarks.fullrange.profiles import ALL_METHODS, METHODS, PROFILES, SMOKE  # noqa: E402
from benchmarks.fullrange.run import run_all  # noqa: E402
from spikedistill.cli import positive_int  # noqa: E402
from spikedistill.errors import run_command  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="gpu", choices=sorted(PROFILES),
                        help="gpu: ResNet-19, every objective, time budgets (default); "
                             "cpu: the small SNN of configs/cifar10_cpu")
    parser.add_argument("--device", default="auto", help="cuda, cuda:N, cpu or auto (default)")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="gpu: training minutes per student, the same for every objective (default 6; smoke: tiny)")
    parser.add_argument("--teacher-minutes", type=float, default=None,
                        help="gpu: training minutes of the teacher (default 2.5)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="fixed epochs for every stage instead of a time budget or the recipe's")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="student seeds (default: 0; cpu: the profile's plan, two seeds for the claimed "
                             "comparisons)")
    parser.add_argument("--teacher-seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=None, choices=ALL_METHODS,
                        help=f"objectives (default: every one of the profile; gpu: {' '.join(METHODS)})")
    parser.add_argument("--stage", default="all", choices=("teacher", "students", "report", "all"))
    parser.add_argument("--out", default="results", help="where the markdown, PNG and JSON go (default results/)")
    parser.add_argument("--runs", default=None,
                        help="checkpoint cache (default runs/cifar10_fullrange or runs/cifar10_cpu; smoke: OUT/runs)")
    parser.add_argument("--log", default=None, help="also append every progress line to this file")
    parser.add_argument("--data-root", default=None,
                        help="folder holding cifar10/train_jpeg.npz (default $SPIKEDISTILL_DATA)")
    parser.add_argument("--train-images", type=positive_int, default=None,
                        help="first N training images (default: the recipe's)")
    parser.add_argument("--test-images", type=positive_int, default=None,
                        help="first N test images (default all 10,000)")
    parser.add_argument("--compile", action="store_true", help="torch.compile each model (pays compile time per stage)")
    parser.add_argument("--teacher-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for the teacher")
    parser.add_argument("--student-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every student")
    parser.add_argument("--adopt", default=None, metavar="JSON",
                        help="take the finished runs of a published result file (results/cifar10_cpu.json) "
                             "whose recipes are unchanged, instead of training them again")
    parser.add_argument("--commit", default=None, help="the commit to record (default: git rev-parse HEAD)")
    parser.add_argument("--plan-only", action="store_true", help="print the planned budget and exit")
    parser.add_argument("--smoke", action="store_true",
                        help=f"CI mode: CPU, {SMOKE['train_images']} train / {SMOKE['test_images']} test images, "
                             f"{SMOKE['model']}")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.smoke:
        args.device = "cpu"
        args.budget_minutes = SMOKE["budget_minutes"] if args.budget_minutes is None else args.budget_minutes
        args.teacher_minutes = SMOKE["teacher_minutes"] if args.teacher_minutes is None else args.teacher_minutes
        torch.set_num_threads(min(2, torch.get_num_threads()))
    args.budget_minutes = 6.0 if args.budget_minutes is None else args.budget_minutes
    args.teacher_minutes = 2.5 if args.teacher_minutes is None else args.teacher_minutes
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    tee = None

    def command() -> int:  # an unwritable --log, --out or --runs is one error line too
        nonlocal tee
        if args.log:
            tee = Tee(sys.stdout, Path(args.log))
        with contextlib.redirect_stdout(tee) if tee else contextlib.nullcontext():
            return run_all(args)

    try:
        return run_command(command)
    except KeyboardInterrupt:  # the loop wrote latest.pt before stopping
        with contextlib.redirect_stdout(tee) if tee else contextlib.nullcontext():
            say("interrupted: the current stage saved its latest.pt; run the same command again to continue")
        return 130
    finally:
        if tee:
            tee.close()


if __name__ == "__main__":
    sys.exit(main())
