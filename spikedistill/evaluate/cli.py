"""``spikedistill eval CHECKPOINT``: the full-range report of a trained checkpoint.

Prints a per-k table and, when asked, writes the report JSON (``--json``, fields in docs/deployment.md) and
draws ``fullrange.png`` (``--plot FILE``, or beside the ``--json`` file: top-1 and energy against timesteps,
the ANN teacher as reference lines with ``--teacher``). With ``--early-exit`` it sweeps confidence
thresholds, and a picture run also draws ``earlyexit.png`` beside ``fullrange.png``. Everything comes from
one pass at T_max. Without ``--json`` or ``--plot`` nothing is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..errors import DataNotFoundError, SpikeDistillError
from .earlyexit import DEFAULT_THRESHOLDS, format_early_exit
from .report import fullrange_report, select_timesteps


def parse_timesteps(text: str | None, default_max: int) -> tuple[int, int]:
    """``"1-6"`` → (1, 6); ``"4"`` → (1, 4); ``None`` → (1, default_max)."""
    if text is None:
        return 1, default_max
    try:
        first, dash, last = str(text).partition("-")
        if dash and not last:  # "1-" is half a range, not T = 1
            raise ValueError
        first, last = (int(first), int(last)) if dash else (1, int(first))
    except ValueError:
        raise SpikeDistillError(f"--timesteps must be a range like 1-6 or a count like 6 (got '{text}')") from None
    if not 1 <= first <= last:
        raise SpikeDistillError(f"--timesteps range must satisfy 1 <= first <= last (got '{text}')")
    return first, last


def parse_thresholds(text: str | None) -> list[float] | None:
    """``--early-exit`` (no value) → the default sweep; ``0.8,0.9`` → those thresholds."""
    if text is None:
        return None
    if text == "default":
        return list(DEFAULT_THRESHOLDS)
    try:
        thresholds = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        thresholds = None
    if not thresholds or not all(0.0 < t <= 1.0 for t in thresholds):
        raise SpikeDistillError("--early-exit takes comma-separated confidence thresholds in (0, 1], e.g. "
                                f"0.8,0.9,0.99 (got '{text}')")
    return thresholds


def check_plot_path(path: str | None) -> None:
    """Matplotlib is there and ``path`` is a format it writes: checked before the evaluation runs, not after it."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise SpikeDistillError("drawing needs matplotlib; pip install 'spikedistill[demo]' or pass --no-plot")
    if path is None:
        return
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PICTURE_FORMATS:
        raise SpikeDistillError(f"--plot '{path}': cannot draw a '{suffix or 'extensionless'}' picture; end the name "
                                f"with one of .{', .'.join(PICTURE_FORMATS)} (e.g. fullrange.png), or pass --no-plot")


