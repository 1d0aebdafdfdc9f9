"""Building blocks shared by every model family.

Tensors inside a model are time-first ``[T, B, ...]``. Stateless layers (conv, BN, pooling, linear)
run on the flattened ``[T·B, ...]`` view — a free reshape, no copy — so BatchNorm normalises over
T·B and any T works at inference. The activation is an LIF (SNN) or a ReLU (the ANN twin); it is the
only thing that differs between the two. ``conv → BN → act`` goes through :func:`conv_bn_act`, which
lets an LIF fold the BatchNorm into itself (same module tree and state dict either way).
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import LIF


def per_step(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a stateless module to ``[T, B, ...]`` through the flattened ``[T·B, ...]`` view."""
    y = module(x.flatten(0, 1))
    return y.view(x.shape[:2] + y.shape[1:]) if y.is_contiguous() else y.unflatten(0, x.shape[:2])


def conv_bn_act(conv_bn: "ConvBN", act: nn.Module, x: torch.Tensor, residual: torch.Tensor | None = None):
    """``act(BN(conv(x)) + residual)`` over ``[T, B, ...]``. An LIF is handed the BatchNorm, which it
    folds into the neuron where its backend can (only the BN input is kept for backward,
    :mod:`spikedistill.neurons.batchnorm`); a ReLU, or any other activation, gets ``BN(conv(x)) + residual``."""
    z = per_step(conv_bn.conv, x)
    if isinstance(act, LIF):
        return act(z, bn=conv_bn.bn, residual=residual)
    y = per_step(conv_bn.bn, z)
    return act(y if residual is None else y + residual)


def make_activation(spiking: bool, neuron_options: dict) -> nn.Module:
    return LIF(**neuron_options) if spiking else nn.ReLU(inplace=False)


class ConvBN(nn.Sequential):
    """Conv2d followed by BatchNorm2d; named children ``conv`` and ``bn`` (BN folding in export)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int | None = None, bias=False):
        padding = kernel // 2 if padding is None else padding
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_ch)


def encode_input(x: torch.Tensor, timesteps: int | None, default_timesteps: int) -> tuple[torch.Tensor, int]:
    """Validate the input and resolve T. Static images ``[B,C,H,W]`` are direct-encoded (fed at every
    step); frames ``[T,B,C,H,W]`` are consumed step by step and fix T themselves."""
    from ..checks import check_positive_int
    from ..errors import SpikeDistillError

    if timesteps is not None:
        check_positive_int("timesteps", timesteps)
    if not isinstance(x, torch.Tensor):
        raise SpikeDistillError(f"model input must be a torch tensor, got {type(x).__name__}; convert it, e.g. "
                                "torch.from_numpy(x).float()")
    if not x.is_floating_point():
        raise SpikeDistillError(f"model input must be a float tensor (normalised images or frames), got {x.dtype}; "
                                "convert it, e.g. x.float() / 255 then normalise as in training")
    if x.dim() == 4:
        timesteps = timesteps or default_timesteps
        if timesteps * x.numel() > 2**28:  # a gigabyte of input alone over T: is there room for even that?
            from ..evaluate.report import free_memory

            need, free = timesteps * x.numel() * x.element_size(), free_memory(x.device)
            if need > free:
                raise SpikeDistillError(f"timesteps={timesteps}: the input alone repeated over T needs "
                                        f"{need / 2**30:.1f} GiB and {free / 2**30:.1f} GiB are free on {x.device}; "
                                        "ask for fewer timesteps or a smaller batch")
        return x, timesteps
    if x.dim() == 5:
        if timesteps is not None and timesteps != x.shape[0]:
            raise SpikeDistillError(
                f"frame input has {x.shape[0]} timesteps but timesteps={timesteps} was asked; "
                "slice or re-bin the frames first (see spikedistill.data events policy)"
            )
        return x, x.shape[0]
    raise SpikeDistillError(
        f"model input must be images [B,C,H,W] or frames [T,B,C,H,W], got shape {tuple(x.shape)}"
    )


def stem_forward(stem: nn.Module, x: torch.Tensor, timesteps: int, act: nn.Module | None = None) -> torch.Tensor:
    """Run the analog-input stem (``ConvBN``), then ``act`` when given. A static image gives the same stem
    output at every step, so for T > 1 it is computed once on ``[B]`` and broadcast to ``[T, B]`` (T×
    cheaper; BN batch statistics are the same as over T identical copies). Where nothing is broadcast —
    T = 1, or frames — the stem is one more ``conv → BN → act`` (:func:`conv_bn_act`), so an LIF folds its
    BatchNorm in and keeps no u of its own (at T = 1 the stem's u was the SNN's one excess over the ANN)."""
    if act is not None and (x.dim() == 5 or timesteps == 1):
        return conv_bn_act(stem, act, x if x.dim() == 5 else x.unsqueeze(0))
    if x.dim() == 4:
        y = stem(x)
        y = y.unsqueeze(0).expand((timesteps,) + y.shape)
    else:
        y = per_step(stem, x)
    return y if act is None else act(y)


INITS = ("kaiming", "default")


def init_weights(model: nn.Module, init: str = "kaiming", zero_conv_bias: bool = True) -> None:
    """``init="kaiming"``: Kaiming-normal (fan-out) conv weights, zero conv biases (unless
    ``zero_conv_bias=False``), BN weight 1 / bias 0. ``init="default"``: leave PyTorch's own
    initialisation (conv/linear Kaiming-uniform with a=√5) — what FR's CIFAR/DVS SNN ResNets and
    CKDSNN's networks use, since their code has no init loop."""
    if init not in INITS:
        from ..errors import SpikeDistillError

        raise SpikeDistillError(f"unknown init '{init}'; known: {', '.join(INITS)}")
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None and zero_conv_bias:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.SyncBatchNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class TimeModel(nn.Module):
    """Base of every model: ``forward(x, timesteps=None, return_features=False)``.

    Returns per-step logits ``[T, B, K]`` (the ANN twin returns ``[1, B, K]`` for static images), and
    with ``return_features=True`` also a dict of each stage's ``[T, B, C, H, W]`` output, keyed by
    :attr:`stage_names` — the taps for feature-based objectives (TSSD weak head, CKDSNN maps).
    """

    stage_names: tuple[str, ...] = ()

    def __init__(self, spiking: bool, num_classes: int, in_channels: int, default_timesteps: int | None):
        super().__init__()
        self.spiking = spiking
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.default_timesteps = default_timesteps or (4 if spiking else 1)

    def forward_stages(self, x: torch.Tensor, timesteps: int):  # yields (name, tensor), last is logits
        raise NotImplementedError

    def forward(self, x: torch.Tensor, timesteps: int | None = None, return_features: bool = False):
        x, timesteps = encode_input(x, timesteps, self.default_timesteps)
        if x.shape[-3] != self.in_channels:
            from ..errors import SpikeDistillError

            raise SpikeDistillError(
                f"model expects {self.in_channels} input channels, got {x.shape[-3]}; "
                f"create it with in_channels={x.shape[-3]}"
            )
        features = {}
        for name, out in self.forward_stages(x, timesteps):
            features[name] = out
        logits = features.pop("logits")
        return (logits, features) if return_features else logits
