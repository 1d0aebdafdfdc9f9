"""What a first-time user meets: progress in every log, a learning rate that anneals within a short run,
help texts that point into the repository, a test command that names its slow files, CI without
machine-specific paths."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest
import torch

from spikedistill.checkpoint import load_checkpoint
from spikedistill.cli import build_parser
from spikedistill.train.config import load_config
from spikedistill.train.loop import train
from spikedistill.train.optim import build_schedule
from spikedistill.train.progress import progress

REPO = Path(__file__).resolve().parents[1]
RECIPE = """\
model: {name: small_cnn, spiking: true, options: {widths: [8, 16, 16]}}
loss: {name: ce}
data: {name: digits, subset: 128, test_subset: 32, augment: {crop_padding: 1, flip: false}}
optim: {name: sgd, lr: 0.05, epochs: 2, batch_size: 32}
timesteps: 2
seed: 1
device: cpu
log: {progress: false, tensorboard: false}
"""

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def recipe(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(RECIPE)
    return path


def test_a_log_that_is_not_a_terminal_gets_progress_lines_with_step_speed_and_eta(recipe, tmp_path, capsys):
    """nohup, CI, a cluster job: stdout is a file, so no bar; a line every log.progress_every_seconds instead."""
    cfg = load_config(recipe, ["log.progress=true", "log.progress_every_seconds=1e-9"])
    train(cfg, tmp_path / "run")
    lines = [line for line in capsys.readouterr().out.splitlines() if " · step " in line]
    assert lines, "no progress line in a log"
    assert re.fullmatch(r"epoch 1/2 · step 1/4 · \d+ img/s · (loss \S+ · )?ETA \d+m\d\ds", lines[0]), lines[0]
    assert any(line.startswith("epoch 2/2 · step 3/4") for line in lines)


def test_progress_lines_come_every_n_seconds_not_every_step():
    out = io.StringIO()
    assert list(progress(range(50), total=50, initial=0, desc="epoch 1/1", enabled=True, batch_size=8,
                         every_seconds=3600, stream=out)) == list(range(50))
    assert out.getvalue() == ""  # an hour did not pass
    assert progress(range(3), 3, 0, "x", enabled=False) == range(3)  # log.progress=false: nothing at all


def test_the_learning_rate_follows_the_iterations_with_a_linear_warmup():
    cfg = load_config(None, ["optim.epochs=2", "optim.lr=0.1", "optim.warmup_epochs=0.5"]).optim
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=cfg.lr)
    schedule = build_schedule(cfg, optimizer, steps_per_epoch=4)  # 8 steps, the first 2 warm up
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [0.05, 0.1] + [0.05 * (1 + math.cos(math.pi * i / 6)) for i in range(6)]
    assert rates == pytest.approx(expected)


def test_a_short_run_anneals_to_zero_and_its_schedule_counts_steps(recipe, tmp_path):
    train(load_config(recipe), tmp_path / "run", verbose=False)
    training = load_checkpoint(tmp_path / "run" / "latest.pt")["training"]
    assert training["schedule"]["last_epoch"] == 8  # 2 epochs × 4 steps, not 2 epochs
    assert training["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def _help_texts() -> str:
    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._subparsers._group_actions:
        texts += [sub.format_help() for sub in action.choices.values()]
    return "\n".join(texts)


def test_help_texts_point_into_the_repository_only():
    text = _help_texts()
    assert "SPEC.md" not in text and "METHODS.md" not in text and "../shared" not in text
    for doc in re.findall(r"docs/[\w./-]+\.md", text):
        assert (REPO / doc).is_file(), doc

