import csv
import io

import pytest
import torch

from spikedistill.errors import SpikeDistillError
from spikedistill.train.metrics_log import MetricsLog


def test_step_scalars_are_written_every_n_steps_under_their_own_tags(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = MetricsLog(tmp_path, start_epoch=0)
    written = [log.step_scalars(step, {"loss": torch.tensor(1.0 / step), "lr": 0.1, "skipped": True}, every=4)
               for step in range(1, 11)]
    log.write({"epoch": 1, "train_loss": 0.5})
    log.close()
    assert written == [step % 4 == 0 for step in range(1, 11)]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"step/loss", "step/lr", "train_loss"}  # booleans are not scalars
    loss = events.Scalars("step/loss")
    assert [e.step for e in loss] == [4, 8]
    assert [e.value for e in loss] == pytest.approx([0.25, 0.125])


def test_step_scalars_off_without_a_period_or_without_tensorboard(tmp_path):
    assert MetricsLog(tmp_path / "a", 0, tensorboard=False).step_scalars(8, {"loss": 1.0}, every=4) is False
    log = MetricsLog(tmp_path / "b", 0)
    assert log.step_scalars(8, {"loss": 1.0}, every=0) is False
    log.close()


def test_training_writes_step_scalars_every_n_optimizer_steps(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from spikedistill.train.config import config_from_dict
    from spikedistill.train.loop import train

    cfg = {"model": {"name": "small_cnn", "spiking": True, "options": {"widths": [8, 16, 32]}},
           "data": {"name": "digits", "subset": 96, "test_subset": 32}, "optim": {"epochs": 1, "batch_size": 16},
           "timesteps": 2, "device": "cpu", "log": {"progress": False, "tensorboard_every_steps": 2}}
    train(config_from_dict(cfg), tmp_path, verbose=False)  # 6 steps
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("step/train_loss")] == [2, 4, 6]
    assert [e.step for e in events.Scalars("step/lr")] == [2, 4, 6]


class Killed(BaseException):
    """A SIGKILL in the middle of a write: nothing after it runs, no handler catches it."""


def _dies_mid_line(at: str):
    """A csv.DictWriter that writes half of the line whose 'epoch' field is ``at`` (``"epoch"``: the
    header) and then dies, as a process killed mid-write would."""
    real = csv.DictWriter

    class DiesMidLine(real):
        def __init__(self, f, fieldnames, **kwargs):
            super().__init__(f, fieldnames, **kwargs)
            self.file = f

        def writerow(self, rowdict):
            if str(rowdict.get("epoch")) == at:
                line = io.StringIO()
                real(line, self.fieldnames, restval="").writerow(rowdict)
                self.file.write(line.getvalue()[: len(line.getvalue()) // 2])
                raise Killed
            return super().writerow(rowdict)

        def writerows(self, rowdicts):
            for row in rowdicts:
                self.writerow(row)

    return DiesMidLine


def test_a_kill_while_writing_a_row_leaves_the_earlier_rows_whole_and_resume_continues(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path, 0, tensorboard=False)
    log.write({"epoch": 1, "train_loss": 0.5, "test_top1_t1": 40.0})
    log.write({"epoch": 2, "train_loss": 0.25, "test_top1_t1": 60.0})
    before = (tmp_path / "metrics.csv").read_bytes()
    monkeypatch.setattr(csv, "DictWriter", _dies_mid_line("3"))
    with pytest.raises(Killed):
        log.write({"epoch": 3, "train_loss": 0.125, "test_top1_t1": 70.0})
    monkeypatch.undo()
    assert (tmp_path / "metrics.csv").read_bytes() == before  # no half line
    resumed = MetricsLog(tmp_path, 2, tensorboard=False)  # latest.pt says 2 epochs are done
    resumed.write({"epoch": 3, "train_loss": 0.125, "test_top1_t1": 70.0})
    with (tmp_path / "metrics.csv").open(newline="") as f:
        assert [(r["epoch"], r["train_loss"]) for r in csv.DictReader(f)] == [
            ("1", "0.5"), ("2", "0.25"), ("3", "0.125")]


def test_a_kill_while_writing_the_first_row_leaves_no_file_a_resume_trips_on(tmp_path, monkeypatch):
    monkeypatch.setattr(csv, "DictWriter", _dies_mid_line("epoch"))
    with pytest.raises(Killed):
        MetricsLog(tmp_path, 0, tensorboard=False).write({"epoch": 1, "train_loss": 0.5})
    monkeypatch.undo()
    assert not (tmp_path / "metrics.csv").exists()
    log = MetricsLog(tmp_path, 0, tensorboard=False)
    log.write({"epoch": 1, "train_loss": 0.5})
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["epoch,train_loss", "1,0.5"]


def test_half_lines_of_an_earlier_crash_are_dropped_on_resume_and_a_foreign_file_is_one_line(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,train_loss,test_top1_t1\n1,0.5,40\n2,0.25")  # the row of epoch 2 cut
    MetricsLog(tmp_path, 2, tensorboard=False).write({"epoch": 3, "train_loss": 0.125, "test_top1_t1": 70.0})
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["epoch,train_loss,test_top1_t1", "1,0.5,40",
                                                                   "3,0.125,70"]
    (tmp_path / "metrics.csv").write_text("epo")  # a header cut short
    with pytest.raises(SpikeDistillError, match="metrics.csv.*no integer 'epoch' column.*move it aside"):
        MetricsLog(tmp_path, 1, tensorboard=False)
