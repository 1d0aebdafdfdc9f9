"""``spikedistill export CHECKPOINT --format nir|onnx|torchscript --out FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SpikeDistillError

# One input's (C, H, W) when --input-shape is not given: the size each family is built for.
DEFAULT_INPUT_SHAPES = {"small_cnn": (1, 8, 8), "vggsnn": (2, 48, 48), "preact_resnet34": (3, 224, 224)}
CIFAR_SHAPE = (3, 32, 32)
FRAME_DATASETS = ("dvs", "gesture", "nmnist", "n-mnist", "events")


def parse_input_shape(text: str | None, model, ckpt: dict) -> tuple[int, int, int]:
    if text is None:
        shape = DEFAULT_INPUT_SHAPES.get(ckpt["model"]["name"], CIFAR_SHAPE)
        return (model.in_channels,) + tuple(shape[1:])
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise SpikeDistillError(f"--input-shape must be C,H,W such as 3,32,32 (got '{text}')")
    return shape


def _timesteps(args: argparse.Namespace, model, ckpt: dict) -> int:
    if args.timesteps is not None:
        if args.timesteps < 1:
            raise SpikeDistillError(f"--timesteps must be >= 1 (got {args.timesteps})")
        return args.timesteps
    config = ckpt.get("config") or {}
    if not getattr(model, "spiking", True):
        return 1
    return int(config.get("max_timesteps") or config.get("timesteps") or model.default_timesteps)


def _frames(ckpt: dict) -> bool:
    config = ckpt.get("config") or {}
    name = str(((config.get("data") or {}) if isinstance(config, dict) else {}).get("name", "")).lower()
    return any(tag in name for tag in FRAME_DATASETS)


def run_export(args: argparse.Namespace) -> int:
    from ..train.checkpoint import model_from_checkpoint

    model, ckpt = model_from_checkpoint(args.checkpoint)
    model.eval()
    input_shape = parse_input_shape(getattr(args, "input_shape", None), model, ckpt)
    timesteps = _timesteps(args, model, ckpt)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # an OSError here is one clear line from the CLI
    if args.format == "nir":
        from .to_nir import write_nir

        graph = write_nir(model, args.out, input_shape, timesteps, target=getattr(args, "nir_target", "nir"))
        print(f"wrote {args.out}: NIR graph of {len(graph.nodes)} nodes for {graph.metadata['reader']}, input "
              f"{input_shape}, BN folded, LIF as NIR LIF with dt={graph.metadata['dt']:g} (feed the input for {timesteps} steps)")
    elif args.format == "onnx":
        from .fixed import export_onnx

        export_onnx(model, args.out, input_shape, timesteps, frames=_frames(ckpt))
        print(f"wrote {args.out}: ONNX, fixed T={timesteps}, input [B,{','.join(map(str, input_shape))}] → logits [T,B,K]")
    else:
        from .fixed import export_torchscript

        export_torchscript(model, args.out, input_shape, timesteps, frames=_frames(ckpt))
        print(f"wrote {args.out}: TorchScript, fixed T={timesteps} → logits [T,B,K]")
    return 0
