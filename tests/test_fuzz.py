"""Fuzzing the parsers of user files: recipes, ``key=value`` overrides, event files, checkpoints.

Whatever the bytes, a parser either returns its result or raises :class:`SpikeDistillError` (one line),
quickly — never another exception, never a hang. Bounded: few examples each, a deadline per example,
no shrinking database on disk; the whole file runs in seconds.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spikedistill as sd
from spikedistill.checkpoint import load_checkpoint, model_spec, save_checkpoint
from spikedistill.data.events import (
    EVENT_DTYPE,
    read_aedat2_raw,
    read_aedat3_polarity,
    read_cifar10dvs,
    read_dvs_gesture,
    read_gesture_labels,
    read_nmnist,
)
from spikedistill.errors import SpikeDistillError
from spikedistill.train.config import Config, config_from_dict, load_config, parse_override

pytestmark = pytest.mark.timeout(60)  # a parser that loops forever fails here instead of hanging CI

FUZZ = settings(max_examples=30, deadline=2000, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FUZZ_EACH_READER = settings(FUZZ, max_examples=15)  # × 6 readers × 3 kinds of damage


def only_clean_errors(call):
    """Run ``call``; a SpikeDistillError must be one line. Any other exception fails the test."""
    try:
        return call()
    except SpikeDistillError as exc:
        assert "\n" not in str(exc), str(exc)
        return None


# --- recipes and overrides ------------------------------------------------------------------------

def _schema_keys(cls=Config, prefix="") -> list[str]:
    import dataclasses

    keys = []
    for f in dataclasses.fields(cls):
        keys.append(prefix + f.name)
        if dataclasses.is_dataclass(f.default_factory if callable(f.default_factory) else None):
            keys += _schema_keys(f.default_factory, prefix + f.name + ".")
    return keys


KEYS = _schema_keys()
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["sgd", "adamw", "cosine", "bf16", "cpu", "digits", "twkd", "small_cnn", "1e-4", ".inf"]),
)
values = st.recursive(scalars,
                      lambda inner: (st.lists(inner, max_size=3)
                                     | st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)
key_names = st.one_of(st.sampled_from(KEYS), st.text(max_size=10))


def nest(flat: dict) -> dict:
    """``{"optim.lr": 1}`` → ``{"optim": {"lr": 1}}`` (a later key that clashes replaces the earlier)."""
    out: dict = {}
    for dotted, value in flat.items():
        node, parts = out, dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


@FUZZ
@given(st.dictionaries(key_names, values, max_size=6))
def test_random_recipe_values_give_a_config_or_one_clean_error(flat):
    cfg = only_clean_errors(lambda: config_from_dict(nest(flat)))
    if cfg is not None:
        assert cfg.timesteps >= 1 and cfg.optim.lr > 0 and math.isfinite(cfg.optim.lr)


@FUZZ
@given(text=st.text(max_size=200))
def test_random_recipe_text_gives_a_config_or_one_clean_error(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "recipe.yaml"
    path.write_text(text)
    only_clean_errors(lambda: load_config(path))


@FUZZ
@given(st.lists(st.tuples(key_names, st.text(max_size=20)), max_size=4))
def test_random_overrides_give_a_config_or_one_clean_error(pairs):
    overrides = [f"{key}={value}" for key, value in pairs]
    only_clean_errors(lambda: load_config(None, overrides))


@FUZZ
@given(st.text(max_size=40))
def test_any_override_text_parses_or_fails_cleanly(text):
    only_clean_errors(lambda: parse_override(text))


@FUZZ
@given(body=st.binary(max_size=300))
def test_random_bytes_as_a_recipe_give_a_config_or_one_clean_error(body, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "recipe.yaml"
    path.write_bytes(body)
    only_clean_errors(lambda: load_config(path, ["optim.lr=0.1"]))


@FUZZ
@given(top=values)
def test_any_yaml_document_with_an_override_gives_a_config_or_one_clean_error(top, tmp_path_factory):
    """A recipe that is a list, a scalar or a mapping of anything, plus an override into it."""
    import yaml

    path = tmp_path_factory.mktemp("fuzz") / "recipe.yaml"
    path.write_text(yaml.safe_dump(top))
    only_clean_errors(lambda: load_config(path, ["optim.lr=0.1", "seed=3"]))


@FUZZ
@given(st.text(max_size=16))
def test_any_timesteps_or_thresholds_text_parses_or_fails_cleanly(text):
    from spikedistill.evaluate.cli import parse_thresholds, parse_timesteps

    parsed = only_clean_errors(lambda: parse_timesteps(text, 4))
    if parsed is not None:
        first, last = parsed
        assert 1 <= first <= last and "-" not in text.strip()[-1:]
    thresholds = only_clean_errors(lambda: parse_thresholds(text))
    if thresholds is not None:
        assert all(0 < t <= 1 for t in thresholds)


@FUZZ
@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_any_integer_seed_gives_a_config_or_one_clean_error(seed):
    cfg = only_clean_errors(lambda: load_config(None, [f"seed={seed}"]))
    if cfg is not None:
        from spikedistill.train.rng import seed_everything

        seed_everything(cfg.seed)  # whatever the recipe accepted, every RNG accepts


def test_numbers_too_large_for_a_float_are_a_clean_error():
    for override in ("optim.lr=" + "9" * 400, "optim.grad_clip=1e999", "timesteps=" + "9" * 400):
        only_clean_errors(lambda: load_config(None, [override]))


# --- event files ----------------------------------------------------------------------------------

def nmnist_bytes(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 34, n), rng.integers(0, 34, n)
    t, p = np.sort(rng.integers(0, 1 << 23, n)), rng.integers(0, 2, n)
    raw = np.stack([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF], 1).astype(np.uint8)
    return raw.tobytes()


def aedat2_bytes(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    address = (rng.integers(0, 128, n) << 8) | (rng.integers(0, 128, n) << 1) | rng.integers(0, 2, n)
    pairs = np.empty(n, dtype=[("a", ">u4"), ("t", ">i4")])
    pairs["a"], pairs["t"] = address, np.sort(rng.integers(0, 10**6, n))
    return b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + pairs.tobytes()


def aedat31_bytes(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    words = (rng.integers(0, 128, n) << 17) | (rng.integers(0, 128, n) << 2) | (rng.integers(0, 2, n) << 1) | 1
    events = np.empty(n, dtype=[("d", "<u4"), ("t", "<i4")])
    events["d"], events["t"] = words, np.sort(rng.integers(0, 10**6, n))
    header = struct.pack("<hhiiiiii", 1, 0, 8, 4, 0, n, n, n)
    return b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n" + header + events.tobytes()


LABELS = b"class,startTime_usec,endTime_usec\n1,0,500000\n2,500000,999999\n"
VALID = {"nmnist": nmnist_bytes(50, 0), "aedat2": aedat2_bytes(50, 1), "aedat31": aedat31_bytes(50, 2)}
READERS = {
    "nmnist": read_nmnist,
    "aedat2": read_aedat2_raw,
    "aedat31": read_aedat3_polarity,
    "cifar10dvs_from_aedat2": read_cifar10dvs,
    "cifar10dvs_from_aedat31": read_cifar10dvs,
    "dvsgesture": lambda data: read_dvs_gesture(data, LABELS),
}
SOURCE = {"cifar10dvs_from_aedat2": "aedat2", "cifar10dvs_from_aedat31": "aedat31", "dvsgesture": "aedat31"}


def test_the_fuzz_seeds_are_valid_files():
    for name, read in READERS.items():
        out = read(VALID[SOURCE.get(name, name)])
        events = out[0][0] if isinstance(out, list) else out[0] if isinstance(out, tuple) else out
        assert len(events) > 0, name


def check_events(out):
    if isinstance(out, np.ndarray) and out.dtype == EVENT_DTYPE:
        assert out["x"].size == out["t"].size


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ_EACH_READER
@given(data=st.data())
def test_truncated_event_files_decode_or_fail_cleanly(reader, data):
    valid = VALID[SOURCE.get(reader, reader)]
    cut = data.draw(st.integers(0, len(valid)))
    check_events(only_clean_errors(lambda: READERS[reader](valid[:cut])))


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ_EACH_READER
@given(data=st.data())
def test_corrupted_event_files_decode_or_fail_cleanly(reader, data):
    valid = bytearray(VALID[SOURCE.get(reader, reader)])
    for _ in range(data.draw(st.integers(1, 8))):
        valid[data.draw(st.integers(0, len(valid) - 1))] = data.draw(st.integers(0, 255))
    check_events(only_clean_errors(lambda: READERS[reader](bytes(valid))))


@pytest.mark.parametrize("reader", list(READERS))
@FUZZ_EACH_READER
@given(prefix=st.sampled_from([b"", b"#!AER-DAT2.0\r\n", b"#!AER-DAT3.1\r\n#!END-HEADER\r\n", b"#!AER-DAT3.1\r\n"]),
       body=st.binary(max_size=300))
def test_random_bytes_decode_or_fail_cleanly(reader, prefix, body):
    check_events(only_clean_errors(lambda: READERS[reader](prefix + body)))


@FUZZ
@given(st.text(max_size=120))
def test_random_gesture_label_files_parse_or_fail_cleanly(text):
    only_clean_errors(lambda: read_gesture_labels(("class,startTime_usec,endTime_usec\n" + text).encode()))
    only_clean_errors(lambda: read_gesture_labels(text.encode()))


# --- checkpoints ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    model = sd.create_model("small_cnn", spiking=True, num_classes=3, widths=(2, 2, 2))
    save_checkpoint(path, model=model, spec=model_spec("small_cnn", True, 3, in_channels=1, widths=(2, 2, 2)))
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_damaged_checkpoints_load_or_fail_cleanly(checkpoint_bytes, data, tmp_path_factory):
    damaged = bytearray(checkpoint_bytes)
    how = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if how == "truncate":
        damaged = damaged[: data.draw(st.integers(0, len(damaged) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 6))):
            damaged[data.draw(st.integers(0, len(damaged) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    else:
        damaged = bytearray(data.draw(st.binary(max_size=2000)))
    path = tmp_path_factory.mktemp("damaged") / "latest.pt"
    path.write_bytes(bytes(damaged))
    only_clean_errors(lambda: load_checkpoint(path).model())
