"""Recipes are data: validated on load, overridable with key=value, and every shipped recipe is valid."""

from pathlib import Path

import pytest
import torch

import spikedistill as sd
from spikedistill.errors import SpikeDistillError
from spikedistill.losses import create_loss
from spikedistill.train.config import dump_config, load_config, parse_override

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(CONFIGS.rglob("*.yaml"))


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_the_nearest_valid_key(tmp_path):
    with pytest.raises(SpikeDistillError) as err:
        load_config(write(tmp_path, "optim:\n  lr: 0.1\n  wieght_decay: 1e-4\n"))
    assert "unknown config key 'optim.wieght_decay'; did you mean 'optim.weight_decay'?" == str(err.value)
    with pytest.raises(SpikeDistillError, match="did you mean 'timesteps'"):
        load_config(None, ["timestep=4"])


def test_wrong_type_or_range_is_one_clear_line(tmp_path):
    cases = {"optim.lr=fast": "'optim.lr' must be a number", "optim.epochs=0": "'optim.epochs' must be > 0",
             "optim.name=adam": "must be one of sgd, adamw", "model.spiking=3": "'model.spiking' must be true/false",
             "timesteps=2.5": "'timesteps' must be an integer", "data.augment.erasing=2": "probability"}
    for override, message in cases.items():
        with pytest.raises(SpikeDistillError, match=message) as err:
            load_config(None, [override])
        assert "\n" not in str(err.value)


def test_overrides_are_yaml_scalars_on_dotted_keys():
    cfg = load_config(CONFIGS / "cifar10" / "twkd_resnet19.yaml",
                      ["optim.lr=5e-2", "optim.grad_clip=null", "model.options.surrogate=atan", "data.subset=512",
                       "optim.betas=[0.8, 0.9]", "log.progress=false"])
    assert cfg.optim.lr == 0.05 and cfg.optim.grad_clip is None and cfg.data.subset == 512
    assert cfg.model.options["surrogate"] == "atan" and cfg.model.options["decay"] == 0.5
    assert cfg.optim.betas == [0.8, 0.9] and cfg.log.progress is False
    assert parse_override("a.b='1'") == (["a", "b"], "1")
    with pytest.raises(SpikeDistillError, match="key=value"):
        parse_override("optim.lr")


def test_yaml_tags_are_never_executed(tmp_path):
    path = write(tmp_path, "seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpikeDistillError, match="not valid YAML"):
        load_config(path)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(CONFIGS / "cifar100" / "ckdsnn_resnet19.yaml", ["optim.epochs=3"])
    again = load_config(write(tmp_path, dump_config(cfg)))
    assert again == cfg and again.optim.epochs == 3 and again.optim.decay_all is True


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(p.relative_to(CONFIGS)) for p in RECIPES])
def test_every_shipped_recipe_is_valid_and_builds(recipe):
    cfg = load_config(recipe)
    num_classes = 100 if cfg.data.name == "cifar100" else 10
    with torch.device("meta"):  # shapes only: no memory, no time
        sd.create_model(cfg.model.name, spiking=cfg.model.spiking, num_classes=num_classes, **cfg.model.options)
    create_loss(cfg.loss.name, **cfg.loss.options)
    if cfg.teacher.recipe:
        assert (CONFIGS.parent / cfg.teacher.recipe).is_file()


def test_the_required_recipes_exist():
    for dataset in ("cifar10", "cifar100"):
        for student in ("resnet19", "resnet18"):
            for method in ("twkd", "skd", "tet", "tssd", "tser", "ckdsnn"):
                assert (CONFIGS / dataset / f"{method}_{student}.yaml").is_file()
        assert (CONFIGS / dataset / "teacher_resnet34.yaml").is_file()


def test_teacher_source_timm_and_train_mode_are_checked_on_load():
    cfg = load_config(None, ["teacher.source=timm", "teacher.name=resnet34", "teacher.weights=t.pth",
                             "teacher.train_mode=true"])
    assert cfg.teacher.source == "timm" and cfg.teacher.weights == "t.pth" and cfg.teacher.train_mode is True
    assert load_config(None).teacher.train_mode is False  # the SPEC default: eval() under no_grad
    cases = {("teacher.source=timm",): "needs teacher.name",
             ("teacher.source=timm", "teacher.name=resnet34", "teacher.checkpoint=x.pt"): "not teacher.checkpoint",
             ("teacher.source=timm", "teacher.name=resnet34", "teacher.pretrained=true", "teacher.weights=t.pth"):
                 "set one of them",
             ("teacher.name=resnet34",): "belong to teacher.source=timm",
             ("teacher.source=hub",): "must be one of checkpoint, timm",
             ("teacher.train_mode=1",): "must be true/false"}
    for overrides, message in cases.items():
        with pytest.raises(SpikeDistillError, match=message):
            load_config(None, list(overrides))


def test_best_by_timesteps_must_lie_in_the_evaluated_range():
    cfg = load_config(None, ["timesteps=1", "max_timesteps=4", "log.best_by_timesteps=1"])
    assert cfg.log.best_by_timesteps == 1 and load_config(None).log.best_by_timesteps is None
    with pytest.raises(SpikeDistillError, match="beyond the evaluated range 1..4"):
        load_config(None, ["timesteps=4", "log.best_by_timesteps=5"])
    with pytest.raises(SpikeDistillError, match="log.best_by=mean"):
        load_config(None, ["log.best_by=mean", "log.best_by_timesteps=2"])
    with pytest.raises(SpikeDistillError, match="must be > 0"):
        load_config(None, ["log.best_by_timesteps=0"])
