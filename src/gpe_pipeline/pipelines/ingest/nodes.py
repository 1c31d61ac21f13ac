"""Nodes of the ingest pipeline."""

from __future__ import annotations

from typing import Any

from gpe_pipeline.core.data import DatasetSettings, load_dataset


def ingest_dataset(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Load the dataset named in the parameters: train, validation and held-out splits, metadata.

    Each split is {"x": tensor (N, ...) (uint8 images or float32 in model scale), "labels": int64 (N,) or None}.
    The validation split serves early stopping; only the evaluate stage reads the held-out split.
    """
    splits = load_dataset(DatasetSettings(**params))
    train = {"x": splits.train, "labels": splits.train_labels}
    validation = {"x": splits.validation, "labels": splits.validation_labels}
    heldout = {"x": splits.heldout, "labels": splits.heldout_labels}
    return train, validation, heldout, splits.metadata
