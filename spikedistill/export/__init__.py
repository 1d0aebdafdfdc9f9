"""Deployment exports: NIR (BN folded, LIF mapped; optional ``nir`` package) and fixed-T TorchScript / ONNX.

Heavy optional dependencies (``nir``, ``onnx``) are imported only when an export runs.
"""

from .fixed import FixedTimesteps, InferenceLIF, export_onnx, export_torchscript
from .nir_targets import TARGETS as NIR_TARGETS
from .to_nir import check_exportable, fold_batchnorm, lif_node, to_nir, write_nir

__all__ = ["FixedTimesteps", "InferenceLIF", "export_onnx", "export_torchscript", "NIR_TARGETS", "check_exportable",
           "fold_batchnorm", "lif_node", "to_nir", "write_nir"]
