"""``spikedistill export CHECKPOINT --format nir|onnx|torchscript --out FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SpikeDistillError


def parse_input_shape(text: str | None, ckpt) -> tuple[int, int, int]:
    """``--input-shape C,H,W``, or the checkpoint's own sample shape."""
    if text is None:
        return ckpt.input_shape
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise SpikeDistillError(f"--input-shape must be C,H,W such as 3,32,32 (got '{text}')")
    return shape


def run_export(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..io import check_not_an_input

    check_not_an_input(args.out, [args.checkpoint])
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.model()
    input_shape = parse_input_shape(getattr(args, "input_shape", None), ckpt)
    timesteps = args.timesteps or ckpt.max_timesteps
    # pre-flight: a layer no NIR node (or the target's reader) maps, before anything is written
    if args.format == "nir":
        from .to_nir import check_exportable

        check_exportable(model, getattr(args, "nir_target", "nir"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # an OSError here is one clear line from the CLI
    if args.format == "nir":
        from .to_nir import write_nir

        graph = write_nir(model, args.out, input_shape, timesteps, target=getattr(args, "nir_target", "nir"))
        print(f"wrote {args.out}: NIR graph of {len(graph.nodes)} nodes for {graph.metadata['reader']}, input "
              f"{input_shape}, BN folded, LIF as NIR LIF with dt={graph.metadata['dt']:g} (feed the input for "
              f"{timesteps} steps)")
    elif args.format == "onnx":
        from .fixed import export_onnx

        export_onnx(model, args.out, input_shape, timesteps, frames=ckpt.frames)
        print(f"wrote {args.out}: ONNX, fixed T={timesteps}, input [B,{','.join(map(str, input_shape))}] → logits "
              "[T,B,K]")
    else:
        from .fixed import export_torchscript

        export_torchscript(model, args.out, input_shape, timesteps, frames=ckpt.frames)
        print(f"wrote {args.out}: TorchScript, fixed T={timesteps} → logits [T,B,K]")
    return 0
