"""Every shipped recipe loads and trains one optimizer step on the CPU, on tiny data written here in the
formats its loader reads (CIFAR as an npz of 8×8 images, event recordings as AEDAT files, ImageNet as a
class folder of JPEGs), through `spikedistill train`. Recipes with a teacher get one trained the same way
(one step of their teacher recipe); the ImageNet recipe's timm teacher is the timm stand-in."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikedistill.cli import main
from spikedistill.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(CONFIGS.rglob("*.yaml"))
BATCH = 4

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny datasets for every loader the recipes name, written once per module."""
    root = tmp_path_factory.mktemp("tiny-data")
    g = np.random.default_rng(0)
    data = {"cache": root / "cache", "runs": root / "runs"}
    for name, classes in (("cifar10", 10), ("cifar100", 100)):
        path = root / f"{name}.npz"
        np.savez(path, x_train=g.integers(0, 256, (BATCH, 8, 8, 3), dtype=np.uint8), y_train=np.arange(BATCH) % classes,
                 x_test=g.integers(0, 256, (BATCH, 8, 8, 3), dtype=np.uint8), y_test=np.arange(BATCH) % classes)
        data[name] = path
    from test_events import gesture_file, write_cifar10dvs_tree

    write_cifar10dvs_tree(root / "CIFAR10DVS")  # 10 classes × 3 recordings: 27 train / 3 test
    data["cifar10dvs"] = root / "CIFAR10DVS"
    gesture, labels = gesture_file()  # two gestures per trial: users 1-2 train (4), user 24 test (2)
    (root / "DvsGesture").mkdir()
    for trial in ("user01_led", "user02_natural", "user24_led"):
        (root / "DvsGesture" / f"{trial}.aedat").write_bytes(gesture)
        (root / "DvsGesture" / f"{trial}_labels.csv").write_bytes(labels)
    data["dvsgesture"] = root / "DvsGesture"
    data["imagefolder"] = write_class_folders(root / "imagenet")
    return data


def write_class_folders(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    """ImageNet's layout, root/{train,val}/<class>/*.JPEG, with small JPEGs of different sizes."""
    from PIL import Image

    g = np.random.default_rng(1)
    for split, count in (("train", per_class), ("val", 2)):
        for c in range(classes):
            folder = root / split / f"n0000000{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                size = (28 + 4 * i, 24 + 2 * c)
                pixels = g.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"img_{i}.JPEG", quality=90)
    return root


def overrides(recipe: Path, tiny: dict) -> list[str]:
    """One step on the tiny data: one epoch of one batch, a 4-image test, CPU, no bars."""
    cfg = load_config(recipe)
    out = ["optim.epochs=1", f"optim.batch_size={BATCH}", f"data.subset={BATCH}", f"data.test_subset={BATCH}",
           "log.progress=false", "log.tensorboard=false", "device=cpu", "distributed.sync_bn=false"]
    name = cfg.data.name
    if name in ("cifar10", "cifar10_jpeg", "cifar100"):  # the JPEG copy's recipes, too, on tiny data of their own
        folder = tiny["cifar100" if name == "cifar100" else "cifar10"]
        out += ["data.name=npz", f"data.root={folder}",
                f"data.options={{num_classes: {100 if name == 'cifar100' else 10}}}"]
    elif name in ("cifar10dvs", "dvsgesture"):
        size = 16 if cfg.model.name == "vggsnn" else 8  # VGG-SNN pools four times
        out += [f"data.root={tiny[name]}", f"data.options.size={size}", f"data.options.cache_dir={tiny['cache']}"]
    elif name == "imagefolder":
        out += [f"data.root={tiny[name]}", "data.options.size=16", "data.options.resize=20",
                "data.options.train_random_resized_crop=16",
                "data.options.num_workers=0"]
    return out


def train_recipe(recipe: Path, tiny: dict, extra=()) -> Path:
    """The run directory of ``recipe``'s one-step run (trained once: a teacher recipe may have run already)."""
    out = tiny["runs"] / str(recipe.relative_to(CONFIGS)).replace("/", "-")
    if not out.exists():
        code = main(["train", "--config", str(recipe), "--out", str(out), *overrides(recipe, tiny), *extra])
        assert code == 0, f"{recipe} failed"
    return out


def teacher_for(recipe: Path, tiny: dict, monkeypatch) -> list[str]:
    """Overrides that hand the recipe a teacher trained (one step) from its own teacher recipe, or the timm
    stand-in with a weights file for ``teacher.source: timm``."""
    cfg = load_config(recipe)
    if cfg.teacher.source == "timm":
        import timm_standin

        monkeypatch.setitem(sys.modules, "timm", timm_standin)
        weights = tiny["runs"] / "timm_teacher.pth"
        torch.save(timm_standin.create_model(cfg.teacher.name, num_classes=2).state_dict(), weights)
        return [f"teacher.weights={weights}"]
    if cfg.teacher.recipe is None:
        return []
    teacher = train_recipe(CONFIGS.parent / cfg.teacher.recipe, tiny)
    return [f"teacher.checkpoint={teacher / 'best.pt'}", "teacher.recipe=null"]


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(p.relative_to(CONFIGS)) for p in RECIPES])
def test_every_recipe_trains_one_step_on_tiny_data(recipe, tiny, monkeypatch):
    cfg = load_config(recipe)
    out = train_recipe(recipe, tiny, teacher_for(recipe, tiny, monkeypatch))
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and int(rows[0]["step"]) == 1
    assert f"test_top1_t{cfg.eval_timesteps}" in rows[0]
    assert rows[0]["best_by"] == f"test_top1_t{cfg.log.best_by_timesteps or cfg.eval_timesteps}"
    if cfg.teacher.recipe or cfg.teacher.source == "timm":
        assert float(rows[0]["teacher_seconds"]) > 0, "the teacher ran"
    assert (out / "best.pt").is_file()
