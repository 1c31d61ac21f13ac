"""Nodes of the ingest pipeline."""

from __future__ import annotations

from typing import Any

from gpe_pipeline.core.data import load_dataset


def ingest_dataset(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Load the dataset named in the parameters: train split, held-out split, metadata.

    Each split is {"x": float32 tensor (N, ...) in model scale, "labels": int64 (N,) or None}.
    """
    splits = load_dataset(**params)
    train = {"x": splits.train, "labels": splits.train_labels}
    heldout = {"x": splits.heldout, "labels": splits.heldout_labels}
    return train, heldout, splits.metadata
