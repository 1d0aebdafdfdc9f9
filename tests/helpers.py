"""Helpers shared by several test modules (pytest puts this folder on sys.path)."""

import importlib.util
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def load_script(relative_path: str, name: str):
    """A script of the repository that is not part of the package (``benchmarks/...``), as a module
    named ``name`` (a separate instance per name)."""
    spec = importlib.util.spec_from_file_location(name, REPO / relative_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def trained_looking(net: torch.nn.Module, bias_mean: float = 0.6) -> torch.nn.Module:
    """Random BN affine parameters and running statistics far from their initial 0/1, in eval mode:
    a network whose eval-mode BN differs from train mode, as a trained one does. ``bias_mean`` shifts
    the BN bias so enough neurons fire for the comparisons to mean something."""
    g = torch.Generator().manual_seed(3)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2 + bias_mean)
    return net.eval()


def saved_for_backward(run, min_bytes: int = 0, storage: bool = False):
    """``(run(), bytes autograd saved for backward while it ran)``, counting only tensors of at least
    ``min_bytes`` (e.g. to leave per-channel vectors aside). ``storage=True`` counts the memory behind each
    saved tensor (an expanded view holds one step) instead of its elements."""
    sizes = []

    def pack(tensor):
        sizes.append(tensor.untyped_storage().nbytes() if storage else tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run()
    return out, sum(size for size in sizes if size >= min_bytes)
