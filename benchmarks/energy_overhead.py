"""What the energy count adds to an evaluation: one ``fullrange_report`` pass against a plain forward.

    python benchmarks/energy_overhead.py                        # small_cnn, B = 256, T = 4, CPU
    python benchmarks/energy_overhead.py --model resnet19 --batch 64 --size 32 --device cuda
    python benchmarks/energy_overhead.py --smoke                # tiny sizes: a check, not a measurement

Both run over the same batches in eval mode under ``no_grad`` (one report call over all of them, as
``spikedistill eval`` makes over a test split), interleaved round by round so that a busy
machine slows both alike; the ratio is the median report pass over the median forward, by the wall
clock and by this process's CPU time (the steadier one on a CPU shared with other jobs). The report pass
is everything ``spikedistill eval`` does per batch without ``--early-exit``: the forward with the energy
hooks and top-1 at every k. The goal is a ratio of at most 1.2.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import spikedistill as sd
from spikedistill.device import device_name
from spikedistill.evaluate import fullrange_report


def timed(fn, device: torch.device) -> tuple[float, float]:
    """``(wall seconds, this process's CPU seconds)`` of one call. On a shared CPU the CPU time is the
    steadier measure (other jobs stretch the wall clock, not it); on a GPU only the wall time means much."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def lively(net: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm statistics and shifts that make about a tenth to a third of the neurons fire, as in a
    trained network (a freshly built one barely fires, which would flatter the count)."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2 + 0.6)
    return net.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--size", type=int, help="image side; default: the model's registered input")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=4, help="batches per pass (an evaluation runs many)")
    parser.add_argument("--iters", type=int, default=15, help="timed rounds (one forward and one report each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check, not a measurement")
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch, args.batches, args.iters = 8, 2, 2
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    from spikedistill.models import default_input_shape

    channels, height, width = default_input_shape(args.model)
    if args.size:
        height = width = args.size
    torch.manual_seed(0)
    net = lively(sd.create_model(args.model, num_classes=10, in_channels=channels)).to(device)
    loader = [(torch.randn(args.batch, channels, height, width, device=device) * 2,
               torch.randint(0, 10, (args.batch,), device=device)) for _ in range(args.batches)]

    def forward():
        with torch.no_grad():
            for images, _ in loader:
                net(images, timesteps=args.timesteps)

    def report():
        fullrange_report(net, loader, args.timesteps, device=device)

    for _ in range(2):  # warm-up: allocator, fan-out maps, kernels
        forward()
        report()
    plain, counted = [], []
    for _ in range(args.iters):
        plain.append(timed(forward, device))
        counted.append(timed(report, device))
    where = device_name(device)
    print(f"{args.model}, B = {args.batch} x {args.batches} batches, T = {args.timesteps}, {height}x{width}, {where}, "
          f"{args.iters} rounds, medians")
    print("                  wall ms   process CPU ms")
    medians = []
    for label, times in (("plain forward", plain), ("report pass", counted)):
        medians.append([statistics.median(t[i] for t in times) for i in (0, 1)])
        print(f"{label:15s} {1e3 * medians[-1][0]:9.2f} {1e3 * medians[-1][1]:16.2f}")
    ratios = [medians[1][i] / medians[0][i] for i in (0, 1)]
    print(f"ratio           {ratios[0]:8.2f}x {ratios[1]:15.2f}x  (goal: <= 1.2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