# What matplotlib's Agg canvas writes (FigureCanvasAgg.get_supported_filetypes), without importing it.
PICTURE_FORMATS = ("png", "pdf", "svg", "svgz", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps", "pgf", "raw", "rgba")


def check_writable(path: str | None) -> None:
    """Open ``--json`` for writing now (and remove it again if it is new): an unwritable path fails in
    the first second, not after the whole evaluation."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise SpikeDistillError(f"--json '{path}' is a directory; pass a file name, e.g. {target / 'report.json'}")
    target.parent.mkdir(parents=True, exist_ok=True)
    existed = target.exists()
    with open(target, "a"):
        pass
    if not existed:
        target.unlink()


def check_memory(model, ckpt, timesteps_text: str | None, last: int, batch_size: int, samples: int, device) -> None:
    """Refuse a T whose one pass cannot fit in memory, naming the largest that does (or a smaller batch)."""
    from .report import timesteps_that_fit

    if not ckpt.spiking or ckpt.frames:
        return
    largest, need, free = timesteps_that_fit(model, ckpt.input_shape, batch_size, samples, device, last)
    if last > largest:
        raise SpikeDistillError(
            f"--timesteps {timesteps_text}: one pass at T={last} needs about {need / 2**30:.1f} GiB with --batch-size "
            f"{batch_size}, and {free / 2**30:.1f} GiB are free on {device}; the largest T that fits is {largest} "
            "(or lower --batch-size)")


def build_loader(args: argparse.Namespace, ckpt, device: torch.device):
    """Test batches for the checkpoint (``--data``/``--data-root`` or the training recipe's ``data``), the
    dataset's name and how many samples it holds: the whole split unless ``--limit``."""
    from ..data import batches, load_dataset, stratified_indices
    from ..data.dataset import with_normalisation

    data = ckpt.config.get("data")
    data = data if isinstance(data, dict) else {}
    name = args.data or data.get("name")
    if not name:
        raise SpikeDistillError("the checkpoint does not name its dataset; pass --data NAME (and --data-root DIR)")
    root = args.data_root or data.get("root")
    try:
        dataset = load_dataset(name, root, split=args.split)
    except DataNotFoundError as exc:  # the data room's advice, in this command's words (it does not download)
        raise SpikeDistillError(exc.message(root="pass --data-root {place}{holds}", download=None)) from None
    if name == data.get("name"):  # the recipe's data: its normalisation too (data.mean/data.std)
        dataset = with_normalisation(dataset, data.get("mean"), data.get("std"))
    args.split_size = len(dataset)  # the scope line says what share --limit scored
    limit = args.limit  # the full split unless asked: the recipe's data.test_subset was for quick training tests
    if limit and limit < len(dataset):  # every class in its share: a split stored grouped by class stays fair
        dataset = dataset.subset(stratified_indices(dataset.labels, limit))
    return batches(dataset, args.batch_size, shuffle=False, augment=None, device=device,
                   drop_last=False), name, len(dataset)


def format_report(report: dict) -> str:
    lines = ["  k  top-1 %        SOPs        MACs  energy mJ  firing rate"]
    for i, k in enumerate(report["timesteps"]):
        lines.append(f"{k:3d}  {report['top1'][i]:7.2f}  {report['sops'][i]:10.4g}  {report['macs'][i]:10.4g}"
                     f"  {report['energy_mj'][i]:9.4g}  {report['firing_rate'][i]:11.4f}")
    return "\n".join(lines)


def teacher_reference(report: dict) -> dict:
    """The ANN's row for the reference lines: top-1, MACs and energy of its full run."""
    return {"top1": report["top1"][-1], "macs": report["macs"][-1], "energy_mj": report["energy_mj"][-1]}


def picture_path(args: argparse.Namespace) -> Path | None:
    """Where ``fullrange.png`` goes: ``--plot FILE``, else beside the ``--json`` file; ``None`` (no picture)
    with ``--no-plot`` or when neither was given, so a plain ``eval`` writes nothing into the working folder."""
    if args.no_plot:
        return None
    if args.plot:
        return Path(args.plot)
    return Path(args.json).with_name("fullrange.png") if args.json else None


def recipe_precision(ckpt) -> str:
    """The precision a checkpoint's run trained and tested in (its recipe's ``precision``, bf16 by default)."""
    config = ckpt.config if isinstance(ckpt.config, dict) else {}
    return config.get("precision") or "bf16"


def run_eval(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..device import autocast, resolve_device
    from ..io import atomic_write_text, check_not_an_input

    # Every option is checked before any data is loaded or any sample evaluated.
    device = resolve_device(getattr(args, "device", None) or "auto")
    thresholds = parse_thresholds(getattr(args, "early_exit", None))
    picture = picture_path(args)
    if picture is not None:
        check_plot_path(args.plot)  # matplotlib installed, a format it writes
    for option, output in (("--json", args.json), ("--plot", picture)):
        if output is not None:
            check_not_an_input(output, [args.checkpoint, args.teacher], option)
    check_writable(args.json)
    ckpt = load_checkpoint(args.checkpoint)
    first, last = parse_timesteps(args.timesteps, ckpt.max_timesteps)
    model = ckpt.model(device=device)
    teacher_model = teacher_ckpt = None
    if args.teacher:
        teacher_ckpt = load_checkpoint(args.teacher, role="teacher")
        teacher_model = teacher_ckpt.model(num_classes=ckpt.num_classes)
    loader, dataset, samples = build_loader(args, ckpt, device)
    check_memory(model, ckpt, args.timesteps, last, min(args.batch_size, samples), samples, device)
    with autocast(device, recipe_precision(ckpt)):  # as the per-epoch test that chose this checkpoint
        report = fullrange_report(model, loader, last, device=device, stem_macs=args.stem_macs,
                                  early_exit_thresholds=thresholds)
    report = select_timesteps(report, first, last)
    report.update({"checkpoint": str(args.checkpoint), "model": ckpt.name, "dataset": dataset,
                   "split": args.split})
    teacher = None
    if teacher_model is not None:
        loader, _, _ = build_loader(args, ckpt, device)  # the same samples, in the same order
        teacher_steps = last if teacher_ckpt.spiking else 1
        with autocast(device, recipe_precision(teacher_ckpt)):
            teacher_report = fullrange_report(teacher_model.to(device), loader, teacher_steps, device=device,
                                              stem_macs=args.stem_macs)
        kind = "SNN" if teacher_ckpt.spiking else "ANN"
        teacher = {"checkpoint": str(args.teacher), "model": teacher_ckpt.name, "kind": kind,
                   "timesteps": teacher_steps, **teacher_reference(teacher_report)}
        report["teacher"] = teacher
    scope = (f"a class-stratified {report['samples']} of {args.split_size}" if report["samples"] < args.split_size
             else f"all {report['samples']}")
    passes = f"one pass at T={last}" if ckpt.spiking else "one pass of the ANN (no timesteps)"
    print(f"{report['model']} on {dataset}/{args.split} ({scope} samples scored), {passes}")
    print(format_report(report))
    if teacher:
        at = f" at T={teacher['timesteps']}" if teacher["kind"] == "SNN" else ""
        print(f"{teacher['kind']} teacher {teacher['model']}{at}: top-1 {teacher['top1']:.2f} %, {teacher['macs']:.4g} "
              f"MACs, {teacher['energy_mj']:.4g} mJ")
    if "early_exit" in report:
        print("early exit (per-sample, running-mean softmax confidence >= threshold):")
        print(format_early_exit(report["early_exit"]))
    if args.json:
        atomic_write_text(json.dumps(report, indent=1), args.json)
        print(f"wrote {args.json}")
    if picture is not None:
        from .plot import plot_early_exit, plot_fullrange

        png = plot_fullrange(report, picture, teacher,
                             title=f"{report['model']} on {dataset}: full-range accuracy and energy")
        print(f"wrote {png}")
        if "early_exit" in report:
            png = plot_early_exit(report, Path(png).with_name("earlyexit.png"))
            print(f"wrote {png}")
    return 0
