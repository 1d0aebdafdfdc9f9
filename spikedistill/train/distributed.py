"""Multi-process training through ``torchrun``: process group, device, and helpers that do nothing alone.

``torchrun --nproc_per_node=N -m spikedistill train --config ...`` sets RANK, WORLD_SIZE and LOCAL_RANK;
each process then trains its shard of every batch (``batch_size`` is global) and gradients are
all-reduced by DistributedDataParallel, which wraps the whole distillation task
(:mod:`.task`): the student and the objective's trainable parts. Without those variables training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..device import resolve_device
from ..errors import SpikeDistillError


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this call started the process group and must end it

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device_name: str, backend: str | None = None) -> Context:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    device = resolve_device(device_name, local_rank)
    if world_size <= 1:
        return Context(device=device)
    owns = not dist.is_initialized()
    if owns:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, device, owns)


def cleanup(ctx: Context) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def broadcast_object(obj, ctx: Context):
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(model: torch.nn.Module, ctx: Context) -> None:
    """Give every rank rank 0's BN running statistics (DDP syncs them only at the start of a forward),
    so all processes hold the model that rank 0 evaluates and saves."""
    if ctx.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
