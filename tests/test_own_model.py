"""A user's own model, data and teacher (docs/own-model.md): ``sd.fit``, ``spikedistill --import``, teacher
sources, and the one-line errors around them. The user's code is the package tests/own_model_pkg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import spikedistill as sd
from spikedistill.errors import SpikeDistillError

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # the user's package, as PYTHONPATH puts it for them

import own_model_pkg as pkg  # noqa: E402

QUIET = ["log.progress=false", "log.tensorboard=false"]


def normalised(images: torch.Tensor) -> torch.Tensor:
    return (images.float() / 255 - 0.3) / 0.3


def blob_tensors(split: str):
    images, labels = pkg.blobs(128 if split == "train" else 64, seed=0 if split == "train" else 1)
    return torch.utils.data.TensorDataset(normalised(images), labels)


def trained_teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    teacher = pkg.PlainANN()
    x, y = blob_tensors("train").tensors
    optimizer = torch.optim.Adam(teacher.parameters(), 1e-2)
    for _ in range(40):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(teacher(x), y).backward()
        optimizer.step()
    return teacher.eval()


def spikedistill_cli(*argv, cwd=None) -> subprocess.CompletedProcess:
    """``python -m spikedistill ...`` in a fresh process, with the user's package on PYTHONPATH."""
    root = str(TESTS.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, str(TESTS)]), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "spikedistill", *map(str, argv)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A plain-PyTorch student distilled from a plain nn.Module teacher on TensorDatasets by sd.fit."""
    out = tmp_path_factory.mktemp("fit") / "run"
    torch.manual_seed(0)
    result = sd.fit(pkg.PlainSNN(), blob_tensors("train"), test_data=blob_tensors("test"), teacher=trained_teacher(),
                    loss="twkd", timesteps=2, epochs=4, batch_size=16, lr=0.1, out=out, device="cpu", settings=QUIET,
                    verbose=False)
    return out, result


def test_fit_trains_a_plain_pytorch_student_from_a_plain_teacher(fitted):
    out, result = fitted
    assert {p.name for p in out.iterdir()} >= {"best.pt", "latest.pt", "metrics.csv", "config.yaml"}
    assert result["top1"][2] > 60.0  # four balanced classes: chance is 25 %
    assert set(result["top1"]) == {1, 2}
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 5 and "test_top1_t1" in rows[0] and "train_kl" in rows[0]


def test_a_fit_checkpoint_rebuilds_the_users_class_with_its_weights(fitted):
    out, result = fitted
    ckpt = sd.load_checkpoint(out / "latest.pt")
    net = ckpt.model()
    assert type(net) is pkg.PlainSNN and net.channels == 8 and ckpt.max_timesteps == 2
    assert ckpt.input_shape == (1, 8, 8) and ckpt["model"]["imports"] == ["own_model_pkg"]
    x = normalised(pkg.blobs(8, seed=3)[0])
    torch.testing.assert_close(net(x, timesteps=2), result["model"].eval()(x, timesteps=2))


def test_fit_resumes_exactly(tmp_path, monkeypatch):
    """Stopped after 5 steps (as a Ctrl-C stops it) and resumed, a fit run ends with the weights of an
    uninterrupted one."""
    import spikedistill.train.loop as loop

    def run(out, **kw):
        torch.manual_seed(1)
        return sd.fit(pkg.PlainSNN(), list(blob_tensors("train")), test_data=blob_tensors("test"), loss="ce",
                      timesteps=2, epochs=2, batch_size=32, out=out, device="cpu", settings=QUIET, verbose=False, **kw)

    whole = run(tmp_path / "whole")
    real = loop.train
    monkeypatch.setattr(loop, "train", lambda cfg, out_dir, **kw: real(cfg, out_dir, stop_after_steps=5, **kw))
    assert run(tmp_path / "split")["stopped"]
    monkeypatch.setattr(loop, "train", real)
    resumed = run(tmp_path / "split", resume=True)
    assert resumed["step"] == whole["step"] == 8
    for a, b in zip(whole["model"].state_dict().values(), resumed["model"].state_dict().values()):
        assert torch.equal(a, b)
    assert (tmp_path / "whole" / "metrics.csv").read_text() .splitlines()[1].split(",")[:4] == \
        (tmp_path / "split" / "metrics.csv").read_text().splitlines()[1].split(",")[:4]


def test_fit_without_test_data_keeps_the_last_epoch_as_best(tmp_path, capsys):
    torch.manual_seed(0)
    options = dict(loss="ce", timesteps=2, epochs=1, batch_size=64, device="cpu", settings=QUIET, verbose=False)
    sd.fit(pkg.PlainSNN(), blob_tensors("train"), out=tmp_path, **options)
    assert sd.load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    with pytest.raises(SpikeDistillError, match="already holds a run; continue it with resume=True"):
        sd.fit(pkg.PlainSNN(), blob_tensors("train"), out=tmp_path, **options)
    with pytest.raises(SpikeDistillError, match="nothing to resume"):
        sd.fit(pkg.PlainSNN(), blob_tensors("train"), out=tmp_path / "new", resume=True, **options)
    from spikedistill.cli import main

    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2  # the CLI cannot hold the Python objects
    assert "trained by sd.fit on data held in Python; resume it there" in capsys.readouterr().err


def test_fit_takes_a_callable_teacher_and_a_create_model_student(tmp_path):
    teacher = trained_teacher()
    student = sd.create_model("own_cnn", num_classes=4, timesteps=2)
    sd.fit(student, blob_tensors("train"), test_data=blob_tensors("test"), teacher=lambda x: teacher(x), loss="skd",
           timesteps=2, epochs=1, batch_size=64, out=tmp_path, device="cpu", settings=QUIET, verbose=False)
    ckpt = sd.load_checkpoint(tmp_path / "best.pt")
    assert ckpt.name == "own_cnn" and ckpt.options == {"timesteps": 2} and type(ckpt.model()) is pkg.PlainSNN


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``spikedistill --import own_model_pkg train`` of the registered student, its teacher of source module."""
    folder = tmp_path_factory.mktemp("cli")
    weights = folder / "ann.pth"
    torch.save(trained_teacher().state_dict(), weights)
    recipe = folder / "own.yaml"
    recipe.write_text("model: {name: own_cnn}\nloss: {name: twkd}\n"
                      f"teacher: {{source: module, name: own_ann, weights: {weights}}}\n"
                      "data: {name: own_blobs, augment: {crop_padding: 0, flip: false}}\n"
                      "optim: {epochs: 2, batch_size: 16, lr: 0.1}\ntimesteps: 2\ndevice: cpu\n"
                      "log: {progress: false, tensorboard: false}\n")
    out = folder / "run"
    done = spikedistill_cli("--import", "own_model_pkg", "train", "--config", recipe, "--out", out)
    assert done.returncode == 0, done.stderr
    return out


