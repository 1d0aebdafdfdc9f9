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


RENDEZVOUS_SECONDS = 300  # how long processes started by hand (not by torchrun) wait for each other


def setup(device_name: str, backend: str | None = None) -> Context:
    world_size = _env_int("WORLD_SIZE", "1")
    local_rank = _env_int("LOCAL_RANK", os.environ.get("RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size <= 1:
        return Context(device=device)
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise SpikeDistillError(f"distributed.backend=nccl needs CUDA devices, and this run is on {device}; "
                                "set distributed.backend=gloo (or leave it unset) for CPU processes")
    owns = not dist.is_initialized()
    if owns:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        _init_process_group(backend, world_size)
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, device, owns)


def _env_int(name: str, default: str) -> int:
    value = os.environ.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise SpikeDistillError(f"the environment variable {name}={value!r} is not a whole number; launch with "
                                f"torchrun (which sets it), or unset {name} to train in one process") from None


def _init_process_group(backend: str, world_size: int) -> None:
    """Join the group; processes started by hand meet within ``RENDEZVOUS_SECONDS`` or stop with one line
    (torchrun runs its own rendezvous, with its own timeout)."""
    from datetime import timedelta

    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT", "RANK") if name not in os.environ]
    if missing:
        raise SpikeDistillError(f"WORLD_SIZE={world_size} but {', '.join(missing)} "
                                f"{'is' if len(missing) == 1 else 'are'} not set; launch the processes with torchrun "
                                "--nproc_per_node=N -m spikedistill train ..., or unset WORLD_SIZE")
    rank, address, port = _env_int("RANK", "0"), os.environ["MASTER_ADDR"], _env_int("MASTER_PORT", "0")
    try:
        if "TORCHELASTIC_RUN_ID" in os.environ:  # torchrun: its agent holds the store
            dist.init_process_group(backend)
            return
        print(f"rank {rank}: waiting up to {RENDEZVOUS_SECONDS} s for {world_size} processes at {address}:{port}",
              flush=True)
        store = dist.TCPStore(address, port, world_size, is_master=rank == 0,
                              timeout=timedelta(seconds=RENDEZVOUS_SECONDS), wait_for_workers=True)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)
    # torch's DistStoreError (a timeout) and DistNetworkError are RuntimeErrors
    except (RuntimeError, ValueError) as exc:
        raise SpikeDistillError(f"the {world_size} training processes did not meet at {address}:{port} "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:100]}); start all of them "
                                "(torchrun --nproc_per_node=N starts them together), or unset WORLD_SIZE") from None


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


def gather_objects(obj, ctx: Context) -> list:
    """Every process's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(model: torch.nn.Module, ctx: Context) -> None:
    """Give every rank rank 0's BN running statistics (DDP syncs them only at the start of a forward),
    so all processes hold the model that rank 0 evaluates and saves."""
    if ctx.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
