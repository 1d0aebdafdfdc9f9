"""The ImageNet recipe end to end through torchrun: two gloo processes on the CPU train it on a tiny class-folder
ImageNet of JPEGs (written here), the preact ResNet-34 student against the recipe's timm teacher — timm's place
taken by the stand-in with timm's ResNet layout (no torchvision built for CI's CPU torch imports, so real timm
cannot), its weights loaded from a state_dict file as the recipe's teacher.weights says."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import torch

from test_recipes import write_class_folders

ROOT = Path(__file__).resolve().parents[1]


def test_imagenet_recipe_trains_through_torchrun_with_two_gloo_processes(tmp_path):
    data = write_class_folders(tmp_path / "imagenet", classes=2, per_class=4)
    stand_in = tmp_path / "stand_in" / "timm"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("from timm_standin import create_model  # noqa: F401\n")
    import timm_standin

    weights = tmp_path / "resnet34.pth"
    torch.save(timm_standin.create_model("resnet34", num_classes=2).state_dict(), weights)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), str(ROOT / "tests"), str(stand_in.parent), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "spikedistill", "train", "--config", "configs/imagenet/twkd_preact_resnet34.yaml", "--out",
               str(out),
               f"data.root={data}", "data.options.size=16", "data.options.resize=20",
               "data.options.train_random_resized_crop=16",
               "data.options.num_workers=0", f"teacher.weights={weights}",
               "optim.batch_size=4", "optim.epochs=2", "device=cpu", "distributed.backend=gloo",
               "distributed.sync_bn=false",
               "log.progress=false", "log.tensorboard=false"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "2 process(es)" in done.stdout and "best.pt by test_top1_t4" in done.stdout
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    # 8 training images, a global batch of 4 (2 per process): 2 steps an epoch, 2 epochs
    assert [int(r["step"]) for r in rows] == [2, 4] and all(float(r["teacher_seconds"]) > 0 for r in rows)
    assert {f"test_top1_t{k}" for k in range(1, 5)} <= set(rows[0]) and rows[0]["best_by"] == "test_top1_t4"
    from spikedistill.checkpoint import load_checkpoint

    best = load_checkpoint(out / "best.pt")
    assert best["model"]["name"] == "preact_resnet34" and best["config"]["loss"]["options"]["tau"] == 1.0
    model = best.model()
    assert model(torch.zeros(1, 3, 16, 16), timesteps=4).shape == (4, 1, 2)
