"""The ``spikedistill`` command line: demo, train, eval, export, bench.

Each subcommand lives in the module of its room (``train/cli.py``, ``train/demo.py``, ``evaluate/cli.py``,
``export/cli.py``) as ``run_<command>(args) -> exit code`` and is wired here; ``bench`` runs the benchmark
script of the source checkout (``benchmarks/bench_step.py``), which is not part of the installed library.
Bad input ends with one ``error: ...`` line and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .checks import check_positive_int
from .errors import EXIT_USER_ERROR, SpikeDistillError, run_command


def _dispatch(feature: str, module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """Import the subcommand's room lazily, so ``--help`` stays fast and one room cannot break another."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        name = f"spikedistill.{module}"
        try:
            room = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):  # no such room here
                raise SpikeDistillError(f"'{feature}' is not available in this version yet") from None
            if exc.name is not None and not exc.name.startswith("spikedistill"):  # a package it needs
                package = exc.name.split(".")[0]
                raise SpikeDistillError(f"'{feature}' needs the Python module '{package}', which is not installed "
                                        "here; install the package that provides it") from None
            raise  # a broken installation or a bug: its own traceback says where
        entry = getattr(room, function, None)
        if entry is None:
            raise SpikeDistillError(f"'{feature}' is not available in this version yet")
        return entry(args)

    return run


def _bench(args: argparse.Namespace) -> int:
    """``bench ARGS``: ``python benchmarks/bench_step.py ARGS`` of the source checkout, which defines the options."""
    import runpy
    from pathlib import Path

    for folder in (Path(__file__).resolve().parents[1], Path.cwd()):
        script = folder / "benchmarks" / "bench_step.py"
        if script.is_file():  # run in this process: its output and exit code are this command's
            argv = sys.argv
            sys.argv = [str(script), *args.arguments]
            try:
                runpy.run_path(str(script), run_name="__main__")
            except SystemExit as exit_:
                if isinstance(exit_.code, str):  # sys.exit("message"): said, and a failure
                    print(exit_.code, file=sys.stderr)
                return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            finally:
                sys.argv = argv
            return 0
    raise SpikeDistillError("'spikedistill bench' runs benchmarks/bench_step.py of the source checkout, and none is "
                            "here; run it from the spikedistill source folder (a clone of the repository)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line naming the fix, like every other bad input."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"error: {self.prog}: {message}; see '{self.prog} --help'\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a count, a size, a number of steps)."""
    try:
        value = int(text)
    except ValueError:
        value = text
    try:
        return check_positive_int("", value, say=lambda _name, _value, rule: f"expected {rule}, got '{text}'")
    except SpikeDistillError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="spikedistill",
        description="Train SNNs by knowledge distillation to run at any timestep 1..T_max.",
    )
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import MODULE first, so the models, datasets and losses it registers can be named "
                             "(repeatable; recorded in the run, so eval, export and --resume import it again)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="teacher, skd and twkd students offline, with their report")
    demo.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--quick", action="store_true", help="a few epochs only: checks the pipeline, not the result")
    demo.set_defaults(run=_dispatch("demo", "train.demo", "run_demo"))

    train = sub.add_parser("train", help="train a teacher or student from a YAML recipe")
    train.add_argument("--config", help="recipe YAML (configs/<dataset>/<method>_<model>.yaml); optional with --resume")
    train.add_argument("overrides", nargs="*", help="key=value overrides")
    train.add_argument("--out", help="run directory")
    train.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    train.add_argument("--train-teacher", action="store_true",
                       help="when teacher.checkpoint does not exist, train it first from teacher.recipe (on this run's "
                            "data)")
    train.set_defaults(run=_dispatch("train", "train.cli", "run_train"))

    evaluate = sub.add_parser("eval", help="accuracy and energy at every timestep of a checkpoint")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--timesteps", default=None, help="range such as 1-6")
    evaluate.add_argument("--json", help="write the report JSON here (fullrange.png goes beside it; fields in "
                                         "docs/deployment.md)")
    evaluate.add_argument("--data", help="dataset name (default: the checkpoint's training recipe)")
    evaluate.add_argument("--data-root", help="dataset folder (default: the recipe's, else the data room's default)")
    evaluate.add_argument("--split", default="test", choices=("train", "test"))
    evaluate.add_argument("--limit", type=positive_int,
                          help="evaluate N samples, every class in its share of the split (deterministic)")
    evaluate.add_argument("--batch-size", type=positive_int, default=256)
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    evaluate.add_argument("--teacher", metavar="CKPT", help="teacher checkpoint (an ANN, or an SNN run at the same T): "
                                                            "reference lines for top-1 and energy")
    evaluate.add_argument("--early-exit", nargs="?", const="default", metavar="THRESHOLDS",
                          help="sweep per-sample early exit; optional comma-separated confidence thresholds")
    evaluate.add_argument("--stem-macs", choices=("once", "per_step"), default="once",
                          help="static images: count the stem conv's MACs once (default) or at every step")
    evaluate.add_argument("--plot",
                          help="draw the picture here (default: fullrange.png beside --json; none without either)")
    evaluate.add_argument("--no-plot", action="store_true", help="skip the pictures")
    evaluate.set_defaults(run=_dispatch("eval", "evaluate.cli", "run_eval"))

    export = sub.add_parser("export", help="export a checkpoint to NIR, ONNX or TorchScript")
    export.add_argument("checkpoint")
    export.add_argument("--format", choices=("nir", "onnx", "torchscript"), default="nir")
    export.add_argument("--out", required=True)
    export.add_argument("--timesteps", type=positive_int,
                        help="fixed T of the ONNX/TorchScript model (default: the checkpoint's)")
    export.add_argument("--input-shape", help="C,H,W of one input (default: the model family's usual size)")
    export.add_argument("--nir-target", choices=("nir", "snntorch", "norse"), default="nir",
                        help="the NIR reader the file is written for (default: nir, the spec-plain file at dt=1)")
    export.set_defaults(run=_dispatch("export", "export.cli", "run_export"))

    # The benchmark's options are its script's (benchmarks/bench_step.py --help): passed on untouched.
    bench = sub.add_parser("bench", add_help=False, prefix_chars="+",
                           help="time the training step against the ANN floor (source checkout; bench --help for its "
                                "options)")
    bench.add_argument("arguments", nargs=argparse.REMAINDER)
    bench.set_defaults(run=_bench)
    return parser


def import_user_modules(names) -> None:
    """``--import MODULE``: the current directory first on the path, as ``python -m`` has it."""
    if not names:
        return
    import os

    from .registry import import_modules

    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    import_modules(names)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show '·' or '→' gets '?', not a traceback
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    parser = build_parser()
    args = parser.parse_args(argv)

    def command() -> int:
        import_user_modules(args.imports)
        return args.run(args)

    try:
        return run_command(command, out_of_memory="out of GPU memory; lower optim.batch_size (or timesteps), or use "
                                                  "more GPUs with torchrun")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
