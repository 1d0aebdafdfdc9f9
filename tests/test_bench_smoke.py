"""``benchmarks/bench_step.py --device cpu --smoke`` (also ``spikedistill bench``): every case runs
round-robin and prints one parseable JSON line with its ratio to the floor; the run leaves no global state
behind."""

import argparse
import contextlib
import io
import json
import os

import pytest
import torch

from helpers import load_script

pytest.importorskip("triton")

bench = load_script("benchmarks/bench_step.py", "bench_step")
CASES, BenchPlan, bench_records, run_bench, summary_table = (
    bench.CASES, bench.BenchPlan, bench.bench_records, bench.run_bench, bench.summary_table)

MEASURED = [(case, mode) for case in ("ann_floor", "snn_default", "snn_torch", "snn_sequence", "snn_triton")
            for mode in ("eager", "compile")]


def smoke(**options):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert run_bench(argparse.Namespace(device="cpu", smoke=True, **options)) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


@pytest.fixture(scope="module")
def smoke_run():
    return smoke()


def test_smoke_prints_one_json_line_per_case_and_mode(smoke_run):
    records, _ = smoke_run
    keys = [(r["case"], r["mode"]) for r in records]
    assert len(keys) == len(set(keys)) == 2 * len(CASES)  # foreign libraries skipped or measured
    for case, mode in MEASURED:
        assert (case, mode) in keys


def test_smoke_ratios_are_per_round_medians_with_their_spread(smoke_run):
    records, _ = smoke_run
    by_key = {(r["case"], r["mode"]): r for r in records}
    for case, mode in MEASURED:
        record = by_key[(case, mode)]
        assert "skipped" not in record, record
        assert record["ms"] > 0 and record["rounds"] == 3
        assert 0 < record["ratio_min"] <= record["ratio_to_floor"] <= record["ratio_max"]
        assert record["trusted"] == (record["ratio_max"] / record["ratio_min"] <= 1.5)
        if mode == "eager":
            assert record["saved_gb"] > 0 and record["saved_ratio_to_floor"] > 0
    for mode in ("eager", "compile"):
        floor = by_key[("ann_floor", mode)]
        assert floor["ratio_to_floor"] == floor["ratio_min"] == floor["ratio_max"] == 1.0
    # What autograd keeps is device-independent: the one-node recurrence keeps less than the autograd loop.
    assert by_key[("snn_default", "eager")]["saved_gb"] < by_key[("snn_torch", "eager")]["saved_gb"]


def test_smoke_table_states_the_stem_and_every_case(smoke_run):
    records, table = smoke_run
    assert "stem runs once on B images" in table
    measured = [r for r in records if "skipped" not in r]
    assert all(f"| {r['case']} |" in table for r in measured)
    assert summary_table(records) in table


def test_the_bench_step_script_prints_the_same_table(smoke_run, tmp_path, capsys):
    records, _ = smoke_run
    saved = tmp_path / "records.jsonl"
    saved.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert bench.main(["--table", str(saved)]) == 0
    printed = capsys.readouterr().out
    assert printed == summary_table(records) + "\n"
    assert printed.splitlines()[0].startswith("| model | T |")
    assert bench.main(["--table", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.jsonl" in err[0]


def test_spikedistill_bench_runs_the_script_with_its_arguments(smoke_run, tmp_path, capfd):
    """The command line keeps no options of its own: ``spikedistill bench ARGS`` is the script's ``ARGS``."""
    from spikedistill.cli import main

    records, _ = smoke_run
    saved = tmp_path / "records.jsonl"
    saved.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["bench", "--table", str(saved)]) == 0
    assert capfd.readouterr().out == summary_table(records) + "\n"


def test_bench_restores_threads_and_sets_no_environment():
    import torch._dynamo  # noqa: F401  torch's first import of it sets TORCHINDUCTOR_CACHE_DIR; not the bench's doing

    threads, environment = torch.get_num_threads(), dict(os.environ)
    plan = BenchPlan("cpu", models=("small_cnn",), timesteps=(1,), batch=2, cases=("ann_floor", "snn_default"),
                     modes=("eager",), warmup=0, iters=2, threads=1, image_size={"small_cnn": 8}, memory=False)
    records = list(bench_records(plan))
    assert [r["case"] for r in records] == ["ann_floor", "snn_default"]
    assert records[0]["device"].startswith("CPU (") and records[0]["device"].endswith(", 1 threads)")  # as it ran
    assert torch.get_num_threads() == threads
    assert dict(os.environ) == environment


def test_cpu_peak_memory_comes_from_a_child_process_per_case():
    plan = BenchPlan("cpu", models=("small_cnn",), timesteps=(2,), batch=2, cases=("ann_floor", "snn_default"),
                     modes=("eager",), warmup=0, iters=1, image_size={"small_cnn": 8}, memory=True)
    records = {r["case"]: r for r in bench_records(plan)}
    assert records["ann_floor"]["rss_ratio_to_floor"] == 1.0
    assert 0.1 < records["snn_default"]["peak_rss_gb"] < 10  # a whole Python process with torch: GBs, not bytes
    assert 0 <= records["snn_default"]["step_rss_gb"] < records["snn_default"]["peak_rss_gb"]


def test_a_memory_child_reports_its_own_peak_not_the_parents():
    """The child's peak must not include what the benchmark process holds: with 1.5 GB resident here, a
    child that builds a tiny case peaks at a few hundred MB (getrusage's ru_maxrss would read ≥ 1.5 GB,
    the map the child was forked from)."""
    _child_peak_rss_gb = bench._child_peak_rss_gb

    ballast = torch.ones(1_500_000_000 // 4)  # touched: resident in this process
    plan = BenchPlan("cpu", models=("small_cnn",), timesteps=(1,), batch=2, cases=("ann_floor",),
                     modes=("eager",), warmup=0, iters=1, threads=1, image_size={"small_cnn": 8})
    child = _child_peak_rss_gb(plan, "small_cnn", 1, "ann_floor", "eager")
    assert ballast.sum() > 0
    assert 0.05 < child["peak_rss_gb"] < 1.2


def test_folding_batchnorm_into_the_neuron_halves_what_the_network_keeps():
    """The named-only case ``snn_triton_unfolded`` runs every BatchNorm as its own layer: it keeps the
    LIF's u per layer on top of what the folded network (``snn_triton``) keeps."""
    records, _ = smoke(cases=["ann_floor", "snn_triton", "snn_triton_unfolded"], modes=["eager"])
    saved = {r["case"]: r["saved_gb"] for r in records}
    assert saved["ann_floor"] < saved["snn_triton"] < saved["snn_triton_unfolded"]
    assert saved["snn_triton"] < 1.1 * saved["ann_floor"]  # the stem's u is all that is left over
