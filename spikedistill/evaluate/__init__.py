"""Evaluation: full-range accuracy from one pass (fullrange_pass), per-timestep energy, early exit, the full-range
picture."""

from .earlyexit import early_exit_sweep, exit_steps
from .energy import E_AC_PJ, E_MAC_PJ, CostRecorder, conv_synaptic_ops, energy_policy, linear_synaptic_ops
from .fullrange import cumulative_mean, fullrange_accuracy, fullrange_accuracy_events, fullrange_correct, fullrange_pass
from .report import fullrange_report

__all__ = [
    "cumulative_mean",
    "fullrange_accuracy",
    "fullrange_accuracy_events",
    "fullrange_correct",
    "fullrange_pass",
    "fullrange_report",
    "early_exit_sweep",
    "exit_steps",
    "CostRecorder",
    "conv_synaptic_ops",
    "linear_synaptic_ops",
    "energy_policy",
    "E_MAC_PJ",
    "E_AC_PJ",
]
