"""``spikedistill eval CHECKPOINT``: the full-range report of a trained checkpoint.

Writes the SPEC.md JSON (``--json``), prints a per-k table, draws ``fullrange.png`` (top-1 and energy
against timesteps, the ANN teacher as reference lines with ``--teacher``) and, with ``--early-exit``,
sweeps confidence thresholds and draws ``earlyexit.png``. Everything comes from one pass at T_max.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..errors import SpikeDistillError
from .earlyexit import DEFAULT_THRESHOLDS, format_early_exit
from .report import fullrange_report, select_timesteps


def parse_timesteps(text: str | None, default_max: int) -> tuple[int, int]:
    """``"1-6"`` → (1, 6); ``"4"`` → (1, 4); ``None`` → (1, default_max)."""
    if text is None:
        return 1, default_max
    try:
        first, _, last = str(text).partition("-")
        first, last = (int(first), int(last)) if last else (1, int(first))
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
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SpikeDistillError(f"--early-exit takes comma-separated thresholds in (0, 1], e.g. 0.8,0.9,0.99 (got '{text}')") from None


def build_loader(args: argparse.Namespace, ckpt, device: torch.device):
    """Test batches for the checkpoint: ``--data``/``--data-root`` or the training recipe's ``data``."""
    from ..data import batches, load_dataset

    data = ckpt.config.get("data")
    data = data if isinstance(data, dict) else {}
    name = args.data or data.get("name")
    if not name:
        raise SpikeDistillError("the checkpoint does not name its dataset; pass --data NAME (and --data-root DIR)")
    root = args.data_root or data.get("root")
    dataset = load_dataset(name, root, split=args.split)
    limit = args.limit or (None if args.data else data.get("test_subset"))
    if limit:
        dataset = dataset.subset(min(int(limit), len(dataset)))
    return batches(dataset, args.batch_size, shuffle=False, augment=None, device=device, drop_last=False), name


def format_report(report: dict) -> str:
    lines = ["  k  top-1 %        SOPs        MACs  energy mJ  firing rate"]
    for i, k in enumerate(report["timesteps"]):
        lines.append(f"{k:3d}  {report['top1'][i]:7.2f}  {report['sops'][i]:10.4g}  {report['macs'][i]:10.4g}"
                     f"  {report['energy_mj'][i]:9.4g}  {report['firing_rate'][i]:11.4f}")
    return "\n".join(lines)


def teacher_reference(report: dict) -> dict:
    """The ANN's row for the reference lines: top-1, MACs and energy of its full run."""
    return {"top1": report["top1"][-1], "macs": report["macs"][-1], "energy_mj": report["energy_mj"][-1]}


def run_eval(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..device import resolve_device

    device = resolve_device(getattr(args, "device", None) or "auto")
    out_dir = Path(args.json).parent if args.json else Path(".")
    out_dir.mkdir(parents=True, exist_ok=True)  # fail on a bad --json path before the evaluation, not after
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.model(device=device)
    first, last = parse_timesteps(args.timesteps, ckpt.max_timesteps)
    thresholds = parse_thresholds(getattr(args, "early_exit", None))
    teacher_model = teacher_ckpt = None
    if args.teacher:
        teacher_ckpt = load_checkpoint(args.teacher, role="teacher")
        teacher_model = teacher_ckpt.model(num_classes=ckpt.num_classes)
    loader, dataset = build_loader(args, ckpt, device)
    report = fullrange_report(model, loader, last, device=device, stem_macs=args.stem_macs,
                              early_exit_thresholds=thresholds)
    report = select_timesteps(report, first, last)
    report.update({"checkpoint": str(args.checkpoint), "model": ckpt.name, "dataset": dataset,
                   "split": args.split})
    teacher = None
    if teacher_model is not None:
        loader, _ = build_loader(args, ckpt, device)  # the same samples, in the same order
        teacher_report = fullrange_report(teacher_model.to(device), loader, last, device=device, stem_macs=args.stem_macs)
        teacher = {"checkpoint": str(args.teacher), "model": teacher_ckpt.name, **teacher_reference(teacher_report)}
        report["teacher"] = teacher
    print(f"{report['model']} on {dataset}/{args.split} ({report['samples']} samples), one pass at T={last}")
    print(format_report(report))
    if teacher:
        print(f"ANN teacher {teacher['model']}: top-1 {teacher['top1']:.2f} %, {teacher['macs']:.4g} MACs, {teacher['energy_mj']:.4g} mJ")
    if "early_exit" in report:
        print("early exit (per-sample, running-mean softmax confidence >= threshold):")
        print(format_early_exit(report["early_exit"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    if not args.no_plot:
        from .plot import plot_early_exit, plot_fullrange

        png = plot_fullrange(report, args.plot or out_dir / "fullrange.png", teacher,
                             title=f"{report['model']} on {dataset}: full-range accuracy and energy")
        print(f"wrote {png}")
        if "early_exit" in report:
            png = plot_early_exit(report, Path(png).with_name("earlyexit.png"))
            print(f"wrote {png}")
    return 0
