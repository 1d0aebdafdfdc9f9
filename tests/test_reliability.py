"""Faults during long runs lose nothing: signals, crashes mid-write, a full disk, a loss that diverges.

* SIGTERM (a scheduler ending the job) and Ctrl-C (SIGINT) finish the current step, write a resumable
  ``latest.pt`` and exit; ``--resume`` then ends with exactly the weights of an uninterrupted run.
* A writer killed in the middle of a checkpoint leaves the previous checkpoint intact and loadable;
  the half-written temporary file is never taken for it.
* A full disk during a checkpoint write says so in one line and keeps the previous checkpoint.
* A non-finite loss stops the run with the step, the loss parts and advice, and keeps the last good
  checkpoint; the advised lower ``optim.lr`` given on ``--resume`` is then really used.

Everything runs on the CPU in a few seconds: digits, a narrow small_cnn, T = 2.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import spikedistill.train.run as run  # where the run's parts are built
from spikedistill import checkpoint
from spikedistill.checkpoint import load_checkpoint
from spikedistill.cli import main
from spikedistill.errors import SpikeDistillError
from spikedistill.io import atomic_save
from spikedistill.train.config import load_config
from spikedistill.train.loop import train

pytestmark = [pytest.mark.timeout(240),  # a run that ignores its signal fails instead of hanging CI
              pytest.mark.usefixtures("one_thread")]  # tiny runs: threads cost more than they give

EPOCHS, STEPS_PER_EPOCH = 2, 16  # 512 images / batch 32
RECIPE = f"""\
model: {{name: small_cnn, spiking: true, options: {{widths: [8, 16, 16]}}}}
loss: {{name: twkd, options: {{alpha: 0.0, beta: 0.5, tau: 3.0}}}}
data: {{name: digits, subset: 512, test_subset: 64, augment: {{crop_padding: 1, flip: false}}}}
optim: {{name: sgd, lr: 0.05, epochs: {EPOCHS}, batch_size: 32}}
timesteps: 2
seed: 5
device: cpu
log: {{progress: false, tensorboard: false}}
"""


def test_every_test_here_runs_on_one_thread_under_the_timeout(request):
    assert request.node.get_closest_marker("timeout").args == (240,)
    assert "one_thread" in request.fixturenames


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def reference(recipe, tmp_path_factory) -> dict:
    """The weights of the uninterrupted run, every interrupted run must end with."""
    out = tmp_path_factory.mktemp("reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as every run below (a module fixture starts before `one_thread`)
    try:
        result = train(load_config(recipe), out, verbose=False)
    finally:
        torch.set_num_threads(threads)
    assert result["step"] == EPOCHS * STEPS_PER_EPOCH
    return load_checkpoint(out / "latest.pt")["state_dict"]


def assert_same_weights(expected: dict, got: dict) -> None:
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def on_training_step(monkeypatch, step: int, action) -> None:
    """Call ``action(output)`` inside the model's forward at training step ``step`` (1-based); its
    return value, if not None, replaces the logits. Evaluation forwards (eval mode) are not counted."""
    real_create_model = run.create_model
    calls = {"n": 0}

    def create_model(*args, **kwargs):
        model = real_create_model(*args, **kwargs)

        def hook(module, inputs, output):
            if not module.training:
                return None
            calls["n"] += 1
            return action(output) if calls["n"] == step else None

        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(run, "create_model", create_model)


# --- signals ------------------------------------------------------------------------------------

def test_sigterm_during_training_writes_a_checkpoint_that_resumes_to_the_same_weights(
        recipe, reference, tmp_path, capsys):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "spikedistill", "train", "--config", str(recipe), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    watchdog = threading.Timer(180, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        for line in proc.stdout:  # the run's header line is printed just before the first step
            if "→" in line:
                break
        time.sleep(0.05)  # into the first steps
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode not in (0, -signal.SIGTERM), f"SIGTERM was not handled (rc {proc.returncode}): {stderr}"
    assert "Traceback" not in stderr, stderr
    assert "--resume" in stdout  # it says how to continue
    saved = load_checkpoint(out / "latest.pt")
    assert saved["training"] is not None and 0 < saved["step"] < EPOCHS * STEPS_PER_EPOCH

    assert main(["train", "--resume", "--out", str(out)]) == 0
    capsys.readouterr()
    resumed = load_checkpoint(out / "latest.pt")
    assert resumed["step"] == EPOCHS * STEPS_PER_EPOCH
    assert_same_weights(reference, resumed["state_dict"])


def test_ctrl_c_during_training_writes_a_checkpoint_that_resumes_to_the_same_weights(recipe, reference, tmp_path,
                                                                                       monkeypatch, capsys):
    out = tmp_path / "run"
    # A real SIGINT, delivered inside the forward pass of step 20 (epoch 2, batch 4).
    on_training_step(monkeypatch, 20, lambda output: signal.raise_signal(signal.SIGINT))
    assert main(["train", "--config", str(recipe), "--out", str(out)]) == 130
    assert "--resume" in capsys.readouterr().out
    saved = load_checkpoint(out / "latest.pt")
    assert saved["step"] == 20 and saved["epoch"] == 1 and saved["training"]["step_in_epoch"] == 4

    monkeypatch.undo()
    assert main(["train", "--resume", "--out", str(out)]) == 0
    capsys.readouterr()
    assert_same_weights(reference, load_checkpoint(out / "latest.pt")["state_dict"])


# --- crashes and full disks during a checkpoint write -------------------------------------------

class WrappedFile:
    """A real file whose ``write`` a subclass changes; everything else goes to the file."""

    def __init__(self, file):
        self.file = file

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


class StallingFile(WrappedFile):
    """A file that, once more than ``after`` bytes are written, flushes them, says so, and hangs."""

    def __init__(self, file, after: int, ready: Path):
        super().__init__(file)
        self.after, self.ready, self.written = after, ready, 0

    def write(self, data) -> int:
        n = self.file.write(data)
        self.written += n
        if self.written > self.after:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.ready.touch()
            time.sleep(600)
        return n


def _stalling_writer(obj, path: str, ready: str) -> None:
    real_fdopen = os.fdopen
    os.fdopen = lambda fd, mode="r", *a, **k: StallingFile(real_fdopen(fd, mode, *a, **k), 1 << 20, Path(ready))
    atomic_save(obj, path)


def test_a_writer_killed_mid_checkpoint_leaves_the_previous_checkpoint_intact_and_resumable(recipe, reference, tmp_path,
                                                                                             capsys):
    out = tmp_path / "run"
    assert train(load_config(recipe), out, stop_after_steps=20, verbose=False)["stopped"]
    target = out / "latest.pt"
    before = target.read_bytes()
    ready = tmp_path / "writer_is_mid_way"
    huge = {"format": checkpoint.FORMAT, "version": 1, "step": 21, "weights": torch.ones(4 << 20)}  # 16 MB

    # fork: the child inherits the tensor (no torch work after the fork) and is SIGKILLed mid-write.
    writer = multiprocessing.get_context("fork").Process(target=_stalling_writer, args=(huge, str(target), str(ready)))
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.is_alive() and time.monotonic() < deadline, "the writer never reached the middle"
            time.sleep(0.02)
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(30)
    finally:
        if writer.is_alive():
            writer.kill()
    assert writer.exitcode == -signal.SIGKILL

    partial = [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(partial) == 1 and partial[0].stat().st_size > 1 << 20          # the half-written temp file...
    assert partial[0].name.startswith(".") and "latest.pt" not in [p.name for p in partial]  # ...is not the checkpoint
    assert target.read_bytes() == before and load_checkpoint(target)["step"] == 20

    assert main(["train", "--resume", "--out", str(out)]) == 0  # the leftover is ignored
    capsys.readouterr()
    assert_same_weights(reference, load_checkpoint(target)["state_dict"])


class FullDisk(WrappedFile):
    """A file on a disk that fills up after ``room`` bytes."""

    def __init__(self, file, room: int):
        super().__init__(file)
        self.room = room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one_and_says_what_to_do(tmp_path, monkeypatch):
    target = tmp_path / "latest.pt"
    atomic_save({"step": 1}, target)
    real_fdopen = os.fdopen
    monkeypatch.setattr(checkpoint.os, "fdopen", lambda fd, mode="r", *a,
                        **k: FullDisk(real_fdopen(fd, mode, *a, **k), 4096))
    with pytest.raises(SpikeDistillError) as err:  # torch.save itself would say "unexpected pos 704 vs 598"
        atomic_save({"step": 2, "weights": torch.ones(1 << 16)}, target)
    message = str(err.value)
    assert ("No space left on device" in message and "previous checkpoint is kept" in message
            and "free disk space" in message)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]  # no temp file left behind


# --- a loss that diverges ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_stops_with_step_parts_and_advice_and_keeps_the_last_good_checkpoint(recipe, tmp_path,
                                                                                            monkeypatch, bad):
    out = tmp_path / "run"
    step = STEPS_PER_EPOCH + 5  # epoch 2: the checkpoint of epoch 1 is the last good one
    on_training_step(monkeypatch, step, lambda output: output * bad)
    with pytest.raises(SpikeDistillError) as err:
        train(load_config(recipe), out, verbose=False)
    message = str(err.value)
    assert "\n" not in message
    assert f"step {step}" in message                       # where
    assert "ce=" in message and "sd=" in message           # the loss parts (twkd: ce, kl, sd)
    assert "optim.lr" in message and "--resume" in message  # what to do

    kept = load_checkpoint(out / "latest.pt")
    assert kept["step"] == STEPS_PER_EPOCH and kept["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in kept["state_dict"].values() if t.is_floating_point())


def test_a_lower_learning_rate_given_on_resume_is_used(recipe, tmp_path, capsys):
    """The advice after a diverged run — lower optim.lr and --resume — must not be silently ignored
    (the saved optimizer and schedule states hold the old rate)."""
    out = tmp_path / "run"
    assert train(load_config(recipe), out, stop_after_steps=STEPS_PER_EPOCH + 2, verbose=False)["stopped"]
    assert main(["train", "--resume", "--out", str(out), "optim.lr=0.005"]) == 0
    capsys.readouterr()
    rows = (out / "metrics.csv").read_text().splitlines()
    lr = float(rows[-1].split(",")[rows[0].split(",").index("lr")])
    assert lr == pytest.approx(0.005 * 0.5)  # cosine at epoch 2 of 2: half the base rate (0.05 would give 0.025)


def test_a_diverging_learning_rate_ends_the_cli_run_with_one_error_line(recipe, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", str(recipe), "optim.lr=1e30", "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: loss is") and "optim.lr" in errors[0], errors
    if (out / "latest.pt").exists():  # only checkpoints written before the divergence remain
        weights = load_checkpoint(out / "latest.pt")["state_dict"].values()
        assert all(torch.isfinite(t).all() for t in weights if t.is_floating_point())


def test_resume_without_the_runs_config_names_the_fix(tmp_path, capsys):
    """A run directory whose config.yaml was deleted: one line saying to pass the recipe again."""
    from spikedistill.cli import main
    from spikedistill.io import atomic_save

    run = tmp_path / "run"
    atomic_save({"anything": 1}, run / "latest.pt")
    assert main(["train", "--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "config.yaml" in err and "--config FILE" in err and "\n" not in err


def test_stale_temp_files_of_a_killed_write_are_removed_and_others_kept(tmp_path):
    from spikedistill.io import atomic_write_text, remove_stale_temp_files

    (tmp_path / ".latest.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    atomic_write_text("model: {}\n", tmp_path / "config.yaml")
    remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
    assert (tmp_path / "config.yaml").read_text() == "model: {}\n"


# --- one run per folder, runs that resolve from anywhere, logs that keep every column --------------

def _start_cli_run(recipe: Path, out: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "spikedistill", "train", "--config", str(recipe), "--out", str(out),
                             *overrides], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_two_runs_into_one_out_folder_the_second_stops_in_one_line_and_the_first_is_untouched(recipe, tmp_path):
    out = tmp_path / "run"
    first = _start_cli_run(recipe, out, "optim.epochs=50")  # long enough to be running while the second starts
    watchdog = threading.Timer(200, first.kill)
    watchdog.start()
    try:
        for line in first.stdout:  # the header is printed once the run holds the folder
            if "→" in line:
                break
        second = subprocess.run([sys.executable, "-m", "spikedistill", "train", "--config", str(recipe), "--out",
                                 str(out)],
                                capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert first.poll() is None, "the first run ended before the second started"
        first.send_signal(signal.SIGTERM)
        stdout, stderr = first.communicate(timeout=120)
    finally:
        watchdog.cancel()
        if first.poll() is None:
            first.kill()
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert lines[0].startswith("error: ") and "in use by another training run" in lines[0]
    assert f"pid {first.pid}" in lines[0] and "--out" in lines[0]
    assert "Traceback" not in stderr and "--resume" in stdout  # the first stopped as a signalled run does
    assert not (out / "run.lock").exists()  # released on the way out
    assert load_checkpoint(out / "latest.pt").config["optim"]["epochs"] == 50  # the first run's checkpoint


def test_the_api_refuses_a_folder_held_by_another_run(recipe, tmp_path):
    from spikedistill.train.runlock import RunLock

    with RunLock(tmp_path / "run"):
        with pytest.raises(SpikeDistillError, match="in use by another training run"):
            train(load_config(recipe), tmp_path / "run", verbose=False)
    assert not (tmp_path / "run" / "latest.pt").exists()


def test_a_stale_lock_of_a_killed_run_is_taken_over(recipe, tmp_path, capsys):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid no longer runs
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.lock").write_text(f"{dead.pid} {socket.gethostname()}\n")
    assert main(["train", "--config", str(recipe), "optim.epochs=1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert (out / "latest.pt").exists() and not (out / "run.lock").exists()


def test_resume_from_another_directory_with_relative_paths(recipe, tmp_path, monkeypatch, capsys):
    """A run started with relative paths (teacher checkpoint, data root, --out) continues with --resume from
    anywhere: config.yaml and the checkpoints hold absolute paths."""
    import numpy as np

    start, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    start.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(start)
    rng = np.random.default_rng(0)
    (start / "data").mkdir()
    np.savez(start / "data" / "tiny.npz", x=rng.integers(0, 255, (64, 8, 8, 1), dtype=np.uint8), y=np.arange(64) % 10)
    data = ["data.name=npz", "data.root=data/tiny.npz", "data.subset=64", "optim.batch_size=16"]
    assert main(["train", "--config", str(recipe), *data, "model.spiking=false", "loss.name=ce", "loss.options={}",
                 "optim.epochs=1",
                 "--out", "teacher"]) == 0
    student = load_config(recipe, [*data, "teacher.checkpoint=teacher/best.pt"])
    assert train(student, "student", stop_after_steps=3, verbose=False)["stopped"]

    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", "--out", str(start / "student")]) == 0, capsys.readouterr().err
    capsys.readouterr()
    saved = (start / "student" / "config.yaml").read_text()
    assert f"root: {start / 'data' / 'tiny.npz'}" in saved and f"checkpoint: {start / 'teacher' / 'best.pt'}" in saved
    assert load_checkpoint(start / "student" / "latest.pt")["step"] == EPOCHS * 4  # 64 images / batch 16
    assert main(["eval", str(start / "student" / "best.pt"), "--no-plot", "--device", "cpu"]) == 0  # the data root too
    assert "all 64 samples" in capsys.readouterr().out


def test_metrics_csv_keeps_test_columns_that_first_appear_after_epoch_one(recipe, tmp_path):
    """log.eval_every=2: epoch 1 has no test columns; epoch 2's must still reach the CSV."""
    import csv

    train(load_config(recipe, ["log.eval_every=2"]), tmp_path / "run", verbose=False)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["test_top1_t2"] == "" and 0 <= float(rows[1]["test_top1_t2"]) <= 100
    assert float(rows[1]["test_top1_t1"]) >= 0 and rows[0]["train_loss"] and rows[1]["train_loss"]


