"""Readers for raw event-camera files → structured arrays with fields ``x, y, t, p``.

Formats (each checked against its published description; see docs/events.md):

* **N-MNIST binary** (Orchard et al. 2015): 5 bytes (40 bits) per event — byte 0 = x, byte 1 = y,
  bit 7 of byte 2 = polarity, the 23-bit timestamp (µs) is the other 7 bits of byte 2 then bytes 3–4,
  big-endian. An event with y = 240 is a timestamp-overflow marker: every later timestamp gains 2^13 µs
  and the marker itself is not an event.
* **AEDAT 1.0 / 2.0** (jAER; CIFAR10-DVS as distributed on figshare is 2.0): header lines that begin
  with ``#``, then big-endian ``(address, timestamp)`` pairs — 16+32 bits (1.0) or 32+32 bits (2.0).
  The address is chip-specific; :func:`decode_dvs128_address` decodes the DVS128 layout.
* **AEDAT 3.0 / 3.1** (cAER; DVS-Gesture): header lines ending with ``#!END-HEADER\\r\\n`` (3.1), then
  packets, each a 28-byte little-endian header ``int16 eventType, int16 eventSource, int32 eventSize,
  int32 eventTSOffset, int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid``
  followed by ``eventCapacity · eventSize`` bytes. Polarity events (type 1) are 8 bytes: ``uint32 data``
  (bit 0 valid mark, bit 1 polarity, bits 2–16 y, bits 17–31 x) and ``int32 timestamp``; the 64-bit
  time is ``eventTSOverflow << 31 | timestamp``. Other packet types are skipped.

Every reader raises :class:`~spikedistill.errors.SpikeDistillError` with one line naming the file and
what is wrong with it — never an IndexError from half a packet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from ...errors import SpikeDistillError

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "u1")])

Source = Union[str, os.PathLike, bytes, bytearray, memoryview]

NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_STEP = 1 << 13
AEDAT3_PACKET_HEADER = np.dtype([
    ("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"), ("ts_overflow", "<i4"),
    ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4"),
])
AEDAT3_POLARITY = np.dtype([("data", "<u4"), ("timestamp", "<i4")])
POLARITY_EVENT_TYPE = 1


def make_events(x, y, t, p) -> np.ndarray:
    """Structured event array ``(x, y, t, p)`` from four equally long sequences."""
    x = np.asarray(x)
    events = np.empty(len(x), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def _read_bytes(source: Source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    path = Path(source)
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise SpikeDistillError(f"event file '{path}' {problem}; check the dataset root")
    return path.read_bytes(), str(path)


# --- N-MNIST -------------------------------------------------------------------------------------

def read_nmnist(source: Source, sensor_size: tuple[int, int] = (34, 34)) -> np.ndarray:
    """Decode one N-MNIST ``.bin`` recording (path or bytes) to events; ``sensor_size`` is (H, W)."""
    data, name = _read_bytes(source)
    if len(data) % 5:
        raise SpikeDistillError(
            f"N-MNIST file {name} is truncated or not N-MNIST: {len(data)} bytes is not a multiple of 5 "
            "(40-bit events); re-extract the file")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = raw[:, 0], raw[:, 1]
    p = raw[:, 2] >> 7
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    overflow = y == NMNIST_OVERFLOW_Y
    t = t + NMNIST_OVERFLOW_STEP * np.cumsum(overflow)  # a marker shifts itself and everything after
    keep = ~overflow
    x, y, t, p = x[keep], y[keep], t[keep], p[keep]
    height, width = sensor_size
    if len(x) and (x.max() >= width or y.max() >= height):
        raise SpikeDistillError(
            f"N-MNIST file {name} has an event at x={int(x.max())}, y={int(y.max())} outside the "
            f"{width}×{height} sensor; the file is corrupt or not N-MNIST (pass sensor_size for N-Caltech101)")
    return make_events(x, y, t, p)


# --- AEDAT headers -------------------------------------------------------------------------------

def parse_aedat_header(data: bytes, name: str = "<bytes>") -> tuple[str, list[str], int]:
    """``(version, header_lines, data_start)`` of an AEDAT file's bytes. No version line means 1.0."""
    lines, pos = [], 0
    version = "1.0"
    while data[pos:pos + 1] == b"#":
        end = data.find(b"\n", pos)
        if end < 0:
            raise SpikeDistillError(f"AEDAT file {name}: the header never ends (no newline after byte {pos}); "
                                    "the file is truncated")
        line = data[pos:end + 1].decode("latin-1").rstrip("\r\n")
        pos = end + 1
        if not lines and line.startswith("#!AER-DAT"):
            version = line[len("#!AER-DAT"):].strip()
        lines.append(line)
        if line.startswith("#!END-HEADER"):
            break
    if version not in ("1.0", "2.0", "3.0", "3.1"):
        raise SpikeDistillError(
            f"AEDAT file {name} has version '{version}'; supported: 1.0, 2.0, 3.0, 3.1 "
            "(convert AEDAT 4 files with iniVation's dv tools or read them with tonic.io.read_aedat4)")
    if version == "3.1" and not (lines and lines[-1].startswith("#!END-HEADER")):
        raise SpikeDistillError(f"AEDAT 3.1 file {name} has no '#!END-HEADER' line; the file is truncated or corrupt")
    return version, lines, pos


