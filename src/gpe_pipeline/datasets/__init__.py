"""Kedro dataset types for torch objects (models with their architecture, tensors)."""

from .torch_datasets import TorchModelDataset, TorchTensorDataset

__all__ = ["TorchModelDataset", "TorchTensorDataset"]
