"""``spikedistill demo --out DIR``: the whole idea in about two CPU minutes, offline.

On scikit-learn's bundled handwritten digits (1,797 real 8×8 images — shipped inside an installed
dependency, so nothing is downloaded) it trains, with the same loop as every recipe:

1. an ANN teacher (``small_cnn``, ReLU, plain CE);
2. an SNN student with standard KD on the time-mean logits (``skd``, docs/objectives.md#skd);
3. an SNN student with full-range temporal-wise KD (``twkd``, docs/objectives.md#twkd),

both students at T_max = 4 with identical settings, then scores each at every timestep 1..4 in one
pass. ``DIR/report.json`` follows docs/training.md; the teacher, an ANN, has one accuracy whatever the
timestep, so its ``top1`` repeats that value for every key "1".."4". ``DIR/fullrange.png`` plots top-1
against timesteps, one line per method. Each run's checkpoints and metrics stay in ``DIR/<method>/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..evaluate.plot import plot_methods
from ..io import atomic_write_text
from .config import config_from_dict

MAX_TIMESTEPS = 4
DATASET = "digits"
EPOCHS = {"teacher": 12, "student": 24}
STUDENT_WIDTHS = [16, 32, 64]  # a narrow small_cnn: the two students train in about a CPU minute each


def demo_config(method: str, out: Path, seed: int, epochs: int) -> dict:
    spiking = method != "teacher"
    loss = {"teacher": {"name": "ce"},
            "skd": {"name": "skd", "options": {"alpha": 0.2, "tau": 3.0}},                     # the FR paper's α, τ
            "twkd": {"name": "twkd", "options": {"alpha": 0.2, "beta": 0.5, "tau": 3.0}}}[method]  # its α, β, τ
    return {
        "model": {"name": "small_cnn", "spiking": spiking, "options": {"widths": STUDENT_WIDTHS} if spiking else {}},
        "teacher": {"checkpoint": str(out / "teacher" / "best.pt")} if spiking else {},
        "loss": loss,
        "data": {"name": DATASET, "augment": {"crop_padding": 1, "flip": False}},  # digits are not mirror-symmetric
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "epochs": epochs, "batch_size": 64},
        "timesteps": MAX_TIMESTEPS,
        "seed": seed,
        "device": "cpu",
        "log": {"tensorboard": True, "eval_every": max(1, epochs // 4)},  # TensorBoard events when it is installed
    }


def run_demo(args) -> int:
    import torch

    from .loop import train

    out = Path(args.out)
    quick = getattr(args, "quick", False)
    seed = getattr(args, "seed", 0)
    # One thread: these tensors are tiny (8×8 images), and a second thread mostly adds contention.
    # Restored at the end: the demo leaves no global state behind.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_demo(out, quick, seed, train)
    finally:
        torch.set_num_threads(threads)


def _run_demo(out: Path, quick: bool, seed: int, train) -> int:
    started = time.perf_counter()
    results, seconds, epochs_of_best = {}, {}, {}
    for method in ("teacher", "skd", "twkd"):
        epochs = 2 if quick else EPOCHS["teacher" if method == "teacher" else "student"]
        print(f"\n== {method}: {epochs} epochs ==")
        tick = time.perf_counter()
        run_dir = out / method
        for stale in ("latest.pt", "best.pt", "metrics.csv"):  # a demo always starts fresh
            (run_dir / stale).unlink(missing_ok=True)
        train(config_from_dict(demo_config(method, out, seed, epochs)), run_dir)
        seconds[method] = time.perf_counter() - tick
        # One source of truth: the numbers of best.pt, the checkpoint `spikedistill eval` reads.
        best = load_checkpoint(run_dir / "best.pt")
        top1 = best.metrics["top1"]
        if method == "teacher":  # an ANN: one value, the same at every timestep
            top1 = {k: top1[1] for k in range(1, MAX_TIMESTEPS + 1)}
        results[method] = {"top1": {str(k): round(v, 2) for k, v in top1.items()}}
        epochs_of_best[method] = best["epoch"]

    report = {"dataset": DATASET, "max_timesteps": MAX_TIMESTEPS, "results": results,
              "notes": {"teacher": "ANN: one accuracy, repeated for every timestep",
                        "model": "small_cnn", "seconds": {k: round(v, 1) for k, v in seconds.items()},
                        "checkpoints": "each method's best.pt (DIR/<method>/best.pt), scored at its best epoch",
                        "best_epoch": epochs_of_best, "quick": quick}}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(report, indent=2) + "\n", out / "report.json")
    plot_methods({("ANN teacher" if m == "teacher" else f"{m} student (SNN)"): entry
                  for m, entry in results.items() if m != "teacher"}, out / "fullrange.png",
                 title=f"One SNN for every timestep — {DATASET}", teacher_top1=results["teacher"]["top1"]["1"])
    print()
    print(format_table(results))
    print(f"\nwrote {out / 'report.json'} and {out / 'fullrange.png'} in {time.perf_counter() - started:.0f} s")
    return 0


def format_table(results: dict) -> str:
    steps = list(next(iter(results.values()))["top1"])
    lines = [f"test top-1 (%) of {DATASET} at each timestep",
             f"{'method':<9}" + "".join(f"{'T=' + k:>8}" for k in steps)]
    for method, entry in results.items():
        lines.append(f"{method:<9}" + "".join(f"{entry['top1'][k]:>8.2f}" for k in steps)
                     + ("   (ANN, timestep-free)" if method == "teacher" else ""))
    if "skd" in results and "twkd" in results:
        gap = results["twkd"]["top1"]["1"] - results["skd"]["top1"]["1"]
        lines.append(f"at T=1 twkd - skd = {gap:+.2f} points")
    return "\n".join(lines)