# --- nothing a user already has is overwritten ------------------------------------------------------

def _lock_rounds(path: Path, barrier, rounds: int, held) -> None:
    from spikedistill.train.runlock import RunLock

    for i in range(rounds):
        lock = RunLock(path)
        barrier.wait()
        try:
            lock.acquire()
        except SpikeDistillError:
            pass
        held[i] += lock.held  # both processes add to the same round's count
        barrier.wait()
        lock.release()


def test_two_processes_taking_the_lock_at_the_same_instant_never_both_hold_it(tmp_path):
    context = multiprocessing.get_context("fork")
    rounds = 150
    barrier, held = context.Barrier(2), context.Array("i", rounds, lock=True)
    workers = [context.Process(target=_lock_rounds, args=(tmp_path, barrier, rounds, held)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert all(worker.exitcode == 0 for worker in workers)
    assert sorted(set(held[:])) == [1]  # each round exactly one owner: never both, never none
    assert not (tmp_path / "run.lock").exists()


def test_a_lock_is_released_only_by_its_owner(tmp_path):
    from spikedistill.train.runlock import RunLock

    first, second = RunLock(tmp_path), RunLock(tmp_path)
    first.acquire()
    with pytest.raises(SpikeDistillError, match=f"pid {os.getpid()}"):
        second.acquire()
    second.release()  # not the owner: the first still holds the folder
    with pytest.raises(SpikeDistillError, match="in use by another training run"):
        RunLock(tmp_path).acquire()
    first.release()
    RunLock(tmp_path).acquire()


def test_a_run_whose_lock_file_was_replaced_does_not_remove_the_new_owners_lock(tmp_path):
    """A's file removed by hand and B's lock taken in its place: A's release leaves B's file and lock alone."""
    from spikedistill.train.runlock import RunLock

    first = RunLock(tmp_path)
    first.acquire()
    (tmp_path / "run.lock").unlink()
    second = RunLock(tmp_path)
    second.acquire()
    first.release()
    assert (tmp_path / "run.lock").read_text().split()[0] == str(os.getpid())
    with pytest.raises(SpikeDistillError, match="in use by another training run"):
        RunLock(tmp_path).acquire()
    second.release()
    assert not (tmp_path / "run.lock").exists()


def test_the_run_lock_is_taken_before_the_data_loads(recipe, tmp_path, monkeypatch):
    """A second run started while the first loads its data is refused: the folder is already locked then."""
    import spikedistill.data as data
    from spikedistill.train.runlock import check_not_in_use

    seen = []
    real = data.load_dataset

    def load_dataset(*args, **kwargs):
        try:
            check_not_in_use(tmp_path / "run")
            seen.append("free")
        except SpikeDistillError:
            seen.append("locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "load_dataset", load_dataset)
    train(load_config(recipe, ["optim.epochs=1"]), tmp_path / "run", verbose=False)
    assert seen and set(seen) == {"locked"}


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_run_never_writes_into_a_finished_runs_folder(recipe, tmp_path):
    out = tmp_path / "run"
    train(load_config(recipe, ["optim.epochs=1"]), out, verbose=False)
    before = _snapshot(out)
    with pytest.raises(SpikeDistillError, match="already holds a run .*--resume"):
        train(load_config(recipe, ["optim.epochs=1", "seed=6"]), out, verbose=False)
    assert _snapshot(out) == before


@pytest.fixture(scope="module")
def finished(recipe, tmp_path_factory) -> Path:
    """A finished tiny run (best.pt, latest.pt, config.yaml, metrics.csv)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train(load_config(recipe, ["optim.epochs=1"]), out, verbose=False)
    return out


def test_the_teacher_stage_never_trains_into_another_runs_folder(finished, tmp_path, capsys):
    before = _snapshot(finished)
    student = ["train", "--config", "configs/digits/twkd_small_cnn.yaml", "--out", str(tmp_path / "student"),
               "--train-teacher", "optim.epochs=1", "data.subset=64", "log.progress=false"]
    for teacher, words in ((finished / "missing.pt", ("best.pt", "teacher.checkpoint=NEW_FOLDER/best.pt")),
                              (tmp_path / "teacher" / "teacher.pt", ("writes best.pt", "cannot make")),
                              (tmp_path / "student" / "best.pt", ("student's own run folder",))):
        assert main([*student, f"teacher.checkpoint={teacher}"]) == 2
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and all(w in lines[0] for w in words), err
        assert "teacher stage:" not in out  # nothing was started
    assert _snapshot(finished) == before
    assert not (tmp_path / "teacher").exists() and not (tmp_path / "student").exists()


def test_a_smoke_runs_cached_teacher_does_not_teach_a_full_run(tmp_path, capsys):
    """A teacher trained on data.subset=64 (a smoke run's) is refused by a run asking for all the data;
    a teacher of all the data serves a smoke student."""
    import spikedistill as sd
    from spikedistill.checkpoint import model_spec, save_checkpoint
    from spikedistill.train.teacher import teacher_config

    teacher = tmp_path / "teacher" / "best.pt"
    student = ["configs/digits/twkd_small_cnn.yaml", [f"teacher.checkpoint={teacher}"]]
    model = sd.create_model("small_cnn", spiking=False, num_classes=10, in_channels=1)
    for subset in ("64", "null"):
        smoke = teacher_config(load_config(student[0], [*student[1], f"data.subset={subset}"]))
        save_checkpoint(teacher, model=model, spec=model_spec("small_cnn", False, 10, in_channels=1),
                        config=smoke.to_dict())
        if subset == "64":
            code = main(["train", "--config", student[0], *student[1], "--out", str(tmp_path / "full")])
            err = capsys.readouterr().err.strip()
            assert code == 2 and len(err.splitlines()) == 1, err
            assert "another recipe" in err and "data.subset 64 (recipe: None)" in err and "--train-teacher" in err
            assert not (tmp_path / "full").exists()
        else:
            from spikedistill.train.run import teacher_checkpoint

            assert teacher_checkpoint(load_config(student[0], [*student[1], "data.subset=64"])).name == "small_cnn"


def _read_only(folder: Path):
    """Make ``folder`` read-only for this process's children (a read-only bind mount when we are root,
    whom permissions do not stop); returns the undo."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
    return lambda: subprocess.run(["umount", str(folder)], check=True)


def _full_disk(limit: int):
    """From here on no file of this process grows past ``limit`` bytes (the write fails with EFBIG, as on a
    full disk: Python ignores SIGXFSZ); returns the undo."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_full_disk_a_read_only_folder_and_a_second_run_leave_every_earlier_file_byte_identical(finished, tmp_path,
                                                                                                 capsys):
    folder = tmp_path / "outputs"
    checkpoint = finished / "best.pt"
    writes = [["export", checkpoint, "--format", "nir", "--out", folder / "net.nir"],
              ["export", checkpoint, "--format", "onnx", "--out", folder / "net.onnx"],
              ["export", checkpoint, "--format", "torchscript", "--out", folder / "net.ts"],
              ["eval", checkpoint, "--device", "cpu", "--limit", "32", "--json", folder / "eval.json",
               "--plot", folder / "fullrange.png"]]
    writes = [[str(a) for a in argv] for argv in writes]
    for argv in writes:
        assert main(argv) == 0
    before, run_before = _snapshot(folder), _snapshot(finished)
    assert {"net.nir", "net.onnx", "net.ts", "eval.json", "fullrange.png"} <= set(before)
    capsys.readouterr()

    second_run = ["train", "--config", str(finished / "config.yaml"), "--out", str(finished), "optim.epochs=2"]
    over_its_input = ["export", str(checkpoint), "--format", "nir", "--out", str(checkpoint)]
    undo = _full_disk(1024)  # every write here is larger: each one meets the full disk
    try:
        codes = [main(argv) for argv in [*writes, second_run, over_its_input]]
    finally:
        undo()
    err = capsys.readouterr().err
    assert codes == [2] * 6 and "Traceback" not in err and err.count("error: ") == 6, err
    assert err.count("the previous file is kept") == 4 and "already holds a run" in err and "is the input file" in err
    assert _snapshot(folder) == before and _snapshot(finished) == run_before

    undo = _read_only(folder)
    try:
        codes = [main(argv) for argv in writes]
    finally:
        undo()
    err = capsys.readouterr().err
    assert codes == [2] * 4 and "Traceback" not in err and err.count("error: ") == 4, err
    assert _snapshot(folder) == before
