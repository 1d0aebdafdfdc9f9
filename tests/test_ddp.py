"""DistributedDataParallel on CPU: two gloo processes train one model; both end with identical weights."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from spikedistill.train.config import config_from_dict
from spikedistill.train.loop import train


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world_size: int, port: int, out: str, sync_bn: bool) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    cfg = config_from_dict({
        "model": {"name": "small_cnn", "spiking": True, "options": {"widths": [8, 16, 32]}},
        "loss": {"name": "tssd", "options": {"extra_timesteps": 1}},  # has its own parameters (weak head)
        "data": {"name": "digits", "subset": 128, "test_subset": 32, "augment": {"crop_padding": 1, "flip": False}},
        "optim": {"lr": 0.05, "epochs": 1, "batch_size": 32}, "timesteps": 2, "seed": 5, "device": "cpu",
        "distributed": {"sync_bn": sync_bn, "backend": "gloo"}, "log": {"progress": False, "tensorboard": False},
    })
    result = train(cfg, out, verbose=False)
    torch.save({k: v.clone() for k, v in result["model"].state_dict().items()}, f"{out}/rank{rank}.pt")


@pytest.mark.parametrize("sync_bn", [False])  # SyncBatchNorm is GPU-only in torch
def test_two_gloo_processes_end_with_identical_weights(tmp_path, sync_bn):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path), sync_bn), nprocs=2, join=True)
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    trainable = [k for k in rank0 if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    for name in rank0:  # DDP broadcasts buffers from rank 0 at every forward, so BN statistics agree too
        assert torch.allclose(rank0[name].float(), rank1[name].float()), name
    from spikedistill.models import create_model

    torch.manual_seed(5)
    init = create_model("small_cnn", spiking=True, num_classes=10, in_channels=1, widths=[8, 16, 32]).state_dict()
    assert any(not torch.equal(init[k], rank0[k]) for k in trainable), "training changed nothing"
    assert (tmp_path / "latest.pt").is_file() and (tmp_path / "metrics.csv").is_file()
