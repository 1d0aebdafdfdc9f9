"""The full-range picture: accuracy, cost and early exit at every timestep, from one pass at T_max.

:func:`fullrange_report` runs each batch once at T_max with :class:`~.energy.CostRecorder` hooks
attached and returns the eval JSON of docs/deployment.md (``timesteps``, ``top1``, ``sops``, ``energy_mj``,
``firing_rate``) plus ``macs``, per-layer and per-neuron-layer detail, the energy policy and, on
request, an early-exit sweep. Top-1 comes from the same pass as :func:`~.fullrange.fullrange_accuracy`
and the training loop's per-epoch test (:func:`~.fullrange.fullrange_pass`), so all three agree exactly.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from .earlyexit import DEFAULT_THRESHOLDS, early_exit_sweep
from .energy import CostRecorder
from .fullrange import free_memory, fullrange_pass


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

    ``loader`` yields ``(inputs, labels)`` like :func:`~.fullrange.fullrange_accuracy`, with the same rules
    (frames longer than max_timesteps: their prefix). An ANN (``model.spiking`` False) runs once and is
    reported at k = 1; a model with no spike source the count knows is refused (see :mod:`.energy`). With
    ``early_exit_thresholds`` the result also holds ``early_exit``: accuracy, mean timesteps and
    energy of per-sample confidence-based exit at each threshold (see :mod:`.earlyexit`).
    """
    recorder = CostRecorder(model, max_timesteps, stem_macs=stem_macs)
    with recorder:
        result = fullrange_pass(model, loader, max_timesteps, device, "fullrange_report", recorder,
                                keep_confidence=early_exit_thresholds is not None)
    steps_run = result.steps
    summary = recorder.summary()
    report = {
        "timesteps": list(range(1, steps_run + 1)),
        "top1": list(result.top1().values()),
        "samples": result.samples,
        "spiking": bool(getattr(model, "spiking", True)),
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
            result.confidence, result.hits, energy_pj * 1e-9,
            early_exit_thresholds if len(early_exit_thresholds) else DEFAULT_THRESHOLDS,
        )
    return report


def select_timesteps(report: dict, first: int, last: int) -> dict:
    """Restrict a report's per-k lists to k in first..last (the ``--timesteps 2-4`` view)."""
    keep = [i for i, k in enumerate(report["timesteps"]) if first <= k <= last]
    out = dict(report)
    for key in ("timesteps", "top1", "sops", "macs", "energy_mj", "firing_rate"):
        out[key] = [report[key][i] for i in keep]
    out["layers"] = [{**row, **{key: [row[key][i] for i in keep]
                                for key in ("input_rate", "sops", "macs", "dense_macs", "energy_mj")}}
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

