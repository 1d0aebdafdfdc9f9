"""spikedistill: train spiking neural networks by knowledge distillation for full-range timesteps.

One trained network runs at any timestep 1..T_max; see README.md and docs/. Spiking tensors are time-first
``[T, B, ...]``; models return per-step logits ``[T, B, K]``.
"""

from .checkpoint import Checkpoint, load_checkpoint
from .data import register_dataset
from .errors import SpikeDistillError, UnknownNameError
from .evaluate import cumulative_mean, fullrange_accuracy, fullrange_accuracy_events, fullrange_report
from .losses import LOSSES, Objective, create_loss, register_loss
from .models import MODELS, count_parameters, create_model, register_model
from .models.spikingjelly import from_spikingjelly
from .neurons import LIF, LIFConfig, lif_multistep
from .train.fit import fit

__version__ = "0.1.0"

__all__ = [
    "SpikeDistillError",
    "UnknownNameError",
    "create_model",
    "register_model",
    "register_loss",
    "register_dataset",
    "Objective",
    "fit",
    "count_parameters",
    "from_spikingjelly",
    "MODELS",
    "LIF",
    "LIFConfig",
    "lif_multistep",
    "fullrange_accuracy",
    "fullrange_accuracy_events",
    "load_checkpoint",
    "Checkpoint",
    "fullrange_report",
    "create_loss",
    "LOSSES",
    "cumulative_mean",
    "__version__",
]
