"""One-pass full-range evaluation (docs/deployment.md#spikedistill-eval).

In eval mode BN uses running statistics and every neuron is causal, so the first k steps of a T_max
run equal a separate k-step run. Top-1 at every k ≤ T_max therefore comes from one forward pass at
T_max, scoring the cumulative mean of the per-step logits  z_ens^(k) = (1/k)·Σ_{t≤k} z[t].
Accuracies are percentages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch

from ..checks import check_positive_int
from ..errors import SpikeDistillError
from ..models.inputs import input_dtype, model_input


def cumulative_mean(logits: torch.Tensor) -> torch.Tensor:
    """``[T, B, K]`` per-step logits → ``[T, B, K]`` where row k−1 is the mean of the first k steps."""
    steps = torch.arange(1, logits.shape[0] + 1, device=logits.device, dtype=logits.dtype)
    return logits.cumsum(0) / steps.view(-1, *([1] * (logits.dim() - 1)))


def fullrange_correct(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions at every k: ``[T]`` counts from ``[T, B, K]`` logits."""
    return (cumulative_mean(logits.float()).argmax(-1) == labels.unsqueeze(0)).sum(1)


def unpack_batch(batch, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` from one loader item, or one line saying what the loader must yield."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        what = f"a {len(batch)}-tuple" if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise SpikeDistillError(f"{where}: the loader must yield (inputs, labels) pairs, got {what}; "
                                "wrap it, e.g. ((x, y) for x, y, *_ in loader)")
    inputs, labels = batch
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        what = inputs.dtype if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise SpikeDistillError(f"{where}: inputs must be a float tensor (normalised images or frames), got {what}; "
                                f"{float_hint(inputs)}")
    if (not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex()
            or labels.dtype == torch.bool):
        what = labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise SpikeDistillError(f"{where}: labels must be an integer tensor of class indices, got {what}; "
                                "pass y.long() (one class index per sample)")
    if not bool(torch.isfinite(inputs).all()):  # a NaN image would score as a wrong answer, silently
        raise SpikeDistillError(f"{where}: the inputs hold NaN or inf values; check the data and its normalisation "
                                "(a zero standard deviation divides by zero)")
    if labels.dim() != 1 or labels.numel() != inputs.shape[0]:
        raise SpikeDistillError(f"{where}: labels of shape {tuple(labels.shape)} for a batch of {inputs.shape[0]} "
                                "inputs; pass one class index per sample")
    return inputs, labels


def float_hint(inputs) -> str:
    """How to make ``inputs`` what a model is fed, by what they are: 8-bit images are scaled and normalised;
    event frames (``[B, T, C, H, W]``) hold counts or spikes, fed as they are, as float."""
    if not isinstance(inputs, torch.Tensor):
        return "pass a torch tensor, e.g. torch.as_tensor(x, dtype=torch.float32)"
    if inputs.dim() == 5 or inputs.dtype == torch.bool:
        return ("event frames are fed as float counts or spikes, unscaled: pass x.float() (no /255; "
                "spikedistill's event datasets yield float32 counts)")
    if inputs.dtype == torch.uint8:
        return "convert the 8-bit images, e.g. x.float() / 255 then normalise as in training"
    return "convert them with x.float(), scaled and normalised as in training (/ 255 only for 0..255 pixels)"


def check_label_range(labels: torch.Tensor, classes: int, where: str) -> None:
    """Every label is a class the model predicts (0..classes-1); otherwise top-1 would silently count 0 %."""
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise SpikeDistillError(f"{where}: labels range over {int(labels.min())}..{int(labels.max())} but the model "
                                f"predicts {classes} classes (0..{classes - 1}); use the dataset the model was trained "
                                "on")


def check_pass_fits(inputs: torch.Tensor, steps: int, device, where: str, per_sample_step: int = 0) -> None:
    """Refuse, before anything is allocated, a pass at ``steps`` that cannot fit: it holds at least one
    input-sized activation per step (a static image is repeated over T), ``per_sample_step`` bytes of
    bookkeeping per sample and step, and the ``[T]`` counts — a lower bound, so a pass it lets through
    may still run out of memory (said in one line by :func:`fullrange_pass`), while an absurd T is
    refused at once."""
    batch = inputs.shape[0]
    frame = math.prod(inputs.shape[2:] if inputs.dim() == 5 else inputs.shape[1:])  # one step of one sample
    per_step = (frame * 4 + per_sample_step) * batch + 8  # float32 activations
    need, free = steps * per_step, free_memory(torch.device(device))
    if need > free:
        raise SpikeDistillError(
            f"{where}: a pass at max_timesteps={steps} holds at least {need / 2**30:.1f} GiB for a batch of {batch} "
            f"and {free / 2**30:.1f} GiB are free on {device}; no T above {free // per_step} can fit: evaluate fewer "
            "timesteps (or pass smaller batches)")


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch running out of memory: a GPU's ``OutOfMemoryError`` or the CPU allocator's."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def free_memory(device: torch.device) -> int:
    """Bytes free for tensors on ``device``: the GPU's free memory, or the host's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


@dataclass
class FullRangePass:
    """What one evaluation pass measured: top-1 counts at every k, and per sample what early exit needs."""

    steps: int  # the steps every batch ran: max_timesteps for an SNN, 1 for an ANN
    correct: torch.Tensor  # [steps] samples right at k = 1..steps
    samples: int
    confidence: torch.Tensor | None = None  # [steps, N] max softmax of the running prediction
    hits: torch.Tensor | None = None  # [steps, N] whether the running prediction is right

    def top1(self) -> dict[int, float]:
        return {k + 1: 100.0 * c / self.samples for k, c in enumerate(self.correct.tolist())}


def check_step_logits(logits, batch: int, steps: int, where: str) -> None:
    """The model returned per-step logits ``[steps, batch, K]``, or one line saying what it returned."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        what = f"shape {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else f"a {type(logits).__name__}"
        raise SpikeDistillError(
            f"{where} expects per-step logits [T, B, K] from the model, got {what}; return every step's logits "
            "(e.g. torch.stack(per_step_logits)), not their mean — an ANN returns [1, B, K]")
    if logits.shape[1] != batch:
        raise SpikeDistillError(
            f"{where} expects per-step logits [T, B, K] with B = {batch} samples, got shape {tuple(logits.shape)}; "
            "return them time-first")
    if logits.shape[0] != steps:
        raise SpikeDistillError(f"{where}: the model returned {logits.shape[0]} timesteps, expected {steps}")


@torch.no_grad()
def fullrange_pass(model: torch.nn.Module, loader: Iterable, max_timesteps: int, device=None,
                   where: str = "fullrange_accuracy", recorder=None, keep_confidence: bool = False) -> FullRangePass:
    """The one evaluation pass behind :func:`fullrange_accuracy` and ``fullrange_report``: each batch runs
    once, in eval mode, at max_timesteps (an ANN, ``model.spiking`` False, once), and is scored at every
    k ≤ T on the cumulative mean of its per-step logits.

    Event frames longer than max_timesteps are cut to their first max_timesteps frames (the ``prefix``
    policy; causal eval makes that the same as a T_max-frame recording's prefix); shorter ones are
    refused, as every k up to max_timesteps could not be scored. ``recorder``: a
    :class:`~spikedistill.evaluate.energy.CostRecorder` already attached to the model, told each batch.
    """
    check_positive_int("max_timesteps", max_timesteps)
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    spiking = bool(getattr(model, "spiking", True))
    dtype = input_dtype(model)  # float64 data for float32 weights (or the reverse) is cast, not a torch error
    steps = max_timesteps if spiking else 1
    correct = None
    confidence, hits = [], []
    total = 0
    try:
        for batch in loader:
            inputs, labels = unpack_batch(batch, where)
            if correct is None:  # the first batch: does a pass at T fit at all?
                bookkeeping = (8 if recorder is not None else 0) + (5 if keep_confidence else 0)
                check_pass_fits(inputs, steps, device, where, bookkeeping)
                correct = torch.zeros(steps, dtype=torch.long, device=device)
            inputs = model_input(inputs.to(device, non_blocking=True), spiking, dtype)
            labels = labels.to(device, non_blocking=True)
            frames = inputs.dim() == 5
            if frames and inputs.shape[0] < max_timesteps:
                raise SpikeDistillError(
                    f"{where}: the event frames carry {inputs.shape[0]} steps but max_timesteps is {max_timesteps}; "
                    f"evaluate at max_timesteps={inputs.shape[0]}, or bin the recordings into {max_timesteps} frames")
            if frames:
                inputs = inputs[:max_timesteps]  # the prefix policy
            if recorder is not None:
                recorder.begin_batch(labels.numel(), steps)
            try:
                logits = model(inputs, timesteps=None if frames else steps)
            except RuntimeError as exc:
                if not out_of_memory(exc):
                    raise
                raise SpikeDistillError(f"{where}: a pass at max_timesteps={steps} for a batch of {labels.numel()} ran "
                                        f"out of memory on {device}; evaluate fewer timesteps or smaller "
                                        "batches") from None
            check_step_logits(logits, labels.numel(), steps, where)
            check_label_range(labels, logits.shape[-1], where)
            running = cumulative_mean(logits.float())
            hit = running.argmax(-1) == labels.unsqueeze(0)  # [steps, B]
            correct += hit.sum(1)
            if keep_confidence:
                confidence.append(running.softmax(-1).amax(-1).cpu())
                hits.append(hit.cpu())
            total += labels.numel()
    finally:
        model.train(was_training)
        if recorder is not None:
            recorder.end()
    if total == 0:
        raise SpikeDistillError("the evaluation loader yielded no samples; check the dataset path and split")
    return FullRangePass(correct.shape[0], correct.cpu(), total, torch.cat(confidence, 1) if keep_confidence else None,
                         torch.cat(hits, 1) if keep_confidence else None)


def fullrange_accuracy(
    model: torch.nn.Module,
    loader: Iterable,
    max_timesteps: int,
    device: torch.device | str | None = None,
) -> dict[int, float]:
    """``{k: top-1 %}`` for every k in 1..max_timesteps, from one forward pass per batch at max_timesteps.

    ``loader`` yields ``(inputs, labels)``; inputs are images ``[B,C,H,W]`` or frames ``[B,T,C,H,W]``.
    Inputs reach the model through :func:`~spikedistill.models.model_input`: an ANN on frames sees their
    time-mean, as in training, and an ANN (``model.spiking`` False) is scored once: ``{1: top-1}``.
    Frames longer than max_timesteps are cut to their first max_timesteps (see :func:`fullrange_pass`).
    The model must return per-step logits ``[T, B, K]``.
    """
    return fullrange_pass(model, loader, max_timesteps, device, "fullrange_accuracy").top1()


@torch.no_grad()
def fullrange_accuracy_events(model: torch.nn.Module, dataset, max_timesteps: int | None = None,
                              policy: str = "prefix", batch_size: int = 64, device=None) -> dict[int, float]:
    """``{k: top-1 %}`` of an event dataset for k = 1..max_timesteps (default: the dataset's T) under the
    any-T ``policy`` (:mod:`spikedistill.data.events.fullrange`).

    ``prefix``: one pass at T_max. ``rebin``: for each k a pass over the recordings re-binned into k
    frames, scored on the mean of all k per-step logits. An ANN sees the frames' time-mean (one pass).
    """
    from ..data.events.fullrange import check_policy, frame_batches, frames_at

    check_policy(policy)
    max_timesteps = dataset.timesteps if max_timesteps is None else max_timesteps
    if device is None:
        device = next(model.parameters()).device
    if not getattr(model, "spiking", True):  # an ANN sees the mean of all the frames, whatever k
        return fullrange_accuracy(model, frame_batches(dataset, batch_size, device), max_timesteps, device)
    if policy == "prefix":
        data = frames_at(dataset, max_timesteps, "prefix")
        return fullrange_accuracy(model, frame_batches(data, batch_size, device), max_timesteps, device)
    result = {}
    for k in range(1, max_timesteps + 1):
        data = frames_at(dataset, k, "rebin")
        result[k] = fullrange_accuracy(model, frame_batches(data, batch_size, device), k, device)[k]
    return result
