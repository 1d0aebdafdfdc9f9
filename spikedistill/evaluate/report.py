"""The full-range picture: accuracy, cost and early exit at every timestep, from one pass at T_max.

:func:`fullrange_report` runs each batch once at T_max with :class:`~.energy.CostRecorder` hooks
attached and returns the SPEC.md eval JSON (``timesteps``, ``top1``, ``sops``, ``energy_mj``,
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
from .fullrange import cumulative_mean


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
            for inputs, labels in loader:
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
        for key in ("input_rate", "sops", "macs", "energy_mj"):
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
    out["layers"] = [{**row, **{key: [row[key][i] for i in keep] for key in ("input_rate", "sops", "macs", "energy_mj")}}
                     for row in report["layers"]]
    out["neurons"] = [{**row, "firing_rate": [row["firing_rate"][i] for i in keep]} for row in report["neurons"]]
    return out
