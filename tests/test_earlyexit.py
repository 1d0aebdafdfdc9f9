import pytest
import torch

import spikedistill as sd
from spikedistill.evaluate.earlyexit import early_exit_sweep, exit_steps, format_early_exit
from spikedistill.evaluate.report import fullrange_report


def test_each_sample_exits_at_its_first_confident_step():
    confidence = torch.tensor([[0.95, 0.5, 0.3, 0.2],
                               [0.97, 0.85, 0.4, 0.3],
                               [0.99, 0.92, 0.6, 0.3]])
    correct = torch.tensor([[False, True, True, False],
                            [True, True, False, False],
                            [True, False, True, True]])
    energy = torch.arange(1.0, 4.0).view(3, 1).expand(3, 4)  # each step costs 1 mJ
    assert exit_steps(confidence, 0.9).tolist() == [0, 2, 2, 2]
    sweep = early_exit_sweep(confidence, correct, energy, thresholds=(0.9, 0.8, 0.1))
    # 0.9: sample 0 exits at step 1 (wrong), samples 1..3 run to step 3 (wrong, right, right)
    # 0.8: sample 1 now exits at step 2, where it is right
    assert sweep["top1"] == pytest.approx([50.0, 75.0, 50.0])
    assert sweep["mean_timesteps"] == pytest.approx([(1 + 3 + 3 + 3) / 4, (1 + 2 + 3 + 3) / 4, 1.0])
    assert sweep["energy_mj"] == pytest.approx(sweep["mean_timesteps"])
    assert "threshold" in format_early_exit(sweep).splitlines()[0]


def test_thresholds_outside_unit_interval_are_refused():
    with pytest.raises(sd.SpikeDistillError, match=r"\(0, 1\]"):
        early_exit_sweep(torch.ones(2, 3), torch.ones(2, 3, dtype=torch.bool), thresholds=(1.5,))


def test_report_early_exit_spans_step_one_to_fixed_t_max():
    torch.manual_seed(1)
    net = sd.create_model("small_cnn", num_classes=10).eval()
    x, y = torch.randn(16, 1, 8, 8) * 2, torch.randint(0, 10, (16,))
    report = fullrange_report(net, [(x[:9], y[:9]), (x[9:], y[9:])], 4, early_exit_thresholds=[0.05, 0.5, 1.0])
    sweep = report["early_exit"]
    # Below 1/K every running prediction is confident at step 1: exactly the k = 1 numbers.
    assert sweep["mean_timesteps"][0] == 1.0
    assert sweep["top1"][0] == pytest.approx(report["top1"][0])
    assert sweep["energy_mj"][0] == pytest.approx(report["energy_mj"][0])
    # Higher thresholds never stop earlier, so they cost at least as much.
    assert sweep["mean_timesteps"] == sorted(sweep["mean_timesteps"])
    assert sweep["energy_mj"] == sorted(sweep["energy_mj"])
    assert sweep["energy_mj"][-1] <= report["energy_mj"][-1] + 1e-15
