"""Evaluation: full-range accuracy from one pass (and, later, per-timestep energy and early exit)."""

from .fullrange import cumulative_mean, fullrange_accuracy, fullrange_correct

__all__ = ["cumulative_mean", "fullrange_accuracy", "fullrange_correct"]
