"""Nodes of the train_encoder pipeline: GPE's encoder alone, or a VAE-family baseline trained jointly with its decoder."""

from __future__ import annotations

from typing import Any

import pandas as pd
from torch import nn

from gpe_pipeline.stage_training import train_encoder_model


def train_encoder(
    train_data: dict[str, Any],
    validation_data: dict[str, Any],
    metadata: dict[str, Any],
    params: dict[str, Any],
    decoder_params: dict[str, Any],
) -> tuple[nn.Module, pd.DataFrame, nn.Module, dict[float, dict[str, Any]]]:
    """The encoder stage on the splits' examples (stage_training.train_encoder_model): (encoder, history, the
    decoder trained jointly with a baseline's encoder or NoModel for GPE's, the weights at each level of
    train_encoder.training.snapshot_at it reached: empty unless asked for)."""
    return train_encoder_model(train_data["x"], validation_data["x"], metadata, params, decoder_params)
