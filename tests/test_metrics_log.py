import pytest
import torch

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
