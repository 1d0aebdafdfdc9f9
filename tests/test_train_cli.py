"""`spikedistill train` end to end through the CLI, and its user errors."""

import csv
import json

import pytest
import torch

from spikedistill.checkpoint import load_checkpoint
from spikedistill.cli import main
from spikedistill.train.optim import param_groups

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny runs: threads cost more than they give


FAST = ["data.subset=128", "data.test_subset=64", "optim.epochs=1", "optim.batch_size=32", "log.progress=false",
        "model.options.widths=[8,16,32]"]


def test_cli_trains_teacher_from_recipe_then_student_and_checkpoints_load(tmp_path, capsys):
    teacher_out = tmp_path / "teacher"
    student_out = tmp_path / "student"
    # The student recipe names the teacher's checkpoint and recipe: asked to, the teacher is trained first.
    code = main(["train", "--config", "configs/digits/twkd_small_cnn.yaml", "--out", str(student_out), *FAST,
                 f"teacher.checkpoint={teacher_out}/best.pt", "timesteps=2", "--train-teacher"])
    assert code == 0, capsys.readouterr().err
    for run in (teacher_out, student_out):
        assert {"config.yaml", "metrics.csv", "latest.pt", "best.pt"} <= {p.name for p in run.iterdir()}
    with (student_out / "metrics.csv").open() as f:
        row = next(csv.DictReader(f))
    for column in ("train_loss", "train_ce", "train_kl", "train_sd", "train_top1", "test_top1_t1", "test_top1_t2",
                   "lr", "seconds", "teacher_seconds"):
        assert column in row, column
    assert float(row["teacher_seconds"]) > 0
    ckpt = load_checkpoint(student_out / "best.pt")
    model = ckpt.model()
    assert model(torch.zeros(3, 1, 8, 8), timesteps=5).shape == (5, 3, 10)  # any T after training
    assert ckpt["config"]["loss"]["name"] == "twkd" and ckpt["training"] is None
    assert load_checkpoint(student_out / "latest.pt")["training"]["optimizer"]["state"]
    teacher = load_checkpoint(teacher_out / "best.pt").model()
    assert not teacher.spiking
    # The teacher was frozen: its weights in the teacher run are what the student saw.
    again = main(["train", "--config", "configs/digits/twkd_small_cnn.yaml", "--out", str(student_out), *FAST])
    assert again == 2 and "--resume" in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    cases = [
        (["train", "--config", "configs/digits/twkd_small_cnn.yaml", "--out", str(tmp_path / "a"), "optim.lrate=1"],
         "did you mean 'optim.lr'"),
        (["train", "--config", "configs/digits/skd_small_cnn.yaml", "--out", str(tmp_path / "b"),
          "teacher.checkpoint=null",
          "teacher.recipe=null", *FAST], "needs a teacher"),
        (["train", "--config", "nope.yaml"], "does not exist"),
        (["train", "--resume", "--out", str(tmp_path / "empty")], "nothing to resume"),
        (["train", "--config", "configs/digits/teacher_small_cnn.yaml", "--out", str(tmp_path / "c"),
          "model.name=resnet91",
          *FAST[:-1]], "did you mean"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_weight_decay_applies_to_conv_and_linear_weights_only():
    from spikedistill import create_model

    model = create_model("resnet19", spiking=True, num_classes=10)
    decay, no_decay = param_groups([model], 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 4 or p.dim() == 2 for p in decay["params"])      # conv kernels, FC matrices
    assert all(p.dim() == 1 for p in no_decay["params"])                   # BN affine, biases
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    everything, nothing = param_groups([model], 1e-4, decay_all=True)
    assert len(everything["params"]) == len(list(model.parameters())) and not nothing["params"]


def test_resnet19_recipe_smoke_on_shared_cifar10(tmp_path, data_root, decode_cache, capsys):
    """The real recipe through the CLI: ResNet-19 on 32 shared CIFAR-10 images, 1 epoch at T=2, AutoAugment on
    (a 512-image run takes minutes on 2 cores; this is its CI-sized twin)."""
    if not (data_root / "cifar10" / "train_jpeg.npz").is_file():
        pytest.skip("shared CIFAR-10 (cifar10/train_jpeg.npz) not found")
    torch.set_num_threads(2)  # a real network: use both cores (the module's fixture restores the count)
    out = tmp_path / "run"
    code = main(["train", "--config", "configs/cifar10/tet_resnet19.yaml", "--out", str(out), "data.name=cifar10_jpeg",
                 "data.subset=32", "data.test_subset=16", "optim.epochs=1", "optim.batch_size=16", "timesteps=2",
                 "max_timesteps=2", "log.progress=false"])
    assert code == 0, capsys.readouterr().err
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["model"]["name"] == "resnet19" and set(ckpt["metrics"]["top1"]) == {1, 2}
    # ... and `spikedistill eval` reads the checkpoint, its data from the recipe the checkpoint carries.
    report_file = tmp_path / "eval" / "report.json"
    assert main(["eval", str(out / "best.pt"), "--timesteps", "1-2", "--limit", "16", "--json", str(report_file),
                 "--data-root", str(data_root / "cifar10"), "--no-plot"]) == 0, capsys.readouterr().err
    report = json.loads(report_file.read_text())
    assert report["timesteps"] == [1, 2] and all(0 <= top1 <= 100 for top1 in report["top1"])
    assert report["energy_mj"][0] < report["energy_mj"][1]


def test_event_frames_train_an_snn_student_and_a_time_mean_ann_teacher(tmp_path, data_root):
    """Event data [B, T, 2, H, W]: the SNN takes the frames time-first, the ANN teacher their time-mean."""
    if not (data_root / "nmnist_small" / "train.npz").is_file():
        pytest.skip("shared nmnist_small not found")
    from spikedistill.train.config import config_from_dict
    from spikedistill.train.loop import train

    base = {"data": {"name": "nmnist", "subset": 64, "test_subset": 32, "options": {"timesteps": 3, "size": 16},
                     "augment": {"flip": True, "roll": 2, "cutout": 4}},
            "optim": {"epochs": 1, "batch_size": 16}, "device": "cpu", "log": {"progress": False, "tensorboard": False}}
    teacher = train(config_from_dict({**base, "model": {"name": "small_cnn", "spiking": False,
                                                        "options": {"widths": [8, 16, 32]}},
                                      "timesteps": 1}), tmp_path / "t", verbose=False)
    student = train(config_from_dict({**base, "model": {"name": "small_cnn", "spiking": True,
                                                        "options": {"widths": [8, 16, 32]}},
                                      "loss": {"name": "twkd"}, "timesteps": 3,
                                      "teacher": {"checkpoint": str(tmp_path / "t" / "best.pt")}}),
                    tmp_path / "s", verbose=False)
    assert list(teacher["top1"]) == [1] and list(student["top1"]) == [1, 2, 3]
    model = load_checkpoint(tmp_path / "s" / "best.pt").model()
    assert model.in_channels == 2
