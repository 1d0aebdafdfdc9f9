"""A recipe's data.mean/data.std replace the dataset's statistics in training and in evaluation, and the
AutoAugment setting names a policy; both are checked in one line when wrong."""

import argparse

import numpy as np
import pytest
import torch

from spikedistill.data import load_dataset
from spikedistill.data.dataset import with_normalisation
from spikedistill.errors import SpikeDistillError
from spikedistill.train.config import load_config

CIFAR10_MEAN, CIFAR10_STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]


@pytest.fixture
def tiny_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8), y_train=np.arange(8) % 2,
             x_test=rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8), y_test=np.arange(4) % 2)
    return path


@pytest.mark.parametrize("overrides, message", [
    (["data.mean=[0.5, 0.5, 0.5]"], "data.mean and data.std go together"),
    (["data.mean=[0.5, 0.5]", "data.std=[0.2, 0.2, 0.2]"], "one number per channel"),
    (["data.mean=[0.5, true, 0.5]", "data.std=[0.2, 0.2, 0.2]"], "one number per channel"),
    (["data.mean=[0.5, 0.5, 0.5]", "data.std=[0.2, 0.0, 0.2]"], "data.std must be positive"),
    (["data.augment.autoaugment=fr_cifar1"], "did you mean 'fr_cifar10'"),
    (["data.augment.autoaugment=3"], "data.augment.autoaugment"),
])
def test_wrong_normalisation_or_policy_is_one_line(overrides, message):
    with pytest.raises(SpikeDistillError, match=message) as error:
        load_config(None, overrides)
    assert "\n" not in str(error.value)


def test_autoaugment_takes_true_false_or_a_policy_name():
    assert load_config(None, ["data.augment.autoaugment=true"]).data.augment.autoaugment is True
    assert load_config(None, ["data.augment.autoaugment=false"]).data.augment.autoaugment is False
    cfg = load_config(None, ["data.augment.autoaugment=torchvision_cifar10"])
    assert cfg.data.augment.autoaugment == "torchvision_cifar10"


def test_ckdsnn_cifar100_recipes_normalise_with_cifar10_statistics():
    for recipe in ("ckdsnn_ckdsnn_resnet19", "teacher_ckdsnn_resnet19"):
        cfg = load_config(f"configs/cifar100/{recipe}.yaml")
        assert (cfg.data.mean, cfg.data.std) == (CIFAR10_MEAN, CIFAR10_STD)
        assert cfg.data.augment.autoaugment == "torchvision_cifar10"
    assert load_config("configs/cifar100/twkd_resnet19.yaml").data.mean is None


def test_with_normalisation_replaces_the_statistics_and_shares_the_images(tiny_npz):
    dataset = load_dataset("npz", tiny_npz)
    renormalised = with_normalisation(dataset, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert renormalised.mean == (0.0, 0.0, 0.0) and renormalised.std == (1.0, 1.0, 1.0)
    assert renormalised.images is dataset.images and dataset.mean != renormalised.mean
    assert with_normalisation(dataset, None, None) is dataset
    with pytest.raises(SpikeDistillError, match="one value per channel of 'tiny' \\(3\\)"):
        with_normalisation(dataset, [0.5], [0.5])


def test_training_and_evaluation_use_the_recipes_statistics(tiny_npz, tmp_path):
    from spikedistill.evaluate.cli import build_loader
    from spikedistill.train.distributed import Context
    from spikedistill.train.run import build_run

    overrides = ["data.name=npz", f"data.root={tiny_npz}", "data.options={num_classes: 2}", "model.name=small_cnn",
                 "data.mean=[0.25, 0.5, 0.75]", "data.std=[0.5, 0.25, 0.125]", "optim.batch_size=4", "device=cpu",
                 "data.augment={crop_padding: 0, flip: false}"]
    cfg = load_config(None, overrides)
    run = build_run(cfg, Context())
    assert run.train_set.mean == run.test_set.mean == (0.25, 0.5, 0.75)
    assert run.augment.std == (0.5, 0.25, 0.125)

    checkpoint = argparse.Namespace(config=cfg.to_dict())
    args = argparse.Namespace(data=None, data_root=None, split="test", limit=None, batch_size=4)
    loader, name, count = build_loader(args, checkpoint, torch.device("cpu"))
    images, _ = next(iter(loader))
    raw = load_dataset("npz", tiny_npz, split="test").images[:4].float() / 255
    expected = ((raw - torch.tensor([0.25, 0.5, 0.75]).view(1, 3, 1, 1))
                / torch.tensor([0.5, 0.25, 0.125]).view(1, 3, 1, 1))
    torch.testing.assert_close(images, expected)
