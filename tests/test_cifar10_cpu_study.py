"""The two-CPU-core CIFAR-10 study (``benchmarks/cifar10_fullrange.py --profile cpu``).

Its recipes are checked as data; its smoke mode (128 + 128 real images of CIFAR-10 (JPEG-q75 copy), a
narrow small_cnn, skd and twkd over two seeds) runs once for the tests below, after an interruption
staged by hand: the teacher finished, one student stopped half-way with only its ``latest.pt``.
"""

import json
from pathlib import Path

import pytest

from benchmarks.fullrange import profiles, report, state
from spikedistill.errors import SpikeDistillError

from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
SMOKE_ARGS = ["--profile", "cpu", "--smoke", "--methods", "skd", "twkd", "--seeds", "0", "1"]


bench = load_script("benchmarks/cifar10_fullrange.py", "cifar10_fullrange_cpu")


def test_cpu_recipes_differ_only_in_the_objective():
    from spikedistill.train.config import load_config

    profile = profiles.PROFILES["cpu"]
    students = {m: load_config(ROOT / path).to_dict() for m, path in profile.students.items()}
    assert students["twkd"]["loss"] == {"name": "twkd", "options": {"alpha": 0.2, "beta": 0.5, "tau": 3.0,
                                                                     "sd_target": "correct_mean"}}
    assert students["twkd_mean"]["loss"]["options"]["sd_target"] == "mean"
    assert students["skd"]["loss"] == {"name": "skd", "options": {"alpha": 0.2, "tau": 3.0}}
    rest = [{k: v for k, v in cfg.items() if k not in ("loss", "teacher")} for cfg in students.values()]
    assert all(cfg == rest[0] for cfg in rest)  # same SNN, data, schedule, T and seed for every objective
    assert rest[0]["model"]["options"]["widths"] == [32, 64, 128] and rest[0]["timesteps"] == 4
    assert rest[0]["data"]["augment"]["autoaugment"] is False and rest[0]["data"]["augment"]["cutout"] == 0
    teacher = load_config(ROOT / profile.teacher)
    assert teacher.model.spiking is False and teacher.model.options["widths"] == [32, 64, 128]
    assert teacher.data.subset == rest[0]["data"]["subset"]


def test_cpu_plan_puts_the_two_seed_comparison_first():
    args = bench.parse_args(["--profile", "cpu"])
    plan = profiles.student_plan(args)
    assert plan[:4] == [("skd", 0), ("twkd", 0), ("skd", 1), ("twkd", 1)]
    # one seed of every claimed comparison before any second seed, then the one-seed baselines
    assert plan[4:8] == [("tser", 0), ("ckdsnn", 0), ("ce", 0), ("tssd", 0)]
    assert plan[8:12] == [("tser", 1), ("ckdsnn", 1), ("ce", 1), ("tssd", 1)]
    assert sorted(m for m, _ in plan[12:]) == ["dkd", "dkd", "tet", "twce", "twkd_mean"]
    assert {m for m, _ in plan} == set(profiles.PROFILES["cpu"].students)
    with pytest.raises(SpikeDistillError, match="not in the gpu profile"):
        profiles.student_plan(bench.parse_args(["--profile", "gpu", "--methods", "twce"]))


@pytest.fixture(scope="module")
def interrupted_then_finished(tmp_path_factory):
    from spikedistill.train.loop import train

    from conftest import DATA_ROOT

    if not (DATA_ROOT / "cifar10" / "train_jpeg.npz").is_file():
        pytest.skip(f"CIFAR-10 (JPEG-q75 copy) not found under {DATA_ROOT} (set SPIKEDISTILL_DATA)")
    out = tmp_path_factory.mktemp("cpu_study")
    argv = SMOKE_ARGS + ["--out", str(out), "--data-root", str(DATA_ROOT)]
    assert bench.main(argv + ["--stage", "teacher"]) == 0
    # A student cut off after 2 of its 4 steps: what Ctrl-C or a killed job leaves behind.
    args = bench.parse_args(SMOKE_ARGS + ["--out", str(out), "--data-root", str(out / "smoke_data")])
    runs = out / "runs"
    half = train(profiles.student_config(args, "twkd", 1, profiles.SMOKE["epochs"]["student"], runs), runs / "twkd-s1",
                 stop_after_steps=2, verbose=False)
    assert half["stopped"] and json.loads((runs / "state.json").read_text())["students"] == {}
    log = out / "study.log"
    code = bench.main(argv + ["--log", str(log)])
    return out, code, log.read_text()


