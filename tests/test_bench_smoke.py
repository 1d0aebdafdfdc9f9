"""``spikedistill bench --device cpu --smoke``: every case runs and prints one parseable JSON line."""

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("triton")

from spikedistill.bench import run_bench  # noqa: E402

MEASURED = [(case, mode) for case in ("ann_floor", "snn_torch", "snn_sequence", "snn_triton")
            for mode in ("eager", "compile")]


@pytest.fixture(scope="module")
def smoke_records():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_bench(argparse.Namespace(device="cpu", smoke=True)) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_smoke_prints_one_json_line_per_case_and_mode(smoke_records):
    keys = [(r["case"], r["mode"]) for r in smoke_records]
    assert len(keys) == len(set(keys)) == 10  # 5 cases × eager/compile, SpikingJelly skipped or measured
    for case, mode in MEASURED:
        assert (case, mode) in keys


def test_smoke_ratios_and_times_are_positive(smoke_records):
    by_key = {(r["case"], r["mode"]): r for r in smoke_records}
    for case, mode in MEASURED:
        record = by_key[(case, mode)]
        assert "skipped" not in record, record
        assert record["ms"] > 0 and record["ratio_to_floor"] > 0
        if mode == "eager":
            assert record["saved_gb"] > 0 and record["saved_ratio_to_floor"] > 0
    for mode in ("eager", "compile"):
        assert by_key[("ann_floor", mode)]["ratio_to_floor"] == 1.0
    for record in smoke_records:
        assert "skipped" in record or record["case"] == "spikingjelly" or record["ms"] > 0
    # What autograd keeps is device-independent: the one-node recurrence keeps less than the autograd loop.
    assert by_key[("snn_sequence", "eager")]["saved_gb"] < by_key[("snn_torch", "eager")]["saved_gb"]


def test_markdown_table_has_a_row_per_case(smoke_records):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_step.py"
    spec = importlib.util.spec_from_file_location("bench_step", path)
    bench_step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_step)
    table = bench_step.markdown_table(smoke_records).splitlines()
    measured_cases = {r["case"] for r in smoke_records if "skipped" not in r}
    assert len(table) == 2 + len(measured_cases)
    assert any("snn_triton" in line and "×" in line for line in table)


def test_folding_batchnorm_into_the_neuron_halves_what_the_network_keeps():
    """The named-only case ``snn_triton_unfolded`` runs every BatchNorm as its own layer: it keeps the
    LIF's u per layer on top of what the folded network (the default ``snn_triton``) keeps."""
    import contextlib
    import io

    out = io.StringIO()
    args = argparse.Namespace(device="cpu", smoke=True, cases=["ann_floor", "snn_triton", "snn_triton_unfolded"],
                              modes=["eager"])
    with contextlib.redirect_stdout(out):
        assert run_bench(args) == 0
    saved = {r["case"]: r["saved_gb"] for r in map(json.loads, out.getvalue().splitlines())}
    assert saved["ann_floor"] < saved["snn_triton"] < saved["snn_triton_unfolded"]
    assert saved["snn_triton"] < 1.1 * saved["ann_floor"]  # the stem's u is all that is left over
