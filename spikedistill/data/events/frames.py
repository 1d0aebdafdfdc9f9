"""Events → frames: T frames of per-polarity event counts ``[T, 2, H, W]``.

Two ways to cut a recording of n events into T frames (``split_by``):

* ``"count"`` — equal event counts: event i (in file order) goes to frame ``⌊i·T / n⌋``, so frame sizes
  differ by at most one event. (SpikingJelly's ``split_by='number'`` gives the remainder to the last
  frame instead; the two differ by fewer than T events per recording.)
* ``"time"`` — equal time spans over the recording's ``[t_min, t_max]``: event at time t goes to frame
  ``⌊(t − t_min)·T / (t_max − t_min + 1)⌋``.

* ``"tonic_count"`` / ``"tonic_time"`` — what ``tonic.transforms.ToFrame(sensor_size, n_event_bins=T)``
  / ``ToFrame(sensor_size, n_time_bins=T)`` (tonic 1.7) give, for recordings in time order: every frame
  holds ⌊n/T⌋ events and the last n mod T events are dropped; or frame k spans
  ``[t₀ + k·w, t₀ + (k+1)·w)`` with ``w = ⌊(t_last − t₀)/T⌋`` (first and last event of the file), so the
  events from ``t₀ + T·w`` on — always the last one — are dropped. Use them
  to reproduce results obtained with tonic; ours keep every event (docs/events.md).

Counts are exact integers. ``size`` resizes each frame to ``size × size`` with bilinear, anti-aliased
interpolation (what ``torchvision.transforms.Resize`` does to a tensor; the FR code resizes 128 → 48 for
CIFAR10-DVS); resized frames are no longer integers.

Many recordings are binned at once with one ``np.bincount`` per chunk, from the flat layout the
datasets use (``x, y, t, p`` concatenated, sample i is ``[offsets[i]:offsets[i+1]]``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import SpikeDistillError, did_you_mean

SPLIT_BY = ("count", "time", "tonic_count", "tonic_time")


def check_split_by(split_by: str) -> str:
    if split_by not in SPLIT_BY:
        raise SpikeDistillError(f"unknown split_by '{split_by}';{did_you_mean(split_by, SPLIT_BY)} known: "
                                f"{', '.join(SPLIT_BY)}")
    return split_by


def check_timesteps(timesteps) -> int:
    if not isinstance(timesteps, (int, np.integer)) or isinstance(timesteps, bool) or timesteps < 1:
        raise SpikeDistillError(f"timesteps (frames per recording) must be a positive integer, got {timesteps!r}")
    return int(timesteps)


def check_size(size) -> int | None:
    if size is not None and (not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1):
        raise SpikeDistillError(f"frame size must be a positive integer or None, got {size!r}")
    return None if size is None else int(size)


def frame_index(t: np.ndarray, offsets: np.ndarray, timesteps: int, split_by: str) -> np.ndarray:
    """Frame number 0..T−1 of every event of every recording (flat layout); −1 for an event the split
    drops (the tonic-compatible ones only)."""
    lengths = np.diff(offsets)
    sample = np.repeat(np.arange(len(lengths)), lengths)
    if split_by in ("count", "tonic_count"):
        position = np.arange(len(t), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        if split_by == "count":
            return (position * timesteps) // np.maximum(lengths, 1)[sample]
        per_frame = (lengths // timesteps)[sample]  # tonic: ⌊n/T⌋ events a frame, the rest dropped
        return np.where(position < per_frame * timesteps, position // np.maximum(per_frame, 1), -1)
    t = t.astype(np.int64)
    nonempty = lengths > 0
    t_min = np.zeros(len(lengths), dtype=np.int64)
    t_max = np.zeros(len(lengths), dtype=np.int64)
    if split_by == "tonic_time":  # tonic: windows of ⌊(t_last − t_first)/T⌋ from the first event's time
        t_min[nonempty] = t[offsets[:-1][nonempty]]
        t_max[nonempty] = t[offsets[1:][nonempty] - 1]
        window = ((t_max - t_min) // timesteps)[sample]
        since = t - t_min[sample]
        frame = since // np.maximum(window, 1)
        return np.where((window > 0) & (since >= 0) & (frame < timesteps), frame, -1)
    t_min[nonempty] = np.minimum.reduceat(t, offsets[:-1][nonempty])
    t_max[nonempty] = np.maximum.reduceat(t, offsets[:-1][nonempty])
    span = (t_max - t_min + 1)[sample]
    return ((t - t_min[sample]) * timesteps) // span


def bin_events(x, y, t, p, offsets, timesteps: int, sensor_size: tuple[int, int], split_by: str = "count",
               size: int | None = None, max_bins: int = 1 << 23) -> np.ndarray:
    """Per-polarity counts ``[N, T, 2, H, W]`` (float32) of N recordings in the flat layout, resized to
    ``size × size`` when given. Works in chunks of recordings so that at most ``max_bins`` counters exist at
    once (10,000 CIFAR10-DVS recordings at 128×128 would need 13 GB before resizing)."""
    timesteps, split_by, size = check_timesteps(timesteps), check_split_by(split_by), check_size(size)
    offsets = np.asarray(offsets, dtype=np.int64)
    height, width = sensor_size
    count = len(offsets) - 1
    out_h, out_w = (size, size) if size else (height, width)
    frames = np.zeros((count, timesteps, 2, out_h, out_w), dtype=np.float32)
    per_sample = timesteps * 2 * height * width
    chunk = max(1, max_bins // per_sample)
    for first in range(0, count, chunk):
        last = min(first + chunk, count)
        lo, hi = offsets[first], offsets[last]
        local = offsets[first:last + 1] - lo
        step = frame_index(np.asarray(t[lo:hi]), local, timesteps, split_by)
        sample = np.repeat(np.arange(last - first), np.diff(local))
        kept = step >= 0
        flat = (((sample * timesteps + step) * 2 + np.asarray(p[lo:hi], dtype=np.int64)) * height
                + np.asarray(y[lo:hi], dtype=np.int64)) * width + np.asarray(x[lo:hi], dtype=np.int64)
        flat = flat if kept.all() else flat[kept]
        counts = np.bincount(flat, minlength=(last - first) * per_sample).astype(np.float32)
        frames[first:last] = resize_frames(counts.reshape(last - first, timesteps, 2, height, width), size)
    return frames


def events_to_frames(events: np.ndarray, timesteps: int, sensor_size: tuple[int, int], split_by: str = "count",
                     size: int | None = None) -> np.ndarray:
    """One recording (structured ``x, y, t, p``) → ``[T, 2, H, W]`` float32 counts (resized when ``size``)."""
    offsets = np.array([0, len(events)])
    return bin_events(events["x"], events["y"], events["t"], events["p"], offsets, timesteps, sensor_size,
                      split_by, size)[0]


def resize_frames(frames: np.ndarray, size: int | None, chunk: int = 512) -> np.ndarray:
    """Resize ``[..., H, W]`` frames to ``size × size`` (bilinear, anti-aliased); None or the same size
    returns the input."""
    if check_size(size) is None or tuple(frames.shape[-2:]) == (size, size):
        return frames
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.empty((flat.shape[0], flat.shape[1], size, size), dtype=np.float32)
    for start in range(0, flat.shape[0], chunk):
        block = torch.from_numpy(np.ascontiguousarray(flat[start:start + chunk], dtype=np.float32))
        out[start:start + chunk] = F.interpolate(block, size=(size, size), mode="bilinear", align_corners=False,
                                                 antialias=True).numpy()
    return out.reshape(*lead, flat.shape[1], size, size)
