"""The full-range picture: accuracy, cost and early exit at every timestep, from one pass at T_max.

:func:`fullrange_report` runs each batch once at T_max with :class:`~.energy.CostRecorder` hooks
attached and returns the eval JSON of docs/deployment.md (``timesteps``, ``top1``, ``sops``, ``energy_mj``,
``firing_rate``) plus ``macs``, per-layer and per-neuron-layer detail, the energy policy and, on
request, an early-exit sweep. Top-1 uses the same cumulative mean as
:func:`~.fullrange.fullrange_accuracy`, so the two agree exactly.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from ..errors import SpikeDistillError, check_positive_int
from .earlyexit import DEFAULT_THRESHOLDS, early_exit_sweep
from .energy import CostRecorder
from ..models.inputs import model_input
from .fullrange import check_label_range, cumulative_mean, unpack_batch


@torch.no_grad()
def fullrange_report(
    model: torch.nn.Module,
    loader: Iterable,
    max_timesteps: int,
    device: torch.device | str | None = None,
    stem_macs: str = "once",
    early_exit_thresholds: Sequence[float] | None = None,
) -> dict:
    """Accuracy, SOPs, MACs, energy (mJ per sample) and firing rate at every k in 1..max_timesteps.

    ``loader`` yields ``(inputs, labels)`` like :func:`~.fullrange.fullrange_accuracy`. An ANN (no LIF)
    is run as it comes (one step for static images) and reported at that step count. With
    ``early_exit_thresholds`` the result also holds ``early_exit``: accuracy, mean timesteps and
    energy of per-sample confidence-based exit at each threshold (see :mod:`.earlyexit`).
    """
    check_positive_int("max_timesteps", max_timesteps)
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    spiking = bool(getattr(model, "spiking", True))
    recorder = CostRecorder(model, max_timesteps, stem_macs=stem_macs)
    correct = torch.zeros(max_timesteps, dtype=torch.long)
    confidence, hits = [], []  # per batch [T, B]: running softmax confidence, running prediction correct
    steps_run = None
    try:
        with recorder:
            for batch in loader:
                inputs, labels = unpack_batch(batch, "fullrange_report")
                inputs = model_input(inputs.to(device, non_blocking=True), spiking)
                labels = labels.to(device, non_blocking=True)
                frames = inputs.dim() == 5
                steps = inputs.shape[0] if frames else (max_timesteps if spiking else 1)
                if steps > max_timesteps:
                    inputs, steps = inputs[:max_timesteps], max_timesteps  # prefix policy for frames
                recorder.begin_batch(labels.numel(), steps)
                logits = model(inputs, timesteps=None if frames else steps)
                if logits.shape[0] != steps:
                    raise SpikeDistillError(f"model returned {logits.shape[0]} timesteps, expected {steps}")
                check_label_range(labels, logits.shape[-1], "fullrange_report")
                if steps_run not in (None, steps):
                    raise SpikeDistillError(f"batches ran {steps_run} and {steps} steps; give every batch the same number of frames")
                steps_run = steps
                probs = cumulative_mean(logits.float()).softmax(-1)
                conf, pred = probs.max(-1)
                hit = pred == labels.unsqueeze(0)
                correct[:steps] += hit.sum(1).cpu()
                confidence.append(conf.cpu())
                hits.append(hit.cpu())
    finally:
        model.train(was_training)
    if steps_run is None:
        raise SpikeDistillError("the evaluation loader yielded no samples; check the dataset path and split")
    total = recorder.samples
    summary = recorder.summary()
    report = {
        "timesteps": list(range(1, steps_run + 1)),
        "top1": [100.0 * c / total for c in correct[:steps_run].tolist()],
        "samples": total,
        "spiking": spiking,
    }
    for key in ("sops", "macs", "energy_mj", "firing_rate"):
        report[key] = summary[key][:steps_run]
    for row in summary["layers"]:
        for key in ("input_rate", "sops", "macs", "dense_macs", "energy_mj"):
            row[key] = row[key][:steps_run]
    for row in summary["neurons"]:
        row["firing_rate"] = row["firing_rate"][:steps_run]
    report["layers"] = summary["layers"]
    report["neurons"] = summary["neurons"]
    report["energy_policy"] = summary["energy_policy"]
    if early_exit_thresholds is not None:
        energy_pj = recorder.per_sample_energy_pj()[:steps_run]
        report["early_exit"] = early_exit_sweep(
            torch.cat(confidence, 1), torch.cat(hits, 1), energy_pj * 1e-9,
            early_exit_thresholds if len(early_exit_thresholds) else DEFAULT_THRESHOLDS,
        )
    return report


def select_timesteps(report: dict, first: int, last: int) -> dict:
    """Restrict a report's per-k lists to k in first..last (the ``--timesteps 2-4`` view)."""
    keep = [i for i, k in enumerate(report["timesteps"]) if first <= k <= last]
    out = dict(report)
    for key in ("timesteps", "top1", "sops", "macs", "energy_mj", "firing_rate"):
        out[key] = [report[key][i] for i in keep]
    out["layers"] = [{**row, **{key: [row[key][i] for i in keep] for key in ("input_rate", "sops", "macs", "dense_macs", "energy_mj")}}
                     for row in report["layers"]]
    out["neurons"] = [{**row, "firing_rate": [row["firing_rate"][i] for i in keep]} for row in report["neurons"]]
    return out


def timesteps_that_fit(model: torch.nn.Module, input_shape, batch_size: int, samples: int, device,
                       wanted: int) -> tuple[int, int, int]:
    """``(largest T, bytes T=wanted needs, bytes free)`` for one pass of ``fullrange_report``.

    A pass at T holds about four copies of the model's largest activation per step and sample (input,
    membrane, spikes, output of a LIF layer) for the batch, plus the per-sample running confidence and
    correctness ``[T, N]`` of the whole split; half of the free memory is the budget. Measured with one
    sample at T = 1, so it costs milliseconds."""
    largest = [0]

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            largest[0] = max(largest[0], output.numel() * 4)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape, device=device), timesteps=1)
    except (RuntimeError, ValueError):  # an input the evaluation itself will name better: no estimate
        return wanted, 0, free_memory(torch.device(device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    per_step = 4 * largest[0] * batch_size + 16 * samples
    free = free_memory(torch.device(device))
    return max(0, (free // 2) // max(per_step, 1)), per_step * wanted, free


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