def read_aedat2_raw(source: Source) -> tuple[np.ndarray, np.ndarray]:
    """``(address uint32, timestamp int64)`` of an AEDAT 1.0/2.0 file (jAER, big-endian pairs)."""
    data, name = _read_bytes(source)
    version, _, start = parse_aedat_header(data, name)
    if version.startswith("3"):
        raise SpikeDistillError(f"AEDAT file {name} is version {version}, not 1.0/2.0; use read_aedat3_polarity")
    address_bytes = 2 if version == "1.0" else 4
    record = address_bytes + 4
    body = data[start:]
    if len(body) % record:
        raise SpikeDistillError(
            f"AEDAT {version} file {name} is truncated: {len(body)} data bytes is not a multiple of the "
            f"{record}-byte event; re-download it")
    pairs = np.frombuffer(body, dtype=np.dtype([("address", f">u{address_bytes}"), ("timestamp", ">i4")]))
    return pairs["address"].astype(np.uint32), pairs["timestamp"].astype(np.int64)


def decode_dvs128_address(address: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    """DVS128 (jAER) addresses → events, in SpikingJelly's CIFAR10-DVS orientation (docs/events.md).

    Address bits: 0 polarity, 1–7 column, 8–14 row, 15 external-event flag (external events are dropped).
    SpikingJelly stores ``x = 127 − row``, ``y = 127 − column``, ``p = 1 − bit0``; we keep that so our
    frames equal the frames the FR recipe trained on. A DVS128 uses 16 address bits; addresses with higher
    bits are dropped too, and a file made mostly of them is rejected (another chip, or garbage).
    """
    keep = (address & 0xFFFF8000) == 0
    if len(address) and keep.sum() * 2 < len(address):
        raise SpikeDistillError(
            f"{int((~keep).sum())} of {len(address)} addresses use bits above 14, which a DVS128 pixel never "
            "does; the file is corrupt or from another sensor (not CIFAR10-DVS)")
    address, timestamp = address[keep], timestamp[keep]
    column = (address >> 1) & 0x7F
    row = (address >> 8) & 0x7F
    return make_events(127 - row, 127 - column, timestamp, 1 - (address & 1))


def read_aedat3_polarity(source: Source) -> np.ndarray:
    """Valid polarity events of an AEDAT 3.0/3.1 file (cAER packets), in file order."""
    data, name = _read_bytes(source)
    version, _, pos = parse_aedat_header(data, name)
    if not version.startswith("3"):
        raise SpikeDistillError(f"AEDAT file {name} is version {version}, not 3.x; use read_aedat2_raw")
    chunks, overflows = [], []
    header_size = AEDAT3_PACKET_HEADER.itemsize
    while pos < len(data):
        if len(data) - pos < header_size:
            raise SpikeDistillError(
                f"AEDAT 3 file {name} is truncated: {len(data) - pos} bytes left at byte {pos}, less than a "
                f"{header_size}-byte packet header; re-download it")
        head = np.frombuffer(data, AEDAT3_PACKET_HEADER, count=1, offset=pos)[0]
        size, capacity, number = int(head["size"]), int(head["capacity"]), int(head["number"])
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity or int(head["type"]) < 0:
            raise SpikeDistillError(
                f"AEDAT 3 file {name}: corrupt packet header at byte {pos} (type={int(head['type'])}, "
                f"size={size}, capacity={capacity}, number={number}); the file is damaged")
        pos += header_size
        payload = capacity * size
        if len(data) - pos < payload:
            raise SpikeDistillError(
                f"AEDAT 3 file {name} is truncated: the packet at byte {pos - header_size} declares "
                f"{payload} bytes but {len(data) - pos} remain; re-download it")
        if int(head["type"]) == POLARITY_EVENT_TYPE:
            if size != AEDAT3_POLARITY.itemsize or int(head["ts_offset"]) != 4:
                raise SpikeDistillError(
                    f"AEDAT 3 file {name}: polarity packet at byte {pos - header_size} has event size {size} "
                    f"and timestamp offset {int(head['ts_offset'])} (expected 8 and 4); the file is damaged")
            chunks.append(np.frombuffer(data, AEDAT3_POLARITY, count=number, offset=pos))
            overflows.append(np.full(number, int(head["ts_overflow"]), dtype=np.int64))
        pos += payload
    if not chunks:
        return make_events([], [], [], [])
    raw = np.concatenate(chunks)
    overflow = np.concatenate(overflows)
    valid = (raw["data"] & 1) == 1
    raw, overflow = raw[valid], overflow[valid]
    word = raw["data"]
    t = (overflow << 31) | raw["timestamp"].astype(np.int64)
    return make_events((word >> 17) & 0x7FFF, (word >> 2) & 0x7FFF, t, (word >> 1) & 1)


def check_sensor(events: np.ndarray, sensor_size: tuple[int, int], name: str) -> np.ndarray:
    height, width = sensor_size
    if len(events) and (events["x"].max() >= width or events["y"].max() >= height):
        raise SpikeDistillError(
            f"{name} has events outside the {width}×{height} sensor (max x={int(events['x'].max())}, "
            f"y={int(events['y'].max())}); the file is corrupt or from another sensor")
    return events


# --- dataset-level readers ------------------------------------------------------------------------

def read_cifar10dvs(source: Source) -> np.ndarray:
    """One CIFAR10-DVS recording (128×128 DVS128). The figshare release is AEDAT 2.0 (decoded in SpikingJelly's
    orientation, :func:`decode_dvs128_address`); AEDAT 3.x copies are read too, with cAER's coordinates as
    stored. Times are shifted to start at 0."""
    data, name = _read_bytes(source)
    version, _, _ = parse_aedat_header(data, name)
    if version.startswith("3"):
        events = read_aedat3_polarity(data)
    else:
        events = decode_dvs128_address(*read_aedat2_raw(data))
    events = check_sensor(events, (128, 128), f"CIFAR10-DVS file {name}")
    if len(events):
        events["t"] -= events["t"].min()
    return events


GESTURE_LABEL_HEADER = ("class", "starttime_usec", "endtime_usec")


def read_gesture_labels(source: Union[str, os.PathLike, bytes]) -> np.ndarray:
    """DVS-Gesture ``userXX_<light>_labels.csv`` → int64 ``[n, 3]`` rows of (class 1..11, start µs, end µs)."""
    data, name = _read_bytes(source)
    text = data.decode("utf-8", errors="replace").strip().splitlines()
    if not text or tuple(c.strip().lower() for c in text[0].split(",")) != GESTURE_LABEL_HEADER:
        raise SpikeDistillError(
            f"DVS-Gesture labels {name} must start with the header 'class,startTime_usec,endTime_usec'")
    rows = []
    for number, line in enumerate(text[1:], start=2):
        if not line.strip():
            continue
        try:
            cls, start, end = (int(v) for v in line.split(","))
        except ValueError:
            raise SpikeDistillError(f"DVS-Gesture labels {name} line {number}: expected three integers, got "
                                    f"{line!r}") from None
        if not (0 <= start < 1 << 62 and 0 < end < 1 << 62):
            raise SpikeDistillError(f"DVS-Gesture labels {name} line {number}: times out of range in {line!r}")
        if not 1 <= cls <= 11 or end <= start:
            raise SpikeDistillError(
                f"DVS-Gesture labels {name} line {number}: class must be 1..11 and end > start, got {line!r}")
        rows.append((cls, start, end))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def read_dvs_gesture(aedat: Source, labels: Union[str, os.PathLike, bytes]) -> list[tuple[np.ndarray, int]]:
    """One DVS-Gesture trial (AEDAT 3.1 + its labels CSV) → ``[(events, label 0..10), ...]``, one entry per
    labelled gesture: the events with ``start <= t < end``, times shifted to start at 0."""
    data, name = _read_bytes(aedat)
    events = check_sensor(read_aedat3_polarity(data), (128, 128), f"DVS-Gesture file {name}")
    order = np.argsort(events["t"], kind="stable")
    events = events[order]
    segments = []
    for cls, start, end in read_gesture_labels(labels):
        lo, hi = np.searchsorted(events["t"], [start, end], side="left")
        piece = events[lo:hi].copy()
        piece["t"] -= start
        segments.append((piece, int(cls) - 1))
    return segments
