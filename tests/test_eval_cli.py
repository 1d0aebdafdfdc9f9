import json

import pytest
import torch

import spikedistill as sd
from spikedistill.checkpoint import model_spec, save_checkpoint
from spikedistill.cli import main
from spikedistill.evaluate.cli import parse_timesteps

pytest.importorskip("sklearn")  # the 'digits' dataset ships with scikit-learn


def _checkpoint(path, spiking=True, **options):
    torch.manual_seed(0)
    net = sd.create_model("small_cnn", spiking=spiking, num_classes=10, in_channels=1, **options)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.bias.data.fill_(0.5)  # enough drive that the untrained net spikes
    config = {"data": {"name": "digits", "root": None}, "timesteps": 3, "max_timesteps": 3}
    save_checkpoint(path, model=net, spec=model_spec("small_cnn", spiking, 10, in_channels=1, **options), config=config)
    return net


def test_eval_writes_the_spec_json_pictures_and_early_exit(tmp_path, capsys):
    student = _checkpoint(tmp_path / "student.pt")
    _checkpoint(tmp_path / "teacher.pt", spiking=False)
    out = tmp_path / "eval" / "report.json"
    code = main(["eval", str(tmp_path / "student.pt"), "--timesteps", "1-3", "--json", str(out), "--limit", "96",
                 "--device", "cpu", "--teacher", str(tmp_path / "teacher.pt"), "--early-exit", "0.3,0.9,1.0"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["timesteps"] == [1, 2, 3]
    for key in ("top1", "sops", "energy_mj", "firing_rate"):
        assert len(report[key]) == 3
    assert report["energy_mj"][0] < report["energy_mj"][1] < report["energy_mj"][2]
    assert {"layers", "neurons", "energy_policy", "early_exit", "teacher"} <= set(report)
    assert report["teacher"]["energy_mj"] == pytest.approx(4.6e-9 * report["teacher"]["macs"])
    # Same numbers as the training loop's full-range accuracy on the same 96 test digits.
    from spikedistill.data import batches, load_dataset, stratified_indices

    test = load_dataset("digits", split="test")
    test = test.subset(stratified_indices(test.labels, 96))  # what --limit 96 scores
    expected = sd.fullrange_accuracy(student.eval(), batches(test, 256, shuffle=False), max_timesteps=3)
    assert report["top1"] == pytest.approx(list(expected.values()))
    for picture in ("fullrange.png", "earlyexit.png"):
        assert (out.parent / picture).stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "early exit" in printed and "energy mJ" in printed


def test_eval_bad_input_is_one_clear_line(tmp_path, capsys):
    _checkpoint(tmp_path / "student.pt")
    assert main(["eval", str(tmp_path / "student.pt"), "--timesteps", "3-1", "--no-plot"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --timesteps range")
    assert main(["eval", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_parse_timesteps_accepts_ranges_and_counts():
    assert parse_timesteps("1-6", 4) == (1, 6)
    assert parse_timesteps("4", 2) == (1, 4)
    assert parse_timesteps(None, 5) == (1, 5)


def test_export_cli_writes_nir_and_refuses_soft_reset(tmp_path, capsys):
    pytest.importorskip("nir")
    _checkpoint(tmp_path / "hard.pt")
    assert main(["export", str(tmp_path / "hard.pt"), "--format", "nir", "--out", str(tmp_path / "net.nir")]) == 0
    assert (tmp_path / "net.nir").stat().st_size > 0
    _checkpoint(tmp_path / "soft.pt", v_reset=None)
    assert main(["export", str(tmp_path / "soft.pt"), "--format", "nir", "--out", str(tmp_path / "soft.nir")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "soft reset" in err and len(err.splitlines()) == 1


def test_an_snn_given_as_teacher_is_reported_as_an_snn_at_the_students_timesteps(tmp_path, capsys):
    """``eval teacher.pt --teacher student.pt``: the reference is what it is, never printed as an "ANN teacher"."""
    _checkpoint(tmp_path / "ann.pt", spiking=False)
    _checkpoint(tmp_path / "snn.pt")
    out = tmp_path / "report.json"
    assert main(["eval", str(tmp_path / "ann.pt"), "--teacher", str(tmp_path / "snn.pt"), "--limit", "64",
                 "--device", "cpu", "--json", str(out), "--no-plot"]) == 0
    printed = capsys.readouterr().out
    assert "SNN teacher small_cnn at T=1" in printed and "ANN teacher" not in printed
    assert json.loads(out.read_text())["teacher"]["kind"] == "SNN"


def test_eval_scores_the_whole_test_split_unless_limited_and_says_how_many(tmp_path, capsys):
    """The training recipe's data.test_subset (a quick per-epoch test) is not what eval reports."""
    _checkpoint(tmp_path / "student.pt")
    ckpt = torch.load(tmp_path / "student.pt", weights_only=True)
    ckpt["config"]["data"]["test_subset"] = 32
    torch.save(ckpt, tmp_path / "student.pt")
    from spikedistill.data import load_dataset

    whole = len(load_dataset("digits", split="test"))
    out = tmp_path / "report.json"
    assert main(["eval", str(tmp_path / "student.pt"), "--device", "cpu", "--json", str(out), "--no-plot"]) == 0
    assert json.loads(out.read_text())["samples"] == whole > 32
    assert f"all {whole} samples scored" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "student.pt"), "--device", "cpu", "--limit", "40", "--no-plot"]) == 0
    assert f"a class-stratified 40 of {whole} samples scored" in capsys.readouterr().out


def test_eval_limit_scores_every_class_in_its_share_of_a_split_stored_grouped_by_class(tmp_path, capsys):
    """A model that always answers class 0, on a split stored as 60 zeros then 60 ones then 60 twos: the
    first 60 samples would score 100 %; a representative 60 score a third."""
    import numpy as np

    torch.manual_seed(0)
    net = sd.create_model("small_cnn", spiking=False, num_classes=3, in_channels=1)
    with torch.no_grad():
        net.fc.weight.zero_()
        net.fc.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    save_checkpoint(tmp_path / "zero.pt", model=net, spec=model_spec("small_cnn", False, 3, in_channels=1))
    data = tmp_path / "grouped.npz"
    images = np.random.default_rng(0).integers(0, 256, (180, 8, 8, 1), dtype=np.uint8)
    np.savez(data, x=images, y=np.repeat(np.arange(3), 60))
    out = tmp_path / "report.json"
    assert main(["eval", str(tmp_path / "zero.pt"), "--data", "npz", "--data-root", str(data), "--limit", "60",
                 "--device", "cpu", "--json", str(out), "--no-plot"]) == 0
    assert json.loads(out.read_text())["top1"] == [pytest.approx(100 / 3)]
    assert "a class-stratified 60 of 180 samples scored" in capsys.readouterr().out


def test_stratified_indices_keep_each_class_share_in_stored_order():
    from spikedistill.data import stratified_indices

    labels = torch.tensor([0] * 10 + [1] * 10 + [2] * 5)
    chosen = stratified_indices(labels, 10)
    assert torch.bincount(labels[chosen]).tolist() == [4, 4, 2]
    assert chosen.tolist() == sorted(chosen.tolist()) and len(set(chosen.tolist())) == 10
    assert stratified_indices(labels, 100).tolist() == list(range(25))


def test_the_memory_bound_lets_ordinary_ranges_run(tmp_path, capsys):
    """The bound on T refuses what cannot fit, not what can: T = 64 of a small net runs."""
    _checkpoint(tmp_path / "student.pt")
    assert main(["eval", str(tmp_path / "student.pt"), "--timesteps", "1-64", "--limit", "16", "--device", "cpu",
                 "--no-plot"]) == 0
    assert " 64 " in capsys.readouterr().out


def test_a_picture_format_is_checked_before_the_evaluation_runs(tmp_path, capsys, monkeypatch):
    import spikedistill.evaluate.cli as eval_cli

    ran = []
    monkeypatch.setattr(eval_cli, "fullrange_report", lambda *a, **k: ran.append(1))
    _checkpoint(tmp_path / "student.pt")
    assert main(["eval", str(tmp_path / "student.pt"), "--plot", str(tmp_path / "out.xyz"), "--limit", "8"]) == 2
    assert "'xyz'" in capsys.readouterr().err and not ran


def test_a_missing_matplotlib_is_said_before_the_evaluation_runs(tmp_path, capsys, monkeypatch):
    import importlib.util

    import spikedistill.evaluate.cli as eval_cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    ran = []
    monkeypatch.setattr(eval_cli, "fullrange_report", lambda *a, **k: ran.append(1))
    _checkpoint(tmp_path / "student.pt")
    assert main(["eval", str(tmp_path / "student.pt"), "--limit", "8", "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "--no-plot" in err and not ran


def test_eval_writes_no_picture_unless_asked(tmp_path, capsys, monkeypatch):
    """A plain ``eval`` prints its table and leaves the working folder as it was; ``--plot FILE`` draws
    there (with ``earlyexit.png`` beside it); ``--json`` alone draws beside the JSON."""
    _checkpoint(tmp_path / "student.pt")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["eval", str(tmp_path / "student.pt"), "--limit", "16", "--device", "cpu", "--early-exit"]) == 0
    assert "energy mJ" in capsys.readouterr().out
    assert list(work.iterdir()) == []
    picture = tmp_path / "pictures" / "curve.png"
    assert main(["eval", str(tmp_path / "student.pt"), "--limit", "16", "--device", "cpu", "--early-exit",
                 "--plot", str(picture)]) == 0
    assert picture.stat().st_size > 10_000 and (picture.parent / "earlyexit.png").stat().st_size > 10_000
    assert list(work.iterdir()) == []
    out = tmp_path / "eval" / "report.json"
    assert main(["eval", str(tmp_path / "student.pt"), "--limit", "16", "--device", "cpu", "--json", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["fullrange.png", "report.json"]
    assert list(work.iterdir()) == []


def test_an_ann_is_said_to_run_one_pass_without_timesteps(tmp_path, capsys):
    _checkpoint(tmp_path / "ann.pt", spiking=False)  # its recipe said timesteps: 3
    assert main(["eval", str(tmp_path / "ann.pt"), "--device", "cpu", "--limit", "16", "--no-plot"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "one pass of the ANN (no timesteps)" in first and "T=" not in first

