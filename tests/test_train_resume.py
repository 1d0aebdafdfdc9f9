"""--resume continues exactly: an interrupted run, resumed, ends with the weights of an uninterrupted one."""

import csv

import pytest
import torch

from spikedistill.checkpoint import load_checkpoint
from spikedistill.train.config import config_from_dict
from spikedistill.train.loop import train

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny runs: threads cost more than they give


def tiny(**sections) -> dict:
    """A run of seconds: digits, a narrow small_cnn, 256 images, batch 32 → 8 steps per epoch."""
    cfg = {"model": {"name": "small_cnn", "spiking": True, "options": {"widths": [8, 16, 32]}},
           "loss": {"name": "tet"},
           "data": {"name": "digits", "subset": 256, "test_subset": 64, "augment": {"crop_padding": 1, "flip": False}},
           "optim": {"lr": 0.05, "epochs": 2, "batch_size": 32}, "timesteps": 2, "seed": 3, "device": "cpu",
           "log": {"progress": False, "tensorboard": False}}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


def rows(run_dir):
    with (run_dir / "metrics.csv").open() as f:
        return [{k: v for k, v in r.items() if "seconds" not in k} for r in csv.DictReader(f)]


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    # A distillation objective with its own randomness (CKDSNN's Gaussian logit noise) and a teacher,
    # so the test also covers RNG restoration and teacher handling.
    teacher = config_from_dict(tiny(model={"spiking": False, "options": {"widths": [8, 16, 32]}}, loss={"name": "ce"},
                                    optim={"epochs": 1}))
    train(teacher, tmp_path / "teacher", verbose=False)
    student = config_from_dict(tiny(loss={"name": "ckdsnn", "options": {"lam": 0.5}},
                                    teacher={"checkpoint": str(tmp_path / "teacher" / "best.pt")}))

    full = train(student, tmp_path / "full", verbose=False)
    first = train(student, tmp_path / "cut", stop_after_steps=5, verbose=False)          # mid epoch 1
    assert first["stopped"] and load_checkpoint(tmp_path / "cut" / "latest.pt")["step"] == 5
    second = train(student, tmp_path / "cut", resume=True, stop_after_steps=11, verbose=False)  # mid epoch 2
    assert second["stopped"]
    resumed = train(student, tmp_path / "cut", resume=True, verbose=False)

    assert full["step"] == resumed["step"] == 16
    expected, got = full["model"].state_dict(), resumed["model"].state_dict()
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert full["top1"] == resumed["top1"]
    assert rows(tmp_path / "full") == rows(tmp_path / "cut")  # one row per epoch, no duplicates


def test_resume_at_an_epoch_boundary(tmp_path):
    cfg = config_from_dict(tiny())
    full = train(cfg, tmp_path / "full", verbose=False)
    train(cfg, tmp_path / "cut", stop_after_steps=8, verbose=False)
    resumed = train(cfg, tmp_path / "cut", resume=True, verbose=False)
    for name, value in full["model"].state_dict().items():
        assert torch.equal(value, resumed["model"].state_dict()[name]), name


def test_optimizer_overrides_given_on_resume_take_effect(tmp_path, capsys, monkeypatch):
    """optim.weight_decay / optim.momentum on --resume replace the saved values; the momentum buffers stay."""
    cfg = tiny(optim={"weight_decay": 5e-4, "momentum": 0.9})
    train(config_from_dict(cfg), tmp_path / "run", stop_after_steps=3, verbose=False)
    saved = load_checkpoint(tmp_path / "run" / "latest.pt")["training"]["optimizer"]
    changed = config_from_dict(tiny(optim={"weight_decay": 1e-3, "momentum": 0.8, "epochs": 1}))
    captured = {}

    import spikedistill.train.run as run  # where the run's parts are built

    original = run.build_optimizer

    def keep(*args, **kwargs):
        captured["optimizer"] = original(*args, **kwargs)
        return captured["optimizer"]

    monkeypatch.setattr(run, "build_optimizer", keep)
    train(changed, tmp_path / "run", resume=True, stop_after_steps=4, verbose=True)
    groups = captured["optimizer"].param_groups
    assert {g["momentum"] for g in groups} == {0.8}
    assert sorted(g["weight_decay"] for g in groups) == [0.0, 1e-3]  # BN/bias group stays undecayed
    # The momentum buffers came from the checkpoint, not from zero.
    state = captured["optimizer"].state_dict()["state"]
    assert state.keys() == saved["state"].keys() and state
    printed = capsys.readouterr().out
    assert "optim.momentum 0.9 → 0.8" in printed and "optim.weight_decay 0.0005 → 0.001" in printed


def test_a_failure_writing_an_epochs_row_redoes_that_epoch_on_resume(tmp_path, monkeypatch):
    """The epoch's metrics.csv row is written before latest.pt moves on: a crash or a full disk at the row
    leaves latest.pt at the epoch before, so the resumed run redoes the epoch and the log ends with one
    whole row per epoch — the row is never lost behind a checkpoint that says the epoch is done."""
    from spikedistill.train import metrics_log

    cfg = config_from_dict(tiny())
    real = metrics_log.MetricsLog.write

    def disk_full_at_epoch_2(self, row):
        if row["epoch"] == 2:
            raise OSError(28, "No space left on device")
        real(self, row)

    monkeypatch.setattr(metrics_log.MetricsLog, "write", disk_full_at_epoch_2)
    with pytest.raises(OSError):
        train(cfg, tmp_path / "run", verbose=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["epoch"] == 1
    assert [r["epoch"] for r in rows(tmp_path / "run")] == ["1"]
    resumed = train(cfg, tmp_path / "run", resume=True, verbose=False)
    assert resumed["step"] == 16
    assert [r["epoch"] for r in rows(tmp_path / "run")] == ["1", "2"]
