"""Does a spiking network learn from real events? A short CPU run on the N-MNIST subset.

Trains ``small_cnn`` (2 input channels; frames resized 34×34 → 16×16) as an SNN on the 1,000 training
recordings of ``nmnist_small`` binned into T frames, then prints test top-1 on the 100 test recordings at every
k = 1..T under both any-T policies (prefix of the T frames; the stream re-binned into k frames).
Chance is 10 %.

    python benchmarks/nmnist_learns.py                       # T=5, 8 epochs, TWCE, ~2–3 min on one core
    python benchmarks/nmnist_learns.py --epochs 1 --json out.json

Data from $SPIKEDISTILL_DATA/nmnist_small (default $SPIKEDISTILL_DATA/nmnist_small).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import spikedistill as sd  # noqa: E402
from spikedistill.data import batches, load_dataset  # noqa: E402
from spikedistill.data.events import EventAugment
from spikedistill.evaluate import fullrange_accuracy_events  # noqa: E402
from spikedistill.losses import create_loss  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--loss", default="twce", help="a spikedistill loss name without a teacher (ce, twce, tet)")
    parser.add_argument("--split-by", default="count", choices=("count", "time"))
    parser.add_argument("--size", type=int, default=16,
                        help="resize frames to SIZE×SIZE (0: native 34×34). small_cnn sees a 9-pixel receptive "
                             "field before global pooling, too little for a digit at 34×34 (33%% after 5 epochs, "
                             "widths 16-32-64)")
    parser.add_argument("--augment", action="store_true", help="DVS augmentation (flip, roll/rotate/cutout)")
    parser.add_argument("--root", default=None, help="folder with train.npz/test.npz "
                        "(default: $SPIKEDISTILL_DATA/nmnist_small, else data/nmnist_small)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--widths", type=int, nargs=3, default=[32, 64, 128], help="small_cnn channel widths")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    frames = dict(timesteps=args.timesteps, split_by=args.split_by, size=args.size or None)
    train = load_dataset("nmnist", args.root, split="train", **frames)
    test = load_dataset("nmnist", args.root, split="test", **frames)
    print(f"N-MNIST subset: {len(train)} train / {len(test)} test recordings, frames {tuple(train.images.shape[1:])}, "
          f"split_by={args.split_by} (loaded in {time.perf_counter() - started:.1f}s)")

    model = sd.create_model("small_cnn", spiking=True, num_classes=10, in_channels=2, widths=tuple(args.widths))
    crit = create_loss(args.loss)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * (len(train) // args.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    augment = EventAugment(roll=3, rotate=15.0, cutout=8) if args.augment else None

    for epoch in range(args.epochs):
        model.train()
        tick, total, correct, seen = time.perf_counter(), 0.0, 0, 0
        for frames, labels in batches(train, args.batch_size, shuffle=True, augment=augment, drop_last=True,
                                      seed=args.seed, epoch=epoch):
            logits = model(frames.transpose(0, 1))  # [B,T,2,H,W] → time-first → [T,B,10]
            loss = crit(logits, labels).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(labels)
            correct += int((logits.detach().mean(0).argmax(-1) == labels).sum())
            seen += len(labels)
        accuracy = fullrange_accuracy_events(model, test, policy="prefix")
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / seen:.3f}, train top-1 {100 * correct / seen:.1f}%, "
              f"test top-1 at T={args.timesteps} {accuracy[args.timesteps]:.1f}% ({time.perf_counter() - tick:.0f}s)")

    prefix = fullrange_accuracy_events(model, test, policy="prefix")
    rebin = fullrange_accuracy_events(model, test, policy="rebin")
    print(f"\nfull-range test top-1 (%), {len(test)} test recordings, chance 10%")
    print("k       " + "".join(f"{k:>7d}" for k in prefix))
    print("prefix  " + "".join(f"{v:7.1f}" for v in prefix.values()))
    print("rebin   " + "".join(f"{v:7.1f}" for v in rebin.values()))
    print(f"total {time.perf_counter() - started:.0f}s")
    result = {"dataset": "nmnist_small", "model": f"small_cnn{tuple(args.widths)}", "timesteps": args.timesteps,
              "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "loss": args.loss,
              "split_by": args.split_by, "size": args.size, "augment": args.augment, "train": len(train),
              "test": len(test),
              "top1": {"prefix": prefix, "rebin": rebin}}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
