"""Bad input through every user-facing entry point: one clear line naming the problem and the fix.

The contract (SPEC.md): unknown names, wrong types and ranges, missing or wrong-shaped data, a
checkpoint from another model or class count, a corrupt checkpoint, a mismatched teacher and an
unwritable output directory each end in a :class:`SpikeDistillError` (library) or one ``error:`` line
and exit code 2 (CLI) — never a traceback. Each row names the words the message must contain: what
was wrong, and what to do about it.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import spikedistill as sd
from spikedistill.checkpoint import load_checkpoint, load_weights, model_spec, save_checkpoint
from spikedistill.cli import main
from spikedistill.data import load_dataset
from spikedistill.errors import SpikeDistillError
from spikedistill.train.config import load_config
from spikedistill.train.runlock import RunLock

WIDTHS = (8, 16, 16)  # a narrow small_cnn: every row below runs in milliseconds

TINY_RECIPE = """\
model: {name: small_cnn, spiking: true, options: {widths: [8, 16, 16]}}
loss: {name: ce}
data: {name: digits, subset: 64, test_subset: 32, augment: {crop_padding: 1, flip: false}}
optim: {name: sgd, lr: 0.05, epochs: 1, batch_size: 32}
timesteps: 2
seed: 0
device: cpu
log: {progress: false, tensorboard: false}
"""


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny runs: threads cost more than they give
_HELD = []  # run locks the table's "in use" rows meet


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Every bad file the table needs, written once: checkpoints, arrays, recipes, a regular file."""
    root = tmp_path_factory.mktemp("bad_input")
    torch.manual_seed(0)
    good = root / "good.pt"
    student = sd.create_model("small_cnn", spiking=True, num_classes=10, widths=WIDTHS)
    save_checkpoint(good, model=student, spec=model_spec("small_cnn", True, 10, in_channels=1, widths=WIDTHS))
    raw = good.read_bytes()
    (root / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (root / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "empty.pt").write_bytes(b"")
    torch.save(student.state_dict(), root / "bare_state_dict.pt")  # weights without the description
    ckpt = torch.load(good, weights_only=True)
    del ckpt["model"]
    torch.save(ckpt, root / "no_spec.pt")

    teacher5 = sd.create_model("small_cnn", spiking=False, num_classes=5, widths=WIDTHS)
    save_checkpoint(root / "teacher5.pt", model=teacher5,
                    spec=model_spec("small_cnn", False, 5, in_channels=1, widths=WIDTHS))

    np.savez(root / "two_channels.npz", x=np.zeros((4, 8, 8, 2), np.uint8), y=np.zeros(4, np.int64))
    np.savez(root / "short_labels.npz", x=np.zeros((4, 8, 8, 1), np.uint8), y=np.zeros(3, np.int64))
    np.savez(root / "float_images.npz", x=np.zeros((4, 8, 8, 1), np.float32), y=np.zeros(4, np.int64))
    np.savez(root / "no_labels.npz", x=np.zeros((4, 8, 8, 1), np.uint8))
    (root / "garbage.npz").write_bytes(b"this is not a numpy archive")
    np.savez(root / "labels_above_classes.npz", x=np.zeros((4, 8, 8, 1), np.uint8), y=np.array([0, 1, 2, 3]))
    cifar = root / "cifar_corrupt" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"):
        (cifar / name).write_bytes(b"{not a pickle}" * 8)
    for split in ("train", "test"):
        (root / "images" / split / "cat").mkdir(parents=True)
        (root / "images" / split / "cat" / "broken.png").write_bytes(b"not an image")

    archive = (root / "labels_above_classes.npz").read_bytes()
    (root / "truncated.npz").write_bytes(archive[: len(archive) // 2])
    (root / "cut_at_the_end.npz").write_bytes(archive[:-30])
    jpeg = root / "jpeg" / "cifar10"
    jpeg.mkdir(parents=True)
    np.savez(jpeg / "whole.npz", header=np.zeros(600, np.uint8), scan=np.zeros(4000, np.uint8),
             offsets=np.array([0, 2000, 4000]), y=np.array([0, 1]))
    whole = (jpeg / "whole.npz").read_bytes()
    (root / "damaged_jpeg").mkdir()
    (root / "damaged_jpeg" / "test_jpeg.npz").write_bytes(whole)  # every key there, the JPEG bytes all zero
    numpy_metrics = torch.load(good, weights_only=True)
    numpy_metrics["metrics"] = {"best_top1": np.float64(91.5)}
    torch.save(numpy_metrics, root / "numpy_scalar.pt")
    for split in ("train", "test"):
        (jpeg / f"{split}_jpeg.npz").write_bytes(whole[: len(whole) // 2])
    for name, value in (("nan.pt", float("nan")), ("inf.pt", float("inf"))):
        broken = sd.create_model("small_cnn", spiking=True, num_classes=10, widths=WIDTHS)
        with torch.no_grad():
            broken.fc.weight[0, 0] = value
        save_checkpoint(root / name, model=broken, spec=model_spec("small_cnn", True, 10, in_channels=1, widths=WIDTHS))

    (root / "binary.yaml").write_bytes(bytes(range(256)))
    (root / "list.yaml").write_text("- model\n- loss\n")
    (root / "scalar.yaml").write_text("3\n")
    (root / "duplicate_key.yaml").write_text(TINY_RECIPE + "seed: 7\n")  # seed: 0 above
    _HELD.append(RunLock(root / "locked"))
    _HELD[-1].acquire()  # held by this live process for the whole module
    (root / "recipe.yaml").write_text(TINY_RECIPE)
    _stopped_run(root / "stopped_run", training=None)
    _stopped_run(root / "damaged_run", training={"optimizer": 3, "schedule": "x"})
    (root / "a_file").write_text("a regular file: nothing can be created under it\n")
    return {p.name: p for p in root.iterdir()} | {"root": root}


def _stopped_run(folder: Path, training) -> None:
    """A run folder as the tiny recipe leaves it: config.yaml and a latest.pt (its ``training`` entry given)."""
    from spikedistill.train.config import dump_config, with_absolute_paths

    cfg = with_absolute_paths(load_config(None, [f"{k}={v}" for k, v in (
        ("model.name", "small_cnn"), ("model.options", "{widths: [8, 16, 16]}"), ("data.name", "digits"),
        ("data.subset", 64), ("data.test_subset", 32), ("optim.epochs", 2), ("optim.batch_size", 32),
        ("timesteps", 2), ("device", "cpu"), ("log.progress", "false"), ("log.tensorboard", "false"))]))
    torch.manual_seed(0)
    net = sd.create_model("small_cnn", spiking=True, num_classes=10, in_channels=1, widths=WIDTHS, timesteps=2)
    save_checkpoint(folder / "latest.pt", model=net,
                    spec=model_spec("small_cnn", True, 10, in_channels=1, widths=WIDTHS, timesteps=2),
                    config=cfg.to_dict(), epoch=1, step=2, training=training)
    (folder / "config.yaml").write_text(dump_config(cfg))


def expect_error(call, *words):
    """``call()`` raises SpikeDistillError whose one-line message contains every word (case-insensitive)."""
    with pytest.raises(SpikeDistillError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message, message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
    return message


# --- the library entry points ---------------------------------------------------------------------

LIBRARY = {
    # create_model: names, types, ranges
    "model_unknown_name": (lambda f: sd.create_model("resnet91"),
                           ("unknown model 'resnet91'", "did you mean 'resnet19'")),
    "model_name_not_a_string": (lambda f: sd.create_model(3), ("unknown model '3'", "known:")),
    "model_num_classes_string": (lambda f: sd.create_model("small_cnn", num_classes="10"),
                                 ("num_classes", "positive integer")),
    "model_num_classes_zero": (lambda f: sd.create_model("small_cnn", num_classes=0),
                               ("num_classes", "positive integer")),
    "model_unknown_option": (lambda f: sd.create_model("small_cnn", widht=3),
                             ("unknown option 'widht' for model 'small_cnn'", "valid:")),
    "model_negative_timesteps": (lambda f: sd.create_model("small_cnn", timesteps=-1),
                                 ("timesteps", "positive integer")),
    "model_timesteps_string": (lambda f: sd.create_model("small_cnn", timesteps="4"),
                               ("timesteps", "positive integer")),
    "model_zero_in_channels": (lambda f: sd.create_model("small_cnn", in_channels=0),
                               ("in_channels", "positive integer")),
    "model_decay_out_of_range": (lambda f: sd.create_model("small_cnn", decay=2.0), ("decay", "(0, 1]")),
    "model_unknown_surrogate": (lambda f: sd.create_model("small_cnn", surrogate="sigmod"),
                                ("unknown surrogate", "did you mean 'sigmoid'")),
    "model_neuron_option_on_ann": (lambda f: sd.create_model("small_cnn", spiking=False, decay=0.5),
                                   ("SNNs only", "drop them")),
    "forward_negative_timesteps": (lambda f: sd.create_model("small_cnn")(torch.zeros(2, 1, 8, 8), timesteps=-1),
                                   ("timesteps", "positive integer")),
    "forward_wrong_channels": (lambda f: sd.create_model("small_cnn")(torch.zeros(2, 3, 8, 8), timesteps=2),
                               ("expects 1 input channels", "in_channels=3")),
    "forward_wrong_rank": (lambda f: sd.create_model("small_cnn")(torch.zeros(8, 8), timesteps=2),
                           ("[B,C,H,W]", "(8, 8)")),
    # create_loss: names, types, ranges
    "loss_unknown_name": (lambda f: sd.create_loss("twdk"), ("unknown loss 'twdk'", "did you mean 'twkd'")),
    "loss_unknown_option": (lambda f: sd.create_loss("twkd", alpah=0.2),
                            ("unknown option 'alpah'", "did you mean 'alpha'")),
    "loss_negative_alpha": (lambda f: sd.create_loss("twkd", alpha=-0.1), ("alpha=-0.1", ">= 0")),
    "loss_zero_tau": (lambda f: sd.create_loss("twkd", tau=0), ("tau=0", "> 0")),
    "loss_negative_tau": (lambda f: sd.create_loss("skd", tau=-3.0), ("tau=-3.0", "> 0")),
    "loss_tau_string": (lambda f: sd.create_loss("skd", tau="3"), ("tau='3'", "use a number")),
    "loss_tau_nan": (lambda f: sd.create_loss("skd", tau=float("nan")), ("tau=nan", "use a number")),
    "loss_alpha_infinite": (lambda f: sd.create_loss("skd", alpha=float("inf")), ("alpha=inf", "use a number")),
    "loss_bad_choice": (lambda f: sd.create_loss("twkd", sd_target="median"), ("sd_target='median'", "'mean'")),
    "loss_needs_teacher": (lambda f: sd.create_loss("skd")(torch.zeros(4, 2, 10), torch.zeros(2, dtype=torch.long)),
                           ("needs teacher_logits", "teacher_logits=")),
    "loss_teacher_class_count_differs": (
        lambda f: sd.create_loss("skd")(torch.zeros(4, 2, 10), torch.zeros(2, dtype=torch.long),
                                        teacher_logits=torch.zeros(2, 100)),
        ("100", "10 classes", "teacher")),
    "loss_teacher_batch_differs": (
        lambda f: sd.create_loss("twkd")(torch.zeros(4, 2, 10), torch.zeros(2, dtype=torch.long),
                                         teacher_logits=torch.zeros(3, 10)),
        ("teacher", "batch")),
    "loss_student_logits_rank": (lambda f: sd.create_loss("ce")(torch.zeros(10), torch.zeros(1, dtype=torch.long)),
                                 ("[T, B, K]", "shape")),
    # config loading, key=value overrides
    "config_negative_timesteps": (lambda f: load_config(f["recipe.yaml"], ["timesteps=-1"]), ("'timesteps'", "> 0")),
    "config_lr_not_a_number": (lambda f: load_config(f["recipe.yaml"], ["optim.lr=fast"]),
                               ("'optim.lr' must be a number", "optim.lr=")),
    "config_unknown_key": (lambda f: load_config(f["recipe.yaml"], ["optim.lrr=0.1"]),
                           ("unknown config key 'optim.lrr'", "did you mean 'optim.lr'")),
    "config_override_without_equals": (lambda f: load_config(f["recipe.yaml"], ["timesteps"]),
                                       ("not key=value", "optim.lr=0.05")),
    "config_override_empty_key": (lambda f: load_config(f["recipe.yaml"], ["optim..lr=1"]),
                                  ("empty key", "optim.lr=0.05")),
    "config_override_into_a_value": (lambda f: load_config(f["recipe.yaml"], ["seed.x=1"]),
                                     ("'seed' is a value", "seed=")),
    "config_section_not_a_mapping": (lambda f: load_config(f["recipe.yaml"], ["optim=3"]), ("'optim'", "mapping")),
    "config_betas_not_numbers": (lambda f: load_config(f["recipe.yaml"], ["optim.betas=[a, b]"]),
                                 ("optim.betas", "numbers")),
    "config_unknown_choice": (lambda f: load_config(f["recipe.yaml"], ["optim.name=adam"]),
                              ("optim.name", "sgd, adamw")),
    "config_missing_recipe": (lambda f: load_config(f["root"] / "nope.yaml"), ("does not exist", "configs/")),
    # dataset constructors
    "dataset_unknown_name": (lambda f: load_dataset("cifar11"),
                             ("unknown dataset 'cifar11'", "did you mean 'cifar10'")),
    "dataset_unknown_split": (lambda f: load_dataset("digits", split="val"),
                              ("unknown split 'val'", "'train' or 'test'")),
    "dataset_unknown_option": (lambda f: load_dataset("digits", fraction=0.5), ("unknown option 'fraction'", "valid:")),
    "dataset_bad_test_fraction": (lambda f: load_dataset("digits", test_fraction=2.0),
                                  ("test_fraction", "between 0 and 1")),
    "dataset_cifar_missing": (lambda f: load_dataset("cifar10", f["root"] / "none"), ("not found", "download")),
    "dataset_imagefolder_missing": (lambda f: load_dataset("imagefolder", f["root"] / "none"),
                                    ("not found", "--data-root")),
    "dataset_npz_missing": (lambda f: load_dataset("npz", f["root"] / "none.npz"), ("not found", "--data-root")),
    "dataset_npz_two_channels": (lambda f: load_dataset("npz", f["two_channels.npz"]), ("[N, H, W, C]", "C in 1/3/4")),
    "dataset_npz_float_images": (lambda f: load_dataset("npz", f["float_images.npz"]), ("uint8", "float32")),
    "dataset_npz_label_count": (lambda f: load_dataset("npz", f["short_labels.npz"]), ("labels", "[4]")),
    "dataset_npz_no_labels": (lambda f: load_dataset("npz", f["no_labels.npz"]), ("'y'", "found")),
    "dataset_npz_not_an_archive": (lambda f: load_dataset("npz", f["garbage.npz"]), ("garbage.npz", "npz")),
    "dataset_npz_labels_above_num_classes": (
        lambda f: load_dataset("npz", f["labels_above_classes.npz"], num_classes=2),
        ("num_classes=2", "3")),
    "dataset_cifar_corrupt_batch": (lambda f: load_dataset("cifar10", f["cifar_corrupt"]),
                                    ("data_batch_1", "download")),
    "dataset_imagefolder_unreadable_image": (lambda f: load_dataset("imagefolder", f["images"], num_workers=0),
                                             ("broken.png", "remove")),
    "dataset_nmnist_missing": (lambda f: load_dataset("nmnist", f["root"] / "none"), ("not found", "root=")),
    "dataset_cifar10dvs_missing": (lambda f: load_dataset("cifar10dvs", f["root"] / "none"), ("not found", "root=")),
    "dataset_dvsgesture_missing": (lambda f: load_dataset("dvsgesture", f["root"] / "none"), ("not found", "root=")),
    # checkpoints
    "checkpoint_missing": (lambda f: load_checkpoint(f["root"] / "none.pt"), ("does not exist", ".pt")),
    "checkpoint_is_a_directory": (lambda f: load_checkpoint(f["root"]), ("is a directory", "best.pt")),
    "checkpoint_truncated": (lambda f: load_checkpoint(f["truncated.pt"]).model(),
                             ("corrupt or truncated", "another checkpoint")),
    "checkpoint_random_bytes": (lambda f: load_checkpoint(f["random.pt"]).model(),
                                ("corrupt or truncated", "another checkpoint")),
    "checkpoint_empty_file": (lambda f: load_checkpoint(f["empty.pt"]).model(),
                              ("corrupt or truncated", "another checkpoint")),
    "checkpoint_bare_state_dict": (lambda f: load_checkpoint(f["bare_state_dict.pt"]).model(),
                                   ("not a spikedistill checkpoint", "spikedistill train")),
    "checkpoint_without_model_description": (lambda f: load_checkpoint(f["no_spec.pt"]).model(),
                                             ("damaged", "another checkpoint")),
    "checkpoint_other_class_count": (
        lambda f: load_weights(sd.create_model("small_cnn", num_classes=5, widths=WIDTHS),
                               load_checkpoint(f["good.pt"])["state_dict"]),
        ("does not fit", "fc.weight", "num_classes")),
    "checkpoint_other_model": (
        lambda f: load_weights(sd.create_model("vggsnn", num_classes=10), load_checkpoint(f["good.pt"])["state_dict"]),
        ("does not fit", "missing", "model name")),
    "checkpoint_teacher_class_count": (
        lambda f: load_checkpoint(f["teacher5.pt"], role="teacher").model(num_classes=10),
        ("predicts 5 classes but 10", "same dataset")),
    # what still gave a traceback or a silently wrong number
    "config_seed_beyond_64_bits": (lambda f: load_config(f["recipe.yaml"], ["seed=1180591620717411303424"]),
                                   ("'seed'", "0..2**63-1")),
    "config_negative_seed": (lambda f: load_config(f["recipe.yaml"], ["seed=-1"]), ("'seed'", "seed=60")),
    "config_binary_recipe": (lambda f: load_config(f["binary.yaml"]),
                             ("binary.yaml", "not a text file", "YAML recipe")),
    "config_list_recipe_with_override": (lambda f: load_config(f["list.yaml"], ["optim.lr=0.1"]),
                                         ("list.yaml", "mapping of keys")),
    "config_scalar_recipe_with_override": (lambda f: load_config(f["scalar.yaml"], ["optim.lr=0.1"]),
                                           ("scalar.yaml", "mapping of keys")),
    "config_negative_warmup": (lambda f: load_config(f["recipe.yaml"], ["optim.warmup_epochs=-1"]),
                               ("optim.warmup_epochs", ">= 0")),
    "config_progress_every_zero": (lambda f: load_config(f["recipe.yaml"], ["log.progress_every_seconds=0"]),
                                   ("log.progress_every_seconds", "> 0")),
    "model_widths_not_numbers": (lambda f: sd.create_model("small_cnn", widths="abc"),
                                 ("cannot be built", "widths='abc'", "model.options")),
    "model_widths_too_few": (lambda f: sd.create_model("small_cnn", widths=[4]), ("cannot be built", "widths=[4]")),
    "dataset_npz_truncated": (lambda f: load_dataset("npz", f["truncated.npz"]), ("truncated.npz", "numpy.savez")),
    "dataset_npz_cut_at_the_end": (lambda f: load_dataset("npz", f["cut_at_the_end.npz"]),
                                   ("cut_at_the_end.npz", "numpy.savez")),
    "dataset_cifar10_jpeg_truncated": (lambda f: load_dataset("cifar10_jpeg", f["jpeg"], split="test"),
                                       ("test_jpeg.npz", "truncated or damaged", "copy it again")),
    "checkpoint_nan_weights": (lambda f: load_checkpoint(f["nan.pt"]).model(),
                               ("non-finite weights", "fc.weight", "earlier checkpoint")),
    "checkpoint_inf_weights": (lambda f: load_checkpoint(f["inf.pt"]).model(), ("non-finite weights", "optim.lr")),
    "fullrange_labels_above_classes": (
        lambda f: sd.fullrange_accuracy(_net(), [(_images(), torch.tensor([0, 1, 2, 12]))], 2),
        ("labels range over 0..12", "10 classes")),
    "fullrange_negative_labels": (
        lambda f: sd.fullrange_accuracy(_net(), [(_images(), torch.tensor([0, -1, 2, 3]))], 2),
        ("labels range over -1..3", "10 classes")),
    "fullrange_float_labels": (lambda f: sd.fullrange_accuracy(_net(), [(_images(), torch.zeros(4))], 2),
                               ("integer tensor of class indices", "float32", "y.long()")),
    "fullrange_integer_images": (
        lambda f: sd.fullrange_accuracy(_net(), [(_images().long(), torch.zeros(4, dtype=torch.long))], 2),
        ("inputs must be a float tensor", "int64")),
    "fullrange_loader_yields_triples": (
        lambda f: sd.fullrange_accuracy(_net(), [(_images(), torch.zeros(4, dtype=torch.long), "id")], 2),
        ("(inputs, labels) pairs", "3-tuple")),
    "fullrange_labels_of_another_batch": (
        lambda f: sd.fullrange_accuracy(_net(), [(_images(), torch.zeros(3, dtype=torch.long))], 2),
        ("labels of shape (3,)", "batch of 4")),
    "report_labels_above_classes": (lambda f: _report([(_images(), torch.tensor([0, 1, 2, 10]))]),
                                    ("fullrange_report", "0..10", "10 classes")),
    "report_loader_yields_triples": (lambda f: _report([(_images(), torch.zeros(4, dtype=torch.long), 0)]),
                                     ("fullrange_report", "pairs")),
    "loss_labels_above_classes": (lambda f: sd.create_loss("ce")(torch.zeros(2, 4, 10), torch.tensor([0, 1, 2, 12])),
                                  ("labels range over 0..12", "10 classes")),
    "loss_negative_labels": (lambda f: sd.create_loss("twkd")(torch.zeros(2, 4, 10), torch.tensor([0, -3, 2, 1]),
                                                              teacher_logits=torch.zeros(4, 10)),
                             ("labels range over -3..2",)),
    "loss_float_labels": (lambda f: sd.create_loss("tet")(torch.zeros(2, 4, 10), torch.zeros(4)),
                          ("integer tensor", "y.long()")),
    "loss_int32_labels": (
        lambda f: sd.create_loss("ce")(torch.zeros(2, 4, 10), torch.tensor([0, 1, 2, 3], dtype=torch.int32)),
        ("torch.int32", "y.long()")),
    "loss_numpy_logits": (lambda f: sd.create_loss("ce")(np.zeros((2, 4, 10), np.float32), torch.tensor([0, 1, 2, 3])),
                          ("logits must be a torch tensor", "ndarray", "torch.from_numpy")),
    "loss_numpy_teacher_logits": (lambda f: sd.create_loss("twkd")(torch.zeros(2, 4, 10), torch.tensor([0, 1, 2, 3]),
                                                                   teacher_logits=np.zeros((4, 10), np.float32)),
                                  ("teacher_logits must be a torch tensor", "ndarray")),
    "model_numpy_input": (lambda f: _net()(np.zeros((4, 1, 8, 8), np.float32), timesteps=2),
                          ("model input must be a torch tensor", "ndarray", "torch.from_numpy")),
    "model_uint8_input": (lambda f: _net()(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), timesteps=2),
                          ("float tensor", "torch.uint8", "x.float() / 255")),
    "model_timesteps_beyond_memory": (lambda f: _net()(torch.zeros(64, 1, 8, 8), timesteps=10**12),
                                      ("timesteps=1000000000000", "GiB", "fewer timesteps")),
    "model_spiking_a_string": (lambda f: sd.create_model("small_cnn", spiking="false"),
                               ("spiking", "True or False", "'false'")),
    "accuracy_nan_inputs": (
        lambda f: sd.fullrange_accuracy(_net(), [(torch.full((4, 1, 8, 8), float("nan")), torch.tensor([0, 1, 2, 3]))],
                                        max_timesteps=2),
        ("fullrange_accuracy", "NaN or inf", "normalisation")),
    "config_duplicate_key": (lambda f: load_config(f["duplicate_key.yaml"]),
                             ("duplicate_key.yaml", "'seed' is given twice", "line 9")),
    "checkpoint_with_a_numpy_scalar": (lambda f: load_checkpoint(f["numpy_scalar.pt"]),
                                       ("numpy_scalar.pt", "numpy scalar", "float(x)")),
    "dataset_damaged_jpeg": (
        lambda f: load_dataset("cifar10_jpeg", f["damaged_jpeg"], split="test", cache_dir=f["root"] / "cache"),
        ("test_jpeg.npz", "image 0 of 2 is a damaged JPEG", "copy the file again")),
    "load_weights_numpy_arrays": (
        lambda f: load_weights(_net(), {k: v.numpy() for k, v in _net().state_dict().items()}),
        ("of type ndarray, not a torch tensor", "torch.from_numpy")),
    "load_weights_int8_tensors": (lambda f: load_weights(_net(), {k: v.to(torch.int8) if v.is_floating_point() else v
                                                                  for k, v in _net().state_dict().items()}),
                                  ("torch.int8", "torch.float32", "dequantise")),
    "lif_integer_input": (lambda f: sd.LIF()(torch.ones(2, 4, 3, dtype=torch.int64)),
                          ("LIF input", "floating-point", "torch.int64", "x.float()")),
    "lif_boolean_input_with_batchnorm": (
        lambda f: sd.LIF()(torch.ones(2, 4, 3, 5, 5, dtype=torch.bool), bn=torch.nn.BatchNorm2d(3)),
        ("LIF input", "torch.bool", "x.float()")),
    "report_timesteps_beyond_memory": (lambda f: _report([(_images(), torch.tensor([0, 1, 2, 3]))], 10**9),
                                       ("fullrange_report", "max_timesteps=1000000000", "GiB", "fewer timesteps")),
    "accuracy_out_of_memory": (
        lambda f: sd.fullrange_accuracy(_OutOfMemory(), [(_images(), torch.tensor([0, 1, 2, 3]))], 2),
        ("fullrange_accuracy", "ran out of memory", "fewer timesteps or smaller batches")),
}


def _net():
    torch.manual_seed(0)
    return sd.create_model("small_cnn", spiking=True, num_classes=10, widths=WIDTHS)


def _images():
    return torch.randn(4, 1, 8, 8)


def _report(loader, max_timesteps=2):
    from spikedistill.evaluate import fullrange_report

    return fullrange_report(_net(), loader, max_timesteps)


class _OutOfMemory(torch.nn.Module):
    """A network whose forward runs out of GPU memory."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(1, 10)

    def forward(self, x, timesteps=None):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


@pytest.mark.parametrize("case", list(LIBRARY))
def test_library_entry_point_rejects_bad_input_with_one_line(case, files):
    call, words = LIBRARY[case]
    expect_error(lambda: call(files), *words)


# --- the command line: one `error:` line, exit code 2 -----------------------------------------------

def cli(argv, capsys) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip()]


CLI = {
    "train_unknown_model": (
        lambda f: ["train", "--config", f["recipe.yaml"], "model.name=resnet91", "--out", f["root"] / "o1"],
        ("unknown model 'resnet91'", "did you mean 'resnet19'")),
    "train_unknown_loss": (
        lambda f: ["train", "--config", f["recipe.yaml"], "loss.name=twdk", "--out", f["root"] / "o1"],
        ("unknown loss 'twdk'", "did you mean 'twkd'")),
    "train_loss_tau_zero": (lambda f: ["train", "--config", f["recipe.yaml"], "loss.name=twkd",
                                       "loss.options={alpha: 0, tau: 0}",
                                       "--out", f["root"] / "o1"], ("tau=0", "> 0")),
    "train_negative_timesteps": (
        lambda f: ["train", "--config", f["recipe.yaml"], "timesteps=-4", "--out", f["root"] / "o1"],
        ("'timesteps'", "> 0")),
    "train_wrong_config_key": (
        lambda f: ["train", "--config", f["recipe.yaml"], "optim.epoch=3", "--out", f["root"] / "o1"],
        ("unknown config key 'optim.epoch'", "did you mean 'optim.epochs'")),
    "train_missing_recipe": (lambda f: ["train", "--config", f["root"] / "none.yaml"], ("does not exist", "configs/")),
    "train_missing_dataset": (lambda f: ["train", "--config", f["recipe.yaml"], "data.name=cifar10",
                                         f"data.root={f['root'] / 'none'}",
                                         "--out", f["root"] / "o1"], ("not found", "download")),
    "train_unknown_device": (lambda f: ["train", "--config", f["recipe.yaml"], "device=tpu", "--out", f["root"] / "o1"],
                             ("unknown device 'tpu'", "cpu")),
    "train_batch_larger_than_data": (
        lambda f: ["train", "--config", f["recipe.yaml"], "optim.batch_size=4096", "--out", f["root"] / "o1"],
        ("no batch", "lower optim.batch_size")),
    "train_nesterov_without_momentum": (lambda f: ["train", "--config", f["recipe.yaml"], "optim.nesterov=true",
                                                   "optim.momentum=0",
                                                   "--out", f["root"] / "o1"], ("nesterov", "optim.momentum")),
    "train_adamw_beta_out_of_range": (lambda f: ["train", "--config", f["recipe.yaml"], "optim.name=adamw",
                                                 "optim.betas=[1.5, 0.9]",
                                                 "--out", f["root"] / "o1"], ("optim.betas", "[0, 1)")),
    "train_teacher_missing": (lambda f: ["train", "--config", f["recipe.yaml"], "loss.name=skd",
                                         f"teacher.checkpoint={f['root'] / 'none.pt'}", "--out", f["root"] / "o2"],
                              ("does not exist", ".pt")),
    "train_teacher_truncated": (lambda f: ["train", "--config", f["recipe.yaml"], "loss.name=skd",
                                           f"teacher.checkpoint={f['truncated.pt']}", "--out", f["root"] / "o2"],
                                ("corrupt or truncated", "another checkpoint")),
    "train_teacher_class_count_differs": (lambda f: ["train", "--config", f["recipe.yaml"], "loss.name=skd",
                                                     f"teacher.checkpoint={f['teacher5.pt']}", "--out",
                                                     f["root"] / "o3"],
                                          ("5 classes", "10", "same dataset")),
    "train_out_under_a_file": (lambda f: ["train", "--config", f["recipe.yaml"], "--out", f["a_file"] / "run"],
                               ("a_file", "not a directory", "--out")),
    "train_out_in_proc": (lambda f: ["train", "--config", f["recipe.yaml"], "--out", "/proc/spikedistill_run"],
                          ("/proc", "--out")),
    "demo_out_under_a_file": (lambda f: ["demo", "--quick", "--out", f["a_file"] / "demo"], ("a_file", "not a file")),
    "train_resume_nothing": (lambda f: ["train", "--resume", "--out", f["root"] / "empty_run"],
                             ("nothing to resume", "without --resume")),
    "eval_truncated_checkpoint": (lambda f: ["eval", f["truncated.pt"]],
                                  ("corrupt or truncated", "another checkpoint")),
    "eval_missing_checkpoint": (lambda f: ["eval", f["root"] / "none.pt"], ("does not exist", ".pt")),
    "eval_json_under_a_file": (
        lambda f: ["eval", f["good.pt"], "--json", f["a_file"] / "report.json", "--data", "digits", "--limit", "8"],
        ("a_file", "not a file")),
    "eval_teacher_class_count_differs": (lambda f: ["eval", f["good.pt"], "--teacher", f["teacher5.pt"], "--data",
                                                    "digits",
                                                    "--limit", "8", "--no-plot"], ("5 classes", "10", "same dataset")),
    "eval_bad_timesteps": (lambda f: ["eval", f["good.pt"], "--timesteps", "-3"], ("--timesteps", "1-6")),
    "export_random_bytes": (lambda f: ["export", f["random.pt"], "--out", f["root"] / "x.nir"],
                            ("corrupt or truncated", "another checkpoint")),
    "export_out_under_a_file": (
        lambda f: ["export", f["good.pt"], "--format", "torchscript", "--out", f["a_file"] / "sub" / "net.pt"],
        ("a_file", "not a file")),
    # tracebacks, silently wrong numbers, errors that came late
    "train_seed_beyond_64_bits": (
        lambda f: ["train", "--config", f["recipe.yaml"], "seed=1180591620717411303424", "--out", f["root"] / "o4"],
        ("'seed'", "0..2**63-1")),
    "train_model_options_of_the_wrong_kind": (lambda f: ["train", "--config", f["recipe.yaml"],
                                                         "model.options={widths: abc}",
                                                         "--out", f["root"] / "o4"],
                                                         ("cannot be built", "widths='abc'")),
    "train_binary_recipe": (lambda f: ["train", "--config", f["binary.yaml"], "--out", f["root"] / "o4"],
                            ("not a text file",)),
    "train_list_recipe_with_override": (
        lambda f: ["train", "--config", f["list.yaml"], "optim.lr=0.1", "--out", f["root"] / "o4"],
        ("mapping of keys",)),
    "train_scalar_recipe_with_override": (
        lambda f: ["train", "--config", f["scalar.yaml"], "optim.lr=0.1", "--out", f["root"] / "o4"],
        ("mapping of keys",)),
    # found early: with data that does not exist, the option's own error must come first (no data is read)
    "train_model_option_before_data": (lambda f: ["train", "--config", f["recipe.yaml"], "model.options={widht: 3}",
                                                  *NO_DATA(f),
                                                  "--out", f["root"] / "o4"], ("unknown option 'widht' for model",)),
    "train_loss_option_before_data": (lambda f: ["train", "--config", f["recipe.yaml"], "loss.name=twkd",
                                                 "loss.options={alpah: 1}",
                                                 *NO_DATA(f), "--out", f["root"] / "o4"], ("unknown option 'alpah'",)),
    "train_corrupt_teacher_before_data": (lambda f: ["train", "--config", f["recipe.yaml"], "loss.name=skd",
                                                     f"teacher.checkpoint={f['random.pt']}", *NO_DATA(f), "--out",
                                                     f["root"] / "o4"],
                                          ("corrupt or truncated",)),
    "train_nan_teacher_before_data": (lambda f: ["train", "--config", f["recipe.yaml"], "loss.name=skd",
                                                 f"teacher.checkpoint={f['nan.pt']}", *NO_DATA(f), "--out",
                                                 f["root"] / "o4"],
                                      ("non-finite weights",)),
    "train_missing_data_says_data_root": (
        lambda f: ["train", "--config", f["recipe.yaml"], *NO_DATA(f), "--out", f["root"] / "o4"],
        ("not found", "data.root=")),
    "train_missing_npz_says_data_root": (lambda f: ["train", "--config", f["recipe.yaml"], "data.name=npz",
                                                    f"data.root={f['root'] / 'none.npz'}", "--out", f["root"] / "o4"],
                                         ("not found", "data.root=FILE.npz")),
    "train_into_a_folder_in_use": (lambda f: ["train", "--config", f["recipe.yaml"], "--out", f["locked"]],
                                   ("in use by another training run", f"pid {os.getpid()}", "choose another --out")),
    "train_resume_a_folder_in_use": (lambda f: ["train", "--resume", "--out", f["locked"]], ("in use", "wait for it")),
    "eval_truncated_npz": (
        lambda f: ["eval", f["good.pt"], "--data", "npz", "--data-root", f["truncated.npz"], "--no-plot"],
        ("truncated.npz", "not a readable .npz")),
    "eval_truncated_test_jpeg": (
        lambda f: ["eval", f["good.pt"], "--data", "cifar10_jpeg", "--data-root", f["jpeg"], "--no-plot"],
        ("test_jpeg.npz", "truncated or damaged")),
    "eval_missing_data_says_data_root": (
        lambda f: ["eval", f["good.pt"], "--data", "cifar10", "--data-root", f["root"] / "none"],
        ("not found", "--data-root")),
    "eval_plot_format_before_data": (lambda f: ["eval", f["good.pt"], "--plot", f["root"] / "out.xyz", "--data",
                                                "cifar10",
                                                "--data-root", f["root"] / "none"], ("'xyz'", ".png", "--no-plot")),
    "eval_plot_without_extension": (
        lambda f: ["eval", f["good.pt"], "--plot", f["root"] / "picture", "--data", "digits"],
        ("extensionless", ".png")),
    "eval_early_exit_above_one_before_data": (lambda f: ["eval", f["good.pt"], "--early-exit", "2", "--data", "cifar10",
                                                         "--data-root", f["root"] / "none"],
                                                         ("--early-exit", "(0, 1]", "'2'")),
    "eval_early_exit_zero": (lambda f: ["eval", f["good.pt"], "--early-exit", "0.5,0", "--data", "digits"],
                             ("(0, 1]", "'0.5,0'")),
    "eval_early_exit_not_numbers": (lambda f: ["eval", f["good.pt"], "--early-exit", "high", "--data", "digits"],
                                    ("(0, 1]", "'high'")),
    "eval_json_unwritable_before_data": (lambda f: ["eval", f["good.pt"], "--json", "/proc/spikedistill/report.json",
                                                    "--data", "cifar10",
                                                    "--data-root", f["root"] / "none"],
                                                    ("/proc/spikedistill", "--json")),
    "eval_json_is_a_directory": (lambda f: ["eval", f["good.pt"], "--json", f["root"], "--data", "digits"],
                                 ("is a directory", "report.json")),
    "eval_half_a_range": (lambda f: ["eval", f["good.pt"], "--timesteps", "1-", "--data", "digits"],
                          ("--timesteps", "'1-'")),
    "eval_reversed_range": (lambda f: ["eval", f["good.pt"], "--timesteps", "4-2", "--data", "digits"],
                            ("first <= last", "'4-2'")),
    "eval_timesteps_beyond_memory": (
        lambda f: ["eval", f["good.pt"], "--timesteps", "1-100000000", "--data", "digits", "--no-plot"],
        ("T=100000000", "GiB", "largest T that fits", "--batch-size")),
    "eval_nan_checkpoint": (lambda f: ["eval", f["nan.pt"], "--data", "digits", "--no-plot"],
                            ("non-finite weights", "earlier checkpoint")),
    "eval_nan_teacher": (lambda f: ["eval", f["good.pt"], "--teacher", f["nan.pt"], "--data", "digits", "--no-plot"],
                         ("teacher", "non-finite weights")),
    "export_nan_checkpoint": (
        lambda f: ["export", f["nan.pt"], "--format", "torchscript", "--out", f["root"] / "nan_net.pt"],
        ("non-finite weights",)),
    "export_over_its_input": (lambda f: ["export", f["good.pt"], "--format", "nir", "--out", f["good.pt"]],
                              ("is the input file", "choose another --out")),
    "eval_json_over_its_input": (lambda f: ["eval", f["good.pt"], "--json", f["good.pt"], "--data", "digits"],
                                 ("--json", "is the input file")),
    "train_timesteps_beyond_memory": (
        lambda f: ["train", "--config", f["recipe.yaml"], "timesteps=100000000", "--out", f["root"] / "o4"],
        ("timesteps=100000000", "GiB", "largest T that fits", "optim.batch_size")),
    "train_resume_damaged_training_state": (lambda f: ["train", "--resume", "--out", f["damaged_run"]],
                                            ("damaged training state", "without --resume")),
    "train_resume_optimizer_changed": (lambda f: ["train", "--resume", "--out", f["stopped_run"], "optim.name=adamw"],
                                       ("--resume", "optim.name 'sgd' → 'adamw'", "another --out")),
    "train_resume_seed_changed": (lambda f: ["train", "--resume", "--out", f["stopped_run"], "seed=9"],
                                  ("--resume", "seed 60 → 9", "undo the change")),
    "train_resume_batch_changed": (lambda f: ["train", "--resume", "--out", f["stopped_run"], "optim.batch_size=16"],
                                   ("optim.batch_size 32 → 16",)),
    "train_resume_subset_changed": (lambda f: ["train", "--resume", "--out", f["stopped_run"], "data.subset=32"],
                                    ("data.subset 64 → 32",)),
    "train_augment_for_events_on_images": (
        lambda f: ["train", "--config", f["recipe.yaml"], "data.augment.rotate=10", "--out", f["root"] / "o6"],
        ("data.augment.rotate does not apply to digits", "images", "remove it")),
    "train_duplicate_yaml_key": (lambda f: ["train", "--config", f["duplicate_key.yaml"], "--out", f["root"] / "o7"],
                                 ("'seed' is given twice", "keep one")),
    "bench_unknown_device": (lambda f: ["bench", "--device", "tpu", "--smoke"], ("unknown device 'tpu'", "cpu")),
    "bench_unknown_compile_backend": (lambda f: ["bench", "--smoke", "--modes", "compile", "--compile-backend", "nope"],
                                      ("unknown --compile-backend 'nope'", "inductor")),
    "train_resume_dataset_changed": (lambda f: ["train", "--resume", "--out", f["stopped_run"], *NO_DATA(f)],
                                     ("data.name 'digits' → 'cifar10'",)),
}


def NO_DATA(f) -> list[str]:
    """Overrides naming a dataset that is not there: any error about it would mean the data came first."""
    return ["data.name=cifar10", f"data.root={f['root'] / 'none'}"]


@pytest.mark.parametrize("case", list(CLI))
def test_cli_rejects_bad_input_with_one_error_line(case, files, capsys):
    argv, words = CLI[case]
    code, lines = cli(argv(files), capsys)
    assert code == 2, lines
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    for word in words:
        assert word.lower() in errors[0].lower(), f"{word!r} not in {errors[0]!r}"


@pytest.mark.parametrize("argv, words", [
    (["eval", "x.pt", "--limit", "-1"], ("--limit", "positive integer", "eval --help")),
    (["eval", "x.pt", "--batch-size", "abc"], ("--batch-size", "'abc'")),
    (["trian"], ("invalid choice: 'trian'", "'train'", "spikedistill --help")),
    ([], ("required", "COMMAND")),
    (["export", "x.pt"], ("--out", "required")),
])
def test_usage_mistakes_are_one_error_line_without_a_usage_block(argv, words, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


def test_nothing_is_left_behind_by_a_rejected_run(files, capsys):
    """A recipe that fails validation creates no run directory (a later --resume must not find one)."""
    out = files["root"] / "rejected"
    code, _ = cli(["train", "--config", files["recipe.yaml"], "optim.lr=-1", "--out", out], capsys)
    assert code == 2 and not out.exists()


# --- configs are data -------------------------------------------------------------------------------

def test_yaml_python_tags_are_rejected_and_execute_nothing(tmp_path, capsys):
    marker = tmp_path / "executed"
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(TINY_RECIPE + f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    message = expect_error(lambda: load_config(recipe), "evil.yaml", "tag", "plain data")
    assert "python/object/apply" in message
    code, lines = cli(["train", "--config", recipe, "--out", tmp_path / "run"], capsys)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_yaml_tag_in_an_override_is_rejected_and_executes_nothing(tmp_path):
    marker = tmp_path / "executed"
    message = expect_error(lambda: load_config(None, [f"seed=!!python/object/apply:os.system ['touch {marker}']"]),
                           "seed", "plain data")
    assert "the YAML tag '!!python/object/apply:os.system'" in message
    assert not marker.exists()


def test_dotted_import_path_as_a_name_is_only_an_unknown_name(tmp_path, capsys):
    """``model.name: os.system`` (or a loss/dataset named by import path) is looked up in the registry,
    never imported: the run stops with 'unknown model', and the module named is not even loaded."""
    recipe = tmp_path / "dotted.yaml"
    recipe.write_text(TINY_RECIPE)
    for override, words in {"model.name=os.system": "unknown model 'os.system'",
                            "loss.name=subprocess.call": "unknown loss 'subprocess.call'",
                            "data.name=antigravity.fly": "unknown dataset 'antigravity.fly'"}.items():
        cfg = load_config(recipe, [override])  # a name is only a string while loading
        assert override.split("=")[1] in (cfg.model.name, cfg.loss.name, cfg.data.name)
        code, lines = cli(["train", "--config", recipe, override, "--out", tmp_path / "run"], capsys)
        assert code == 2 and len(lines) == 1 and words in lines[0], lines
    assert "antigravity" not in sys.modules


def test_the_troubleshooting_table_lists_every_case_and_counts_them_all_clean():
    """docs/troubleshooting.md shows every row of LIBRARY and CLI with its message; its count line adds up."""
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text()
    missing = [name for name in [*LIBRARY, *CLI] if f"| `{name}` |" not in doc]
    assert not missing, f"add these rows to docs/troubleshooting.md: {missing}"
    rows = re.findall(r"^\| (\d+) \| `", doc, flags=re.M)
    assert [int(n) for n in rows] == list(range(1, len(rows) + 1))
    assert f"{len(rows)} kinds tried: {len(rows)} clean." in doc


# --- the environment: distributed variables, the terminal's encoding --------------------------------

@pytest.mark.parametrize("env, words", [
    ({"WORLD_SIZE": "abc"}, ("WORLD_SIZE='abc'", "torchrun")),
    ({"WORLD_SIZE": "2"}, ("MASTER_ADDR, MASTER_PORT, RANK are not set", "torchrun --nproc_per_node")),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1", "backend": "nccl"},
     ("distributed.backend=nccl needs CUDA", "gloo")),
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "free"},
     ("2 training processes did not meet", "torchrun")),
])
def test_distributed_environment_mistakes_are_one_error_line(env, words, files, monkeypatch, capsys):
    import spikedistill.train.distributed as distributed

    monkeypatch.setattr(distributed, "RENDEZVOUS_SECONDS", 1)  # processes that never come: a short wait
    env = dict(env)
    backend = env.pop("backend", None)
    if env.get("MASTER_PORT") == "free":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            env["MASTER_PORT"] = str(probe.getsockname()[1])
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    overrides = [f"distributed.backend={backend}"] if backend else []
    code, lines = cli(["train", "--config", files["recipe.yaml"], *overrides, "--out", files["root"] / "o5"], capsys)
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and lines[-1] == errors[0], lines
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"


def test_a_terminal_that_cannot_show_unicode_gets_question_marks_not_a_traceback(files, monkeypatch, tmp_path):
    import io

    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")  # PYTHONIOENCODING=ascii
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["train", "--config", str(files["recipe.yaml"]), "--out", str(tmp_path / "run")]) == 0
    out.flush()
    printed = out.buffer.getvalue().decode("ascii")
    assert "small_cnn (SNN, T=2) ? loss ce" in printed and "done: best test top-1" in printed


def test_a_good_checkpoint_read_for_a_missing_gpu_is_not_called_corrupt(files):
    if torch.cuda.is_available():
        assert load_checkpoint(files["good.pt"], map_location="cuda").name == "small_cnn"
    else:
        message = expect_error(lambda: load_checkpoint(files["good.pt"], map_location="cuda"),
                               "good.pt", "no CUDA GPU", "map_location='cpu'")
        assert "corrupt" not in message


def test_a_relative_teacher_recipe_names_a_file_beside_the_recipe_from_any_directory(tmp_path, monkeypatch):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "teacher.yaml").write_text("model: {name: small_cnn, spiking: false}\n")
    (tmp_path / "recipes" / "student.yaml").write_text("loss: {name: twkd}\nteacher: {checkpoint: t/best.pt, recipe: "
                                                       "teacher.yaml}\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_config("../recipes/student.yaml").teacher.recipe == str(tmp_path / "recipes" / "teacher.yaml")


def test_an_os_error_without_a_path_is_not_blamed_on_a_file():
    from spikedistill.errors import os_error_message

    message = os_error_message(OSError("cannot identify image file <_io.BytesIO object>"))
    assert "a file" not in message and "cannot identify image file" in message



def test_each_network_is_fed_in_its_own_precision_wherever_inputs_enter(tmp_path):
    """float64 data (``torch.from_numpy`` of a float64 array) on float32 weights, or float32 data on a
    float64 network, is cast to the network's precision in evaluation, in the training step and in
    ``sd.fit`` — the numbers of the matching precision, not a torch dtype error."""
    from torch.utils.data import TensorDataset

    from spikedistill.train.task import DistillationTask

    x, y = torch.randn(16, 1, 8, 8, dtype=torch.float64), torch.arange(16) % 10
    expected = sd.fullrange_accuracy(_net(), [(x.float(), y)], 2)
    assert sd.fullrange_accuracy(_net(), [(x, y)], 2) == expected
    assert _report([(x, y)])["top1"] == list(expected.values())
    wide = _net().double()
    assert sd.fullrange_accuracy(wide, [(x.float(), y)], 2) == sd.fullrange_accuracy(wide, [(x.float().double(), y)], 2)
    teacher = sd.create_model("small_cnn", spiking=False, num_classes=10, widths=WIDTHS).double()
    task = DistillationTask(_net(), sd.create_loss("skd"), teacher, train_timesteps=2)
    logits, loss = task(x[:4], y[:4])
    assert logits.dtype == torch.float32 and logits.shape == (2, 4, 10) and torch.isfinite(loss.total)
    result = sd.fit(_net().double(), TensorDataset(x, y), loss="ce", epochs=1, batch_size=8, out=tmp_path / "fit",
                    device="cpu", verbose=False)
    assert result["step"] == 2 and next(result["model"].parameters()).dtype == torch.float64