def test_cli_trains_a_registered_user_model_and_records_its_module(cli_run):
    assert "- own_model_pkg" in (cli_run / "config.yaml").read_text()
    ckpt = sd.load_checkpoint(cli_run / "best.pt")
    assert ckpt.name == "own_cnn" and ckpt["model"]["imports"] == ["own_model_pkg"]
    assert ckpt.metrics["top1"][2] > 40.0  # chance is 25 %


def test_cli_resume_imports_the_recorded_module_again(cli_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(cli_run, out)
    resumed = spikedistill_cli("train", "--resume", "--out", out, "optim.epochs=3")  # no --import: the run recorded it
    assert resumed.returncode == 0, resumed.stderr
    assert sd.load_checkpoint(out / "latest.pt")["epoch"] == 3


@pytest.mark.parametrize("which", ["cli", "fit"])
def test_eval_of_a_user_model_checkpoint_in_a_fresh_process(which, cli_run, fitted, tmp_path):
    """``spikedistill --import own_model_pkg eval`` scores the checkpoint as its training's test did."""
    checkpoint, extra = ((cli_run / "best.pt", []) if which == "cli"
                         else (fitted[0] / "best.pt", ["--data", "own_blobs"]))
    report = tmp_path / "report.json"
    evaluated = spikedistill_cli("--import", "own_model_pkg", "eval", checkpoint, *extra, "--json", report, "--no-plot")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(report.read_text())
    trained = sd.load_checkpoint(checkpoint).metrics["top1"]
    assert result["timesteps"] == [1, 2]
    assert result["top1"] == pytest.approx([trained[1], trained[2]])
    assert result["top1"][-1] > 40.0


def test_an_unknown_model_is_named_before_the_missing_teacher(tmp_path, capsys):
    from spikedistill.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: my_vgg}\nloss: {name: twkd}\nteacher: {checkpoint: missing/best.pt}\n")
    assert main(["train", "--config", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'my_vgg'" in err and "teacher" not in err


def test_a_missing_import_module_is_one_line(capsys):
    from spikedistill.cli import main

    assert main(["--import", "no_such_pkg_here", "eval", "x.pt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--import no_such_pkg_here" in err and "PYTHONPATH" in err


def test_a_checkpoint_whose_recorded_module_is_gone_says_so(tmp_path, fitted):
    ckpt = torch.load(fitted[0] / "best.pt", weights_only=True)
    ckpt["model"]["imports"] = ["gone_user_pkg"]
    torch.save(ckpt, tmp_path / "moved.pt")
    with pytest.raises(SpikeDistillError, match="needs the module 'gone_user_pkg'.*PYTHONPATH"):
        sd.load_checkpoint(tmp_path / "moved.pt").model()


def test_a_class_whose_arguments_cannot_be_read_back_says_how_to_load_it(tmp_path):
    sd.fit(pkg.NoArguments(4), blob_tensors("train"), loss="ce", timesteps=2, epochs=1, batch_size=64, out=tmp_path,
           device="cpu", settings=QUIET, verbose=False)
    ckpt = sd.load_checkpoint(tmp_path / "best.pt")
    with pytest.raises(SpikeDistillError, match=r"NoArguments.*not the arguments.*load_state_dict"):
        ckpt.model()
    net = pkg.NoArguments(4)
    net.load_state_dict(ckpt["state_dict"])  # what the message says to do works


@pytest.mark.parametrize("kind", ["state_dict", "pickled", "torchscript"])
def test_other_torch_files_given_as_checkpoints_are_named(tmp_path, kind):
    net = pkg.PlainANN()
    path = tmp_path / "teacher.pt"
    if kind == "state_dict":
        torch.save(net.state_dict(), path)
    elif kind == "pickled":
        torch.save(net, path)
    else:
        torch.jit.save(torch.jit.script(net), path)
    words = {"state_dict": "a bare state_dict", "pickled": "a pickled Python object",
             "torchscript": "a TorchScript file"}
    with pytest.raises(SpikeDistillError, match=f"is {words[kind]}.*teacher.source=") as caught:
        sd.load_checkpoint(path, role="teacher")
    assert "\n" not in str(caught.value)


def test_teacher_sources_module_and_torchscript_give_the_networks_logits(tmp_path):
    from spikedistill.train.config import TeacherConfig
    from spikedistill.train.run import build_teacher

    teacher = trained_teacher()
    x = blob_tensors("test").tensors[0][:5]
    torch.save(teacher.state_dict(), tmp_path / "ann.pth")
    torch.jit.save(torch.jit.script(teacher), tmp_path / "ann.ts")
    sources = [TeacherConfig(source="module", name="own_ann", weights=str(tmp_path / "ann.pth")),
               TeacherConfig(source="module", name="own_model_pkg:PlainANN", weights=str(tmp_path / "ann.pth")),
               TeacherConfig(source="torchscript", checkpoint=str(tmp_path / "ann.ts"))]
    for source in sources:
        torch.testing.assert_close(build_teacher(source, 4).eval()(x), teacher(x))
    with pytest.raises(SpikeDistillError, match="do not fit the model"):
        build_teacher(TeacherConfig(source="module", name="own_ann", weights=str(tmp_path / "ann.pth")), 10)
    with pytest.raises(SpikeDistillError, match="not a TorchScript file"):
        build_teacher(TeacherConfig(source="torchscript", checkpoint=str(tmp_path / "ann.pth")), 4)


class TimeMeaned(pkg.PlainSNN):
    """What most SNN code returns: the logits averaged over the steps, [B, K]."""

    def forward(self, x, timesteps=None, return_features=False):
        return super().forward(x, timesteps).mean(0)


def test_fit_refuses_what_it_cannot_train_in_one_line(tmp_path):
    data = blob_tensors("train")
    cases = [
        (dict(loss="twkd"), "needs a teacher"),
        (dict(loss="ce", teacher=pkg.PlainANN()), "loss 'ce' reads no teacher; drop teacher="),
        (dict(loss="ce", train=torch.utils.data.TensorDataset(*pkg.blobs(16, 0))), "inputs are torch.uint8"),
        (dict(loss="ce", train=[1, 2, 3]), "must yield \\(x, y\\) pairs"),
        (dict(loss="ce", student=lambda x: x), "student must be an nn.Module"),
        (dict(loss="ce", timesteps=3, train=[(torch.zeros(2, 1, 8, 8), 0)] * 4), "frames hold 2 timesteps"),
        (dict(loss="ce", student=pkg.PlainANN()), r"PlainANN.forward must take \(x, timesteps=None"),
        (dict(loss="ce", student=TimeMeaned()), r"returned \(2, 4\) for 2 samples at T=2; .* \[2, 2, K\]"),
    ]
    for case, message in cases:
        student = case.pop("student", pkg.PlainSNN())
        train = case.pop("train", data)
        with pytest.raises(SpikeDistillError, match=message):
            sd.fit(student, train, out=tmp_path / "x", device="cpu", settings=QUIET, verbose=False,
                   batch_size=4, **{"timesteps": 2, **case})


def test_a_teacher_without_features_is_refused_for_a_feature_objective():
    from spikedistill.train.task import CallableTeacher

    with pytest.raises(SpikeDistillError, match="takes no return_features"):
        CallableTeacher(pkg.PlainANN())(torch.zeros(2, 1, 8, 8), return_features=True)
    ann = pkg.PlainANN()
    ann.fc = ann.body[-1]
    assert CallableTeacher(ann).fc is ann.fc  # the head ckdsnn reads shows through the wrapper
    with pytest.raises(AttributeError):
        CallableTeacher(ann).no_such_attribute


def test_registering_a_name_twice_is_one_line():
    with pytest.raises(SpikeDistillError, match="model 'own_cnn' is registered twice"):
        sd.register_model("own_cnn", input_shape=(1, 8, 8))(pkg.own_cnn)


def test_a_registered_loss_trains_through_fit(tmp_path):
    @sd.register_loss("own_ce_half")
    class HalfCE(sd.Objective):
        def __init__(self, weight: float = 0.5):
            super().__init__()
            self.weight = weight

        def forward(self, logits, labels, **_):
            value = self.weight * torch.nn.functional.cross_entropy(self.steps(logits).mean(0), labels)
            return sd.losses.LossOutput(value, {"half_ce": value.detach()})

    assert sd.create_loss("own_ce_half", weight=0.25).weight == 0.25
    sd.fit(pkg.PlainSNN(), blob_tensors("train"), loss="own_ce_half", timesteps=2, epochs=1, batch_size=64,
           out=tmp_path, device="cpu", settings=QUIET, verbose=False)
    assert "train_half_ce" in (tmp_path / "metrics.csv").read_text()


def docs_examples() -> list[str]:
    text = (TESTS.parent / "docs" / "own-model.md").read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_the_docs_examples_run(tmp_path, monkeypatch):
    """docs/own-model.md as a user runs it: the plain student with sd.fit, the tonic example (N-MNIST replaced
    by a few random recordings: nothing is downloaded), the registration — each for one epoch."""
    import numpy as np
    import tonic

    class FewRecordings:  # N-MNIST's interface: sensor_size, (events, label) items through the transform
        sensor_size, dtype = tonic.datasets.NMNIST.sensor_size, tonic.datasets.NMNIST.dtype

        def __init__(self, save_to, train, transform):
            rng = np.random.default_rng(0 if train else 1)
            self.items = []
            for label in range(64 if train else 10):
                events = np.zeros(300, dtype=self.dtype)
                events["x"], events["y"] = rng.integers(0, 34, 300), rng.integers(0, 34, 300)
                events["t"], events["p"] = np.sort(rng.integers(0, 300_000, 300)), rng.integers(0, 2, 300)
                self.items.append((transform(events), label % 10))

        def __iter__(self):
            return iter(self.items)

    monkeypatch.setattr(tonic.datasets, "NMNIST", FewRecordings)
    monkeypatch.chdir(tmp_path)
    plain, events, registration = docs_examples()
    import types

    user_module = types.ModuleType("own_model_docs")  # the user's script, importable as their module is
    monkeypatch.setitem(sys.modules, user_module.__name__, user_module)
    namespace = user_module.__dict__
    exec(plain.replace("epochs=20", "epochs=3"), namespace)
    assert namespace["run"]["top1"][4] > 40.0  # ten classes: chance is 10 %
    assert type(namespace["net"]).__name__ == "MySNN" and namespace["net"].in_channels == 1
    exec(events.replace("epochs=20", "epochs=1"), namespace)
    assert sd.load_checkpoint(tmp_path / "runs/nmnist/best.pt").frames
    exec(registration, namespace)
    assert type(sd.create_model("my_net", num_classes=3)).__name__ == "MySNN"


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """The README's ten lines as a user runs them (two epochs each instead of ten): a teacher, then a twkd
    student that reports top-1 at every k."""
    text = (TESTS.parent / "README.md").read_text()
    block = text.split("## Your model in ten lines", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in block.splitlines() if line.strip()]) <= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block.replace("epochs=10", "epochs=2"), namespace)
    assert sorted(namespace["run"]["top1"]) == [1, 2, 3, 4]
    assert min(namespace["run"]["top1"].values()) > 30.0  # ten classes: chance is 10 %
    assert (tmp_path / "runs" / "twkd" / "best.pt").is_file()


def test_a_registered_constructor_gets_only_the_arguments_it_names():
    net = sd.create_model("own_cnn", num_classes=3, channels=4)  # takes neither spiking nor neuron nor in_channels
    assert net.num_classes == 3 and net.channels == 4
    assert net.created_as == {"name": "own_cnn", "spiking": True, "num_classes": 3, "options": {"channels": 4},
                              "module": "own_model_pkg"}
    assert isinstance(sd.create_model("own_ann", spiking=False, num_classes=4), pkg.PlainANN)
    with pytest.raises(SpikeDistillError, match=r"builds an SNN .*set model.spiking=true"):
        sd.create_model("own_cnn", spiking=False)
    with pytest.raises(SpikeDistillError, match="takes no 'neuron' argument"):
        sd.create_model("own_cnn", decay=0.5)


@pytest.mark.parametrize("which", ["cli", "fit"])
def test_export_of_a_user_model_checkpoint_runs_as_the_model_does(which, cli_run, fitted, tmp_path, capsys):
    from spikedistill.cli import main

    checkpoint = (cli_run if which == "cli" else fitted[0]) / "best.pt"
    out = tmp_path / "net.ts"
    assert main(["export", str(checkpoint), "--format", "torchscript", "--out", str(out)]) == 0, capsys.readouterr().err
    x = normalised(pkg.blobs(5, seed=4)[0])
    torch.testing.assert_close(torch.jit.load(str(out))(x), sd.load_checkpoint(checkpoint).model()(x, timesteps=2))


def test_a_torchvision_teacher_is_built_or_refused_in_one_line(monkeypatch):
    from spikedistill.train.config import TeacherConfig
    from spikedistill.train.run import build_teacher

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as where it is missing or built for another torch
    with pytest.raises(SpikeDistillError, match="teacher.source=torchvision needs torchvision"):
        build_teacher(TeacherConfig(source="torchvision", name="resnet18"), 10)


def test_teacher_source_settings_are_checked_when_the_recipe_is_read():
    from spikedistill.train.config import load_config

    cases = {("teacher.source=module",): "needs teacher.name",
             ("teacher.source=torchscript",): "needs teacher.checkpoint=FILE",
             ("teacher.source=module", "teacher.name=own_ann", "teacher.checkpoint=x.pt"): "takes teacher.weights",
             ("teacher.options={width: 2}",): "belong to teacher.source=timm, module or torchvision",
             ("imports=[3]",): "'imports' must be a list of module names"}
    for overrides, message in cases.items():
        with pytest.raises(SpikeDistillError, match=message):
            load_config(None, list(overrides))


def fit_worker(rank: int, port: int, out: str) -> None:
    """One of two gloo processes running the same sd.fit (torchrun sets these variables)."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.manual_seed(0)
    objective = sd.create_loss("tssd", extra_timesteps=1)  # has parameters of its own: the weak classifier
    result = sd.fit(pkg.PlainSNN(), blob_tensors("train"), loss=objective, timesteps=2, epochs=1, batch_size=32,
                    out=out, device="cpu", settings=QUIET + ["distributed.backend=gloo"],
                    verbose=False)
    torch.save({"student": result["model"].state_dict(), "objective": objective.state_dict()}, f"{out}/rank{rank}.pt")


def test_fit_under_two_processes_ends_with_identical_student_and_objective(tmp_path):
    """DDP wraps the whole task: the objective's weak classifier is averaged like the student's weights."""
    import torch.multiprocessing as mp
    from test_ddp import free_port

    mp.spawn(fit_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert set(rank0["objective"]) == {"weak_head.weight", "weak_head.bias"}
    for part in ("student", "objective"):
        for name, value in rank0[part].items():
            assert torch.equal(value, rank1[part][name]), (part, name)
    saved = sd.load_checkpoint(tmp_path / "latest.pt")["training"]["objective"]
    assert torch.equal(saved["weak_head.weight"], rank0["objective"]["weak_head.weight"])


def test_fit_stops_a_diverged_run_with_the_loop_s_advice(tmp_path):
    def broken_teacher(x):
        return torch.full((x.shape[0], 4), float("nan"))

    with pytest.raises(SpikeDistillError, match=r"loss is nan at step 1 .*Lower optim.lr") as caught:
        sd.fit(pkg.PlainSNN(), blob_tensors("train"), teacher=broken_teacher, loss="skd", timesteps=2, epochs=1,
               batch_size=64, out=tmp_path, device="cpu", settings=QUIET, verbose=False)
    assert "\n" not in str(caught.value) and not (tmp_path / "latest.pt").exists()


def test_resume_of_a_run_whose_module_is_gone_is_one_line(cli_run, tmp_path, capsys):
    import shutil

    from spikedistill.cli import main

    out = tmp_path / "run"
    shutil.copytree(cli_run, out)
    config = out / "config.yaml"
    config.write_text(config.read_text().replace("- own_model_pkg", "- gone_user_pkg"))
    assert main(["train", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the run '{out}' needs the module 'gone_user_pkg'" in err


@pytest.mark.parametrize("which", ["cli", "fit"])
def test_onnx_and_nir_exports_of_user_checkpoints_run_in_other_runtimes(which, cli_run, fitted, tmp_path):
    """``spikedistill --import own_model_pkg export`` in a fresh process: the ONNX file runs in onnxruntime
    at batch 1 and 5 as the model does, the NIR files in snnTorch and Norse to the model's predictions."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from test_nir_interop import READERS, TIMESTEPS, _agreement

    checkpoint = (cli_run if which == "cli" else fitted[0]) / "best.pt"
    net = sd.load_checkpoint(checkpoint).model()
    onnx_file = tmp_path / "net.onnx"
    done = spikedistill_cli("--import", "own_model_pkg", "export", checkpoint, "--format", "onnx", "--out", onnx_file)
    assert done.returncode == 0, done.stderr
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = normalised(pkg.blobs(batch, seed=7)[0])
        (got,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            expected = net(x, timesteps=2)
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=1e-4)
    images = normalised(pkg.blobs(32, seed=8)[0])
    with torch.no_grad():
        ours = net(images, timesteps=TIMESTEPS)  # the readers run that many steps
    for target, read in READERS.items():
        nir_file = tmp_path / f"net_{target}.nir"
        done = spikedistill_cli("--import", "own_model_pkg", "export", checkpoint, "--format", "nir",
                                "--nir-target", target, "--out", nir_file)
        assert done.returncode == 0, done.stderr
        same_prediction, _ = _agreement(ours, read(nir_file, images))
        assert same_prediction >= 0.95, (target, same_prediction)