def test_study_resumes_the_interrupted_student_and_skips_the_finished_teacher(interrupted_then_finished):
    out, code, log = interrupted_then_finished
    assert code == 0
    assert "teacher: done" in log and "twkd-s1: 1 epochs (resuming)" in log and "DONE" in log
    assert "skd-s0: 1 epochs →" in log  # not resuming: it had not started
    metrics = (out / "runs" / "twkd-s1" / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 2  # header + the one epoch, finished after the resume


def test_study_writes_the_published_json_with_exactly_its_keys(interrupted_then_finished):
    out, _, _ = interrupted_then_finished
    result = json.loads((out / "cifar10_cpu.json").read_text())
    assert set(result) == {"dataset", "max_timesteps", "teacher_top1", "machine", "commit", "runs", "claims"}
    assert [(c["method"], c["baseline"], c["timesteps"]) for c in result["claims"]] == [
        ("twkd", "skd", 1), ("tssd", "ce", 4), ("tser", "skd", 4), ("ckdsnn", "skd", 4)]
    twkd = result["claims"][0]
    assert len(twkd["gaps"]) == 2 and twkd["verdict"] in ("holds", "reversed", "not shown")
    assert all(c["verdict"] == "not run" for c in result["claims"][1:])  # only skd and twkd ran
    assert result["dataset"].startswith("CIFAR-10 (JPEG-q75 copy)") and "SMOKE" in result["dataset"]
    assert result["max_timesteps"] == 4 and 0.0 <= result["teacher_top1"] <= 100.0
    assert [(r["method"], r["seed"]) for r in result["runs"]] == [("skd", 0), ("skd", 1), ("twkd", 0), ("twkd", 1)]
    for run in result["runs"]:
        assert set(run) == {"method", "seed", "top1", "energy_uj", "epochs", "train_seconds"}
        assert list(run["top1"]) == ["1", "2", "3", "4"] and list(run["energy_uj"]) == ["1", "2", "3", "4"]
        assert all(0.0 <= v <= 100.0 for v in run["top1"].values())
        assert run["energy_uj"]["1"] > 0 and run["epochs"] == 1 and run["train_seconds"] > 0
    saved = json.loads((out / "runs" / "state.json").read_text())
    for run in result["runs"]:  # the published numbers are the state's, rounded
        entry = saved["students"][f"{run['method']}-s{run['seed']}"]
        assert run["top1"]["1"] == pytest.approx(entry["top1"][0], abs=0.006)
        assert run["energy_uj"]["4"] == pytest.approx(entry["energy_mj"][3] * 1e3, abs=6e-4)


def test_study_report_states_the_rule_applies_it_and_draws_the_curves(interrupted_then_finished):
    out, _, _ = interrupted_then_finished
    md = (out / "cifar10_cpu.md").read_text()
    assert "SMOKE RUN" in md and "Rule: twkd *holds its accuracy at small T*" in md
    assert ("beats skd by more than seed noise" in md) != ("NOT beyond seed noise" in md)  # a verdict, exactly one
    assert "--profile cpu --smoke" in md  # the exact command
    assert (out / "cifar10_cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_verdict_for_two_seeds_follows_the_rule():
    def row(seeds, top1_at_1):
        return {"seeds": seeds, "top1": [[v] for v in top1_at_1], "mean": [sum(top1_at_1) / len(top1_at_1)],
                "spread": [max(top1_at_1) - min(top1_at_1)]}

    # gaps +5.0 and +4.9 against a seed range of 0.6: holds
    holds = report.gap_verdict({"twkd": row([0, 1], [60.0, 60.5]), "skd": row([0, 1], [55.0, 55.6])})
    assert "holds its accuracy at small T" in holds and "+5.00, +4.90" in holds
    # gaps +0.5 and +0.5 against a range of 0.6: not shown
    assert "NOT beyond seed noise" in report.gap_verdict({"twkd": row([0, 1], [55.5, 56.1]),
                                                          "skd": row([0, 1], [55.0, 55.6])})


def test_a_result_of_another_recipe_is_not_taken_as_done(interrupted_then_finished):
    out, _, _ = interrupted_then_finished
    args = bench.parse_args(SMOKE_ARGS + ["--out", str(out), "--data-root", str(out / "smoke_data")])
    entry = json.loads((out / "runs" / "state.json").read_text())["students"]["skd-s0"]
    runs = out / "runs"
    assert state.finished_with(entry, profiles.student_config(args, "skd", 0, 1, runs), "skd-s0")
    assert not state.finished_with(entry, profiles.student_config(args, "skd", 0, 2, runs), "skd-s0")  # epochs edited


def _row(seeds, top1_per_seed):
    """A summarize() row from per-seed top-1 lists (k = 1..len)."""
    cols = list(zip(*top1_per_seed))
    return {"seeds": seeds, "top1": top1_per_seed, "mean": [sum(c) / len(c) for c in cols],
            "spread": [max(c) - min(c) for c in cols]}


@pytest.mark.parametrize("ours, verdict", [
    ([[0, 0, 0, 62.0], [0, 0, 0, 62.4]], "holds"),       # gaps +2.0, +2.1 > range 0.5
    ([[0, 0, 0, 58.0], [0, 0, 0, 58.3]], "reversed"),    # gaps −2.0, −2.2 < −0.5
    ([[0, 0, 0, 60.3], [0, 0, 0, 60.6]], "not shown"),   # gaps +0.3, +0.1 within the range
    ([[0, 0, 0, 61.0], [0, 0, 0, 59.0]], "not shown"),   # the method's own range (2.0) swallows its gaps
])
def test_claim_follows_the_rule_at_its_k(ours, verdict):
    table = {"tser": _row([0, 1], ours), "skd": _row([0, 1], [[0, 0, 0, 60.0], [0, 0, 0, 60.5]])}
    c = report.claim(table, "tser", "skd", 4)
    assert c["verdict"] == verdict
    assert c["gaps"] == [round(ours[0][3] - 60.0, 2), round(ours[1][3] - 60.5, 2)]
    assert c["seed_range"] == round(max(0.5, abs(ours[1][3] - ours[0][3])), 2)


def test_each_method_is_one_row_even_when_the_profile_lists_ce():
    table = {m: {} for m in ("ce", "skd", "tssd", "ghost")}
    assert report.method_order(table, profiles.PROFILES["cpu"]) == ["skd", "ce", "tssd"]


def test_claim_with_one_seed_or_no_run_gives_no_verdict():
    skd = _row([0, 1], [[50.0, 0, 0, 60.0], [51.0, 0, 0, 60.5]])
    one = report.claim({"ckdsnn": _row([0], [[0, 0, 0, 70.0]]), "skd": skd}, "ckdsnn", "skd", 4)
    assert one["verdict"] == "not shown" and one["gaps"] == [10.0] and one["seed_range"] is None
    assert report.claim({"skd": skd}, "ckdsnn", "skd", 4)["verdict"] == "not run"


def test_adopted_runs_count_as_done_and_are_marked(interrupted_then_finished, tmp_path):
    out, _, _ = interrupted_then_finished
    args = bench.parse_args(SMOKE_ARGS + ["--out", str(tmp_path), "--data-root", str(out / "smoke_data")])
    study = state.load_state(tmp_path / "state.json")
    published = out / "cifar10_cpu.json"
    args.smoke = False  # the smoke runs trained 1 epoch: against the recipes' own 8, nothing is adopted
    assert state.adopt_published(args, published, study, tmp_path) == []
    args.smoke = True
    runs = json.loads(published.read_text())["runs"]
    runs[0]["epochs"] = 5  # a run of another schedule than the smoke plan's one epoch: not adopted
    edited = tmp_path / "published.json"
    edited.write_text(json.dumps({**json.loads(published.read_text()), "runs": runs}))
    assert state.adopt_published(args, edited, study, tmp_path) == ["skd-s1", "twkd-s0", "twkd-s1"]
    entry = study["students"]["twkd-s1"]
    assert entry["adopted"].startswith("published.json at commit") and entry["wall_seconds"] is None
    assert ", teacher " in entry["adopted"] and entry["adopted"].endswith(" %")  # its teacher, to set beside ours
    assert entry["top1"] == [runs[3]["top1"][k] for k in ("1", "2", "3", "4")]
    # the config the students stage builds for it (planned epochs, eval_every) counts it as done
    cfg = profiles.student_config(args, "twkd", 1, profiles.SMOKE["epochs"]["student"], tmp_path)
    assert state.finished_with(entry, cfg, "twkd-s1")  # the study will not train it again
    assert state.adopt_published(args, edited, study, tmp_path) == []  # already in the state
    with pytest.raises(SpikeDistillError, match="no such file"):
        state.adopt_published(args, tmp_path / "missing.json", study, tmp_path)


def test_a_study_given_adopt_trains_only_what_the_file_lacks(interrupted_then_finished, tmp_path):
    from conftest import DATA_ROOT

    out, _, _ = interrupted_then_finished
    log = tmp_path / "adopt.log"
    argv = SMOKE_ARGS + ["--out", str(tmp_path), "--data-root", str(DATA_ROOT), "--log", str(log),
                         "--adopt", str(out / "cifar10_cpu.json")]
    assert bench.main(argv) == 0
    text = log.read_text()
    assert "adopted from cifar10_cpu.json" in text and "DONE" in text
    assert all(f"{key}: done, skipped" in text for key in ("skd-s0", "skd-s1", "twkd-s0", "twkd-s1"))
    assert not any(f"== {key}" in text for key in ("skd-s0", "skd-s1", "twkd-s0", "twkd-s1"))  # none trained
    md = (tmp_path / "cifar10_cpu.md").read_text()
    assert "| twkd-s1 ‡ |" in md and "Taken from an earlier sitting's published results" in md


def test_a_bad_log_path_or_a_damaged_state_is_one_error_line(tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder\n")
    assert bench.main([*SMOKE_ARGS, "--out", str(tmp_path / "out"), "--log", str(tmp_path / "a_file" / "study.log"),
                       "--plan-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "a_file" in err
    runs = tmp_path / "out" / "runs"
    runs.mkdir(parents=True)
    (runs / "state.json").write_text("{half a state")
    assert bench.main([*SMOKE_ARGS, "--out", str(tmp_path / "out"), "--plan-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "state.json" in err and "damaged" in err


def test_published_study_holds_every_planned_run_and_its_claims_follow_from_them(tmp_path):
    published = ROOT / "results" / "cifar10_cpu.json"
    args = bench.parse_args(["--profile", "cpu", "--out", str(tmp_path)])
    study = {"students": {}}
    # read the way a resumed study reads it: every run still matches its recipe, and the plan is complete
    taken = state.adopt_published(args, published, study, tmp_path)
    assert sorted(taken) == sorted(f"{m}-s{s}" for m, s in profiles.PROFILES["cpu"].plan)
    claims = json.loads(published.read_text())["claims"]
    assert claims == report.claims(report.summarize(study))
    assert all(c["verdict"] != "not run" for c in claims)
