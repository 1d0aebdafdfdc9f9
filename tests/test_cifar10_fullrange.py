"""The CIFAR-10 full-range benchmark (benchmarks/cifar10_fullrange.py), end to end on the CPU.

``--smoke`` runs every stage — ANN teacher, one SNN student per objective, report — on 128 + 128 real
images of CIFAR-10 (JPEG-q75 copy). One smoke run (~30 s on 2 cores) is shared by the tests below.
"""

import json
from pathlib import Path

import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]


bench = load_script("benchmarks/cifar10_fullrange.py", "cifar10_fullrange")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from conftest import DATA_ROOT

    if not (DATA_ROOT / "cifar10" / "train_jpeg.npz").is_file():
        pytest.skip(f"CIFAR-10 (JPEG-q75 copy) not found under {DATA_ROOT} (set SPIKEDISTILL_DATA)")
    out = tmp_path_factory.mktemp("fullrange")
    code = bench.main(["--smoke", "--out", str(out), "--data-root", str(DATA_ROOT)])
    return out, code


def test_smoke_run_writes_markdown_and_png_with_every_method_at_every_timestep(smoke_run):
    out, code = smoke_run
    assert code == 0
    md = (out / "cifar10_fullrange.md").read_text()
    png = out / "cifar10_fullrange.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SMOKE RUN" in md and "CIFAR-10 (JPEG-q75 copy)" in md
    state = json.loads((out / "cifar10_fullrange.json").read_text())
    assert sorted(e["method"] for e in state["students"].values()) == sorted(bench.METHODS)
    for method in bench.METHODS:
        entry = state["students"][f"{method}-s0"]
        assert entry["timesteps"] == [1, 2, 3, 4]
        assert len(entry["top1"]) == 4 and all(0.0 <= v <= 100.0 for v in entry["top1"])
        assert len(entry["energy_mj"]) == 4 and entry["energy_mj"][0] > 0
        row = next(line for line in md.splitlines() if line.startswith(f"| {method} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert [float(c) for c in cells[1:5]] == pytest.approx([round(v, 2) for v in entry["top1"]], abs=0.006)
    assert len(state["teacher"]["top1"]) == 1  # an ANN: one step


def test_second_run_skips_finished_stages_and_keeps_results(smoke_run, capsys):
    out, _ = smoke_run
    before = json.loads((out / "cifar10_fullrange.json").read_text())
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "twkd-s0: done, skipped" in printed and "teacher: done" in printed and "DONE" in printed
    after = json.loads((out / "cifar10_fullrange.json").read_text())
    assert after["students"] == before["students"]


def test_command_minutes_stops_before_a_stage_that_would_not_fit(tmp_path, capsys):
    from conftest import DATA_ROOT

    if not (DATA_ROOT / "cifar10" / "train_jpeg.npz").is_file():
        pytest.skip(f"CIFAR-10 (JPEG-q75 copy) not found under {DATA_ROOT}")
    code = bench.main(["--smoke", "--out", str(tmp_path), "--command-minutes", "0.01", "--data-root", str(DATA_ROOT)])
    assert code == bench.INCOMPLETE
    assert "Run the same command again" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "teacher").exists()  # nothing was started


def test_budget_gives_whole_epochs_and_at_least_one():
    assert bench.epochs_for_budget(6.0, 20.0) == 18
    assert bench.epochs_for_budget(6.0, 21.0) == 17   # 17 × 21 s = 357 s ≤ 360 s
    assert bench.epochs_for_budget(0.1, 60.0) == 1


def test_gap_verdict_needs_every_seed_gap_above_seed_noise():
    def row(seeds, top1_at_1):
        return {"seeds": seeds, "top1": [[v] for v in top1_at_1], "mean": [sum(top1_at_1) / len(top1_at_1)],
                "spread": [max(top1_at_1) - min(top1_at_1)]}

    clear = {"twkd": row([0, 1], [90.0, 90.4]), "skd": row([0, 1], [85.0, 85.6])}
    assert "beats skd by more than seed noise" in bench.gap_verdict(clear)
    noisy = {"twkd": row([0, 1], [90.0, 86.0]), "skd": row([0, 1], [85.0, 85.6])}
    assert "NOT beyond seed noise" in bench.gap_verdict(noisy)
    assert "one seed" in bench.gap_verdict({"twkd": row([0], [90.0]), "skd": row([0], [85.0])})


def test_a_state_refuses_a_different_budget(tmp_path):
    args = bench.parse_args(["--out", str(tmp_path), "--budget-minutes", "5.5"])
    state = bench.load_state(tmp_path / "s.json")
    state["plan"]["twkd"] = {"epochs": 20, "seconds_per_epoch": 16.0, "budget_minutes": 6.0}
    with pytest.raises(bench.SpikeDistillError, match="another --out"):
        bench.plan_epochs(args, "twkd", None, 5.5, state, tmp_path / "s.json", tmp_path)
    assert bench.plan_epochs(args, "twkd", None, 6.0, state, tmp_path / "s.json", tmp_path)["epochs"] == 20
