"""Memory layout of time-first tensors, as the fused kernels and BatchNorm's backward read them."""

from __future__ import annotations

import math


def dense_strides(shape, strides) -> bool:
    """True when a tensor with these sizes and strides covers one gap-free block of memory, in any
    order of dimensions (contiguous, channels_last, ...)."""
    expected = 1
    for size, stride in sorted(((s, st) for s, st in zip(shape, strides) if s != 1), key=lambda p: p[1]):
        if stride != expected:
            return False
        expected *= size
    return True


def steps_dense(x_seq) -> bool:
    """True when every step of ``x_seq`` [T, ...] is one dense block and the steps follow each other
    (the ``[T·B, C, ...]`` view BatchNorm and the folded kernel read)."""
    step_shape, step_strides = x_seq.shape[1:], x_seq.stride()[1:]
    steps_follow = x_seq.shape[0] == 1 or x_seq.stride(0) == math.prod(step_shape)
    return steps_follow and dense_strides(step_shape, step_strides)
