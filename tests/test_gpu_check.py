"""``benchmarks/gpu_check.py OUT --smoke``: the GPU check's every part runs on a CPU at toy sizes (the
Triton kernels under their interpreter, set by conftest) and writes its JSON and markdown."""

import json
import os

import pytest

from helpers import load_script

pytest.importorskip("triton")

gpu_check = load_script("benchmarks/gpu_check.py", "gpu_check")


def test_the_gpu_check_smoke_writes_every_part(tmp_path, data_root, monkeypatch):
    monkeypatch.setenv("SPIKEDISTILL_DATA", str(data_root))
    assert os.environ.get("TRITON_INTERPRET") == "1"  # conftest, on a machine without CUDA
    assert gpu_check.main([str(tmp_path), "--smoke"]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    parity, steps, training = (report["parts"][p] for p in ("parity", "steps", "training"))
    assert parity["all_passed"] and parity["checks"] == 20 and not parity["failed"]
    cases = {r["case"] for r in steps["records"] if "skipped" not in r}
    assert {"ann_floor", "snn_default", "snn_torch", "snn_triton"} <= cases
    assert [run["returncode"] for run in training["runs"].values()] == [0, 0]
    assert sorted(training["time_to_accuracy"]) == ["1", "2"]  # every k of the student, T = 2
    assert training["runs"]["student"]["epochs"][0]["seconds"] > 0
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert "CPU smoke: not a measurement" in markdown and "20/20 checks passed" in markdown


def test_the_gpu_check_refuses_a_machine_without_cuda_in_one_line(tmp_path, capsys):
    if gpu_check.torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the check would run")
    assert gpu_check.main([str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()  # refused before anything was written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a CUDA GPU" in err[0] and "--smoke" in err[0]
