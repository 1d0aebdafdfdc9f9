"""`spikedistill demo` writes report.json in the SPEC.md format and the full-range picture."""

import json
from types import SimpleNamespace

import torch

from spikedistill.train.demo import run_demo


def test_demo_writes_the_spec_report_and_plot(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        code = run_demo(SimpleNamespace(out=str(tmp_path), seed=0, quick=True))  # 1 epoch each: format, not accuracy
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dataset"] == "digits" and report["max_timesteps"] == 4
    assert {"teacher", "skd", "twkd"} <= set(report["results"])
    for method, entry in report["results"].items():
        assert list(entry["top1"]) == ["1", "2", "3", "4"], method
        assert all(0.0 <= v <= 100.0 for v in entry["top1"].values())
    teacher = report["results"]["teacher"]["top1"]
    assert len(set(teacher.values())) == 1  # an ANN: one accuracy, repeated for every timestep
    png = (tmp_path / "fullrange.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    printed = capsys.readouterr().out
    assert "T=1" in printed and "twkd" in printed and "skd" in printed
    assert (tmp_path / "twkd" / "best.pt").is_file()
