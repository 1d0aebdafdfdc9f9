"""The CIFAR-10 full-range benchmark (benchmarks/cifar10_fullrange.py), end to end on the CPU.

``--smoke`` runs every stage — ANN teacher, one SNN student per objective, report — on 128 + 128 real
images of CIFAR-10 (JPEG-q75 copy). One smoke run (~30 s on 2 cores) is shared by the tests below.
"""

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from benchmarks.fullrange import budget, profiles, report, state
from spikedistill.errors import SpikeDistillError

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
    saved = json.loads((out / "cifar10_fullrange.json").read_text())
    assert sorted(e["method"] for e in saved["students"].values()) == sorted(profiles.METHODS)
    for method in profiles.METHODS:
        entry = saved["students"][f"{method}-s0"]
        assert entry["timesteps"] == [1, 2, 3, 4]
        assert len(entry["top1"]) == 4 and all(0.0 <= v <= 100.0 for v in entry["top1"])
        assert len(entry["energy_mj"]) == 4 and entry["energy_mj"][0] > 0
        row = next(line for line in md.splitlines() if line.startswith(f"| {method} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert [float(c) for c in cells[1:5]] == pytest.approx([round(v, 2) for v in entry["top1"]], abs=0.006)
    assert len(saved["teacher"]["top1"]) == 1  # an ANN: one step


def test_second_run_skips_finished_stages_and_keeps_results(smoke_run, capsys):
    from conftest import DATA_ROOT

    out, _ = smoke_run
    before = json.loads((out / "cifar10_fullrange.json").read_text())
    assert bench.main(["--smoke", "--out", str(out), "--data-root", str(DATA_ROOT)]) == 0  # the same command again
    printed = capsys.readouterr().out
    assert "twkd-s0: done, skipped" in printed and "teacher: done" in printed and "DONE" in printed
    after = json.loads((out / "cifar10_fullrange.json").read_text())
    assert after["students"] == before["students"]


def _commands(markdown: str) -> list[list[str]]:
    """The words of every command the report lists."""
    return [shlex.split(c) for c in re.findall(r"^  - `(python benchmarks/[^`]*)`$", markdown, flags=re.M)]


def _no_machine_path(words: list[str]) -> bool:
    return not any(os.path.isabs(word.partition("=")[2] or word) for word in words)


def test_report_and_state_hold_no_path_of_the_machine(smoke_run):
    from conftest import DATA_ROOT

    out, _ = smoke_run
    md = (out / "cifar10_fullrange.md").read_text()
    commands = _commands(md)
    assert commands and all(_no_machine_path(words) for words in commands)
    assert commands[0][commands[0].index("--data-root") + 1] == "$DATA"
    assert commands[0][commands[0].index("--out") + 1] == os.path.relpath(out)
    assert str(DATA_ROOT) not in md

    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    written = strings(json.loads((out / "cifar10_fullrange.json").read_text()))
    assert not [s for s in written if os.path.isabs(s) or str(DATA_ROOT) in s]
    assert state.DATA in written  # the recipes' data.root


def test_a_state_with_absolute_paths_renders_without_them(smoke_run, tmp_path):
    """A state recorded before the path rule held: the report applies it when it renders."""
    out, _ = smoke_run
    old = json.loads((out / "cifar10_fullrange.json").read_text())
    old["commands"] = ["python benchmarks/cifar10_fullrange.py --smoke --out /srv/study/out --data-root /srv/data "
                       "--runs=/srv/study/runs --student-set data.root=/srv/data teacher.checkpoint=/srv/t.pt"]
    for entry in old["students"].values():
        entry["config"]["data"]["root"] = "/srv/data"
    report.write_report(old, tmp_path, profiles.PROFILES["gpu"])
    md = (tmp_path / "cifar10_fullrange.md").read_text()
    (words,) = _commands(md)
    assert _no_machine_path(words)
    assert words[words.index("--data-root") + 1] == "$DATA" and "data.root=$DATA" in words
    assert words[words.index("--out") + 1] == os.path.relpath("/srv/study/out")
    assert "--runs=" + os.path.relpath("/srv/study/runs") in words
    assert "teacher.checkpoint=" + os.path.relpath("/srv/t.pt") in words


def test_paths_in_a_command_and_a_recipe_follow_the_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = state.portable_command(
        f"python benchmarks/cifar10_fullrange.py --out {tmp_path / 'results'} --runs runs/cpu --data-root /srv/data "
        f"--log=/srv/logs/study.log --adopt {tmp_path / 'old' / 'cifar10_cpu.json'} --teacher-set optim.lr=0.2")
    assert command == ("python benchmarks/cifar10_fullrange.py --out results --runs runs/cpu --data-root $DATA "
                       f"--log={os.path.relpath('/srv/logs/study.log')} --adopt old/cifar10_cpu.json "
                       "--teacher-set optim.lr=0.2")
    assert state.portable_command(command) == command  # the rule is idempotent: a report may apply it again
    recipe = state.portable_config({"data": {"root": "/srv/data", "subset": None}, "teacher": {"checkpoint":
                                   str(tmp_path / "runs" / "teacher" / "best.pt"), "recipe": None}, "seed": 0})
    assert recipe == {"data": {"root": "$DATA", "subset": None},
                      "teacher": {"checkpoint": "runs/teacher/best.pt", "recipe": None}, "seed": 0}
    assert state.portable_config({"data": {"root": None}}) == {"data": {"root": None}}


def test_a_result_recorded_from_another_folder_counts_as_done(tmp_path):
    args = bench.parse_args(["--profile", "cpu", "--out", str(tmp_path), "--data-root", "/srv/data"])
    cfg = profiles.student_config(args, "skd", 0, None, tmp_path / "runs")
    entry = {"config": cfg.to_dict()}
    entry["config"]["data"]["root"] = "/elsewhere/data"  # the same recipe, run where the data lay elsewhere
    assert state.finished_with(entry, cfg, "skd-s0")
    entry["config"]["optim"]["epochs"] += 1
    assert not state.finished_with(entry, cfg, "skd-s0")


def test_budget_gives_whole_epochs_and_at_least_one():
    assert budget.epochs_for_budget(6.0, 20.0) == 18
    assert budget.epochs_for_budget(6.0, 21.0) == 17   # 17 × 21 s = 357 s ≤ 360 s
    assert budget.epochs_for_budget(0.1, 60.0) == 1


def test_gap_verdict_needs_every_seed_gap_above_seed_noise():
    def row(seeds, top1_at_1):
        return {"seeds": seeds, "top1": [[v] for v in top1_at_1], "mean": [sum(top1_at_1) / len(top1_at_1)],
                "spread": [max(top1_at_1) - min(top1_at_1)]}

    clear = {"twkd": row([0, 1], [90.0, 90.4]), "skd": row([0, 1], [85.0, 85.6])}
    assert "beats skd by more than seed noise" in report.gap_verdict(clear)
    noisy = {"twkd": row([0, 1], [90.0, 86.0]), "skd": row([0, 1], [85.0, 85.6])}
    assert "NOT beyond seed noise" in report.gap_verdict(noisy)
    assert "one seed" in report.gap_verdict({"twkd": row([0], [90.0]), "skd": row([0], [85.0])})


def test_a_state_refuses_a_different_budget(tmp_path):
    args = bench.parse_args(["--out", str(tmp_path), "--budget-minutes", "5.5"])
    study = state.load_state(tmp_path / "s.json")
    study["plan"]["twkd"] = {"epochs": 20, "seconds_per_epoch": 16.0, "budget_minutes": 6.0}
    with pytest.raises(SpikeDistillError, match="another --out"):
        budget.plan_epochs(args, "twkd", None, 5.5, study, tmp_path / "s.json", tmp_path)
    assert budget.plan_epochs(args, "twkd", None, 6.0, study, tmp_path / "s.json", tmp_path)["epochs"] == 20
