"""The loop's reproduction switches: best.pt chosen at the T a method reports (log.best_by_timesteps, said in
metrics.csv), and a teacher run in train mode as the CKDSNN code runs it (teacher.train_mode)."""

import csv

import pytest
import torch

from spikedistill.checkpoint import load_checkpoint
from spikedistill.train import run as run_module
from spikedistill.train.config import config_from_dict
from spikedistill.train.loop import train

pytestmark = pytest.mark.usefixtures("one_thread")

BASE = {"data": {"name": "digits", "subset": 64, "test_subset": 48, "augment": {"crop_padding": 1, "flip": False}},
        "optim": {"lr": 0.05, "batch_size": 32}, "device": "cpu", "seed": 3,
        "log": {"progress": False, "tensorboard": False}}


def tiny(**sections):
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(cfg)


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train(tiny(model={"name": "small_cnn", "spiking": False, "options": {"widths": [8, 16, 32]}},
               optim={"epochs": 1}, timesteps=1), out, verbose=False)
    return out / "best.pt"


def read_rows(out):
    with (out / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_best_pt_follows_top1_at_best_by_timesteps_and_metrics_say_which(tmp_path, teacher_checkpoint):
    student = {"name": "small_cnn", "spiking": True, "options": {"widths": [8, 16, 32]}}
    out = tmp_path / "student"
    train(tiny(model=student, loss={"name": "twce"}, optim={"epochs": 3}, timesteps=3,
               log={"best_by_timesteps": 1}), out, verbose=False)
    rows = read_rows(out)
    assert [r["best_by"] for r in rows] == ["test_top1_t1"] * 3
    at_1 = [float(r["test_top1_t1"]) for r in rows]
    best = load_checkpoint(out / "best.pt")
    # best.pt is the first epoch with the highest top-1 at k=1 (not at T_max = 3)
    assert best["epoch"] == at_1.index(max(at_1)) + 1
    assert best["metrics"]["best_top1"] == pytest.approx(max(at_1), abs=1e-4)
    assert best["metrics"]["best_by"] == "test_top1_t1"
    default = tmp_path / "default"
    train(tiny(model=student, loss={"name": "twce"}, optim={"epochs": 1}, timesteps=3), default, verbose=False)
    assert read_rows(default)[0]["best_by"] == "test_top1_t3"


@pytest.mark.parametrize("train_mode", [False, True])
def test_teacher_train_mode_uses_batch_statistics_and_updates_running_averages(tmp_path, teacher_checkpoint,
                                                                                 monkeypatch, train_mode):
    seen = {}
    original = run_module.load_teacher

    def capture(*args, **kwargs):
        seen["teacher"] = original(*args, **kwargs)
        return seen["teacher"]

    monkeypatch.setattr(run_module, "load_teacher", capture)
    train(tiny(model={"name": "small_cnn", "spiking": True, "options": {"widths": [8, 16, 32]}},
               loss={"name": "twkd"}, optim={"epochs": 1}, timesteps=2,
               teacher={"checkpoint": str(teacher_checkpoint), "train_mode": train_mode}), tmp_path, verbose=False)
    teacher = seen["teacher"]
    saved = load_checkpoint(teacher_checkpoint)["state_dict"]
    bn = [name for name in saved if name.endswith("running_mean")]
    moved = [not torch.equal(teacher.state_dict()[name], saved[name]) for name in bn]
    assert teacher.training is train_mode
    assert all(moved) if train_mode else not any(moved)  # two steps of batch statistics, or frozen
    assert not any(p.requires_grad for p in teacher.parameters())
