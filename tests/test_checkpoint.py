"""`sd.load_checkpoint`: one object for every checkpoint `train` writes, and one rule for what a model is fed."""

from __future__ import annotations

import json

import pytest
import torch

import spikedistill as sd
from spikedistill.cli import main
from spikedistill.data import batches, load_dataset, stratified_indices
from spikedistill.train.config import config_from_dict
from spikedistill.train.loop import train

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"name": "small_cnn", "options": {"widths": [8, 16, 32]}}
QUIET = {"progress": False, "tensorboard": False}


def digits_run(tmp_path, name, spiking, **extra):
    cfg = {"model": {**SMALL, "spiking": spiking}, "data": {"name": "digits", "subset": 128, "test_subset": 64},
           "optim": {"epochs": 1, "batch_size": 32}, "device": "cpu", "log": QUIET, **extra}
    train(config_from_dict(cfg), tmp_path / name, verbose=False)
    return tmp_path / name / "best.pt"


def test_load_checkpoint_describes_snn_and_ann_checkpoints_and_builds_the_model(tmp_path):
    ann = sd.load_checkpoint(digits_run(tmp_path, "ann", False))
    snn = sd.load_checkpoint(digits_run(tmp_path, "snn", True, timesteps=3, max_timesteps=5))
    assert (ann.spiking, ann.max_timesteps, ann.input_shape, ann.frames,
            ann.num_classes) == (False, 1, (1, 8, 8), False, 10)
    assert (snn.spiking, snn.max_timesteps, snn.input_shape, snn.frames) == (True, 5, (1, 8, 8), False)
    assert snn.config["loss"]["name"] == "ce" and set(snn.metrics["top1"]) == {1, 2, 3, 4, 5}
    net = snn.model()
    assert not net.training  # ready to evaluate
    images = torch.rand(4, *snn.input_shape)
    assert net(images, timesteps=snn.max_timesteps).shape == (5, 4, 10)
    # The weights are the trained ones: the model scores what training measured for best.pt.
    test = load_dataset("digits", split="test")
    test = test.subset(stratified_indices(test.labels, 64))  # data.test_subset=64
    assert sd.fullrange_accuracy(net, batches(test, 32, shuffle=False),
                                 max_timesteps=5) == pytest.approx(snn.metrics["top1"])


def test_older_checkpoints_without_an_input_entry_fall_back_to_the_model_family(tmp_path):
    path = digits_run(tmp_path, "old", True)
    raw = torch.load(path, weights_only=True)
    del raw["input"]
    torch.save(raw, tmp_path / "old.pt")
    old = sd.load_checkpoint(tmp_path / "old.pt")
    assert old.input_shape == (1, 8, 8) and old.max_timesteps == 4 and old.frames is False


def test_an_ann_on_event_frames_scores_the_same_in_training_in_fullrange_accuracy_and_in_eval(
        tmp_path, data_root, capsys):
    """One model-input rule: an ANN on frames sees their time-mean everywhere (not frame 0, not T steps)."""
    if not (data_root / "nmnist_small" / "train.npz").is_file():
        pytest.skip("shared nmnist_small not found (set SPIKEDISTILL_DATA)")
    data = {"name": "nmnist", "root": str(data_root / "nmnist_small"), "subset": 64, "test_subset": 40,
            "options": {"timesteps": 3, "size": 16}}
    cfg = {"model": {**SMALL, "spiking": False}, "data": data, "optim": {"epochs": 1, "batch_size": 16},
           "device": "cpu", "log": QUIET, "timesteps": 1}
    trained = train(config_from_dict(cfg), tmp_path / "ann", verbose=False)
    ckpt = sd.load_checkpoint(tmp_path / "ann" / "best.pt")
    assert ckpt.frames and ckpt.input_shape == (2, 16, 16) and ckpt.max_timesteps == 1

    test = load_dataset("nmnist", data["root"], split="test", timesteps=3, size=16)
    test = test.subset(stratified_indices(test.labels, 40))  # data.test_subset=40, eval --limit 40
    loader = [(x.float(), y) for x, y in batches(test, 16, shuffle=False)]          # frames [B, T, C, H, W]
    api = sd.fullrange_accuracy(ckpt.model(), loader, max_timesteps=1)
    code = main(["eval", str(tmp_path / "ann" / "best.pt"), "--json", str(tmp_path / "eval.json"), "--no-plot",
                 "--device", "cpu", "--limit", "40"])
    assert code == 0, capsys.readouterr().err
    cli = json.loads((tmp_path / "eval.json").read_text())["top1"]
    assert api[1] == pytest.approx(trained["top1"][1]) and cli == pytest.approx([trained["top1"][1]])


def test_a_missing_teacher_is_not_trained_as_a_side_effect(tmp_path, capsys):
    code = main(["train", "--config", "configs/digits/twkd_small_cnn.yaml", "--out", str(tmp_path / "s"),
                 f"teacher.checkpoint={tmp_path}/teacher/best.pt", "optim.epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "--train-teacher" in err and "small_cnn (ANN)" in err
    assert not (tmp_path / "teacher").exists() and not (tmp_path / "s").exists()
