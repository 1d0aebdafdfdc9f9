"""One precision decision: the per-epoch test that picks best.pt and `spikedistill eval best.pt` run in the
same precision, so they score the same top-1 (bf16 autocast on a GPU, fp32 elsewhere)."""

import contextlib
import json

import pytest
import torch

import spikedistill.device as device_module
from spikedistill.checkpoint import load_checkpoint
from spikedistill.cli import main
from spikedistill.device import autocast, use_bf16
from spikedistill.train.config import config_from_dict
from spikedistill.train.loop import train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bf16_autocast_only_on_a_gpu_and_only_when_the_recipe_asks():
    assert use_bf16("cuda", "bf16") and use_bf16(torch.device("cuda", 1), "bf16")
    assert not use_bf16("cuda", "fp32")
    assert not use_bf16("cpu", "bf16") and not use_bf16(torch.device("cpu"), "fp32")
    assert isinstance(autocast("cpu", "bf16"), contextlib.nullcontext)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_the_top1_that_chose_best_pt_is_what_eval_prints_in_the_recipes_precision(precision, tmp_path, monkeypatch):
    """bf16 is made to run on the CPU here (the GPU's decision, on a machine without one): the per-epoch
    test and eval both ask the one decision, with the recipe's precision, and agree to the last sample."""
    asked = []

    def decide(device, wanted="bf16"):
        asked.append(wanted)
        return wanted == "bf16"

    monkeypatch.setattr(device_module, "use_bf16", decide)
    cfg = config_from_dict({"model": {"name": "small_cnn", "options": {"widths": [4, 8, 8]}}, "loss": {"name": "twce"},
                            "data": {"name": "digits", "subset": 64, "augment": {"crop_padding": 1, "flip": False}},
                            "optim": {"epochs": 1, "batch_size": 32, "lr": 0.05}, "timesteps": 2, "device": "cpu",
                            "precision": precision, "seed": 1, "log": {"progress": False, "tensorboard": False}})
    out = tmp_path / "run"
    train(cfg, out, verbose=False)
    trained_in = list(asked)
    assert trained_in and set(trained_in) == {precision}  # the steps and the per-epoch test
    asked.clear()
    report_file = tmp_path / "report.json"
    assert main(["eval", str(out / "best.pt"), "--json", str(report_file), "--no-plot", "--device", "cpu",
                 "--batch-size", "32"]) == 0
    assert precision in asked and set(asked) == {precision}
    chosen_by = load_checkpoint(out / "best.pt")["metrics"]["top1"]
    printed = json.loads(report_file.read_text())
    assert printed["top1"] == [chosen_by[k] for k in printed["timesteps"]]
