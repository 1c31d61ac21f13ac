"""Nodes of the train_decoder pipeline."""

from __future__ import annotations

from typing import Any

import pandas as pd
from torch import Tensor, nn

from gpe_pipeline.core.models import NoModel
from gpe_pipeline.stage_training import train_decoder_model
from gpe_pipeline.tracking import MlflowMetricsLogger, log_training_summary

# The columns of a jointly trained model's history that describe its decoder, under the decoder stage's names.
JOINT_DECODER_COLUMNS = {"train_reconstruction": "train_loss", "validation_mse": "validation_mse"}


def train_decoder(
    train_latents: Tensor,
    validation_latents: Tensor,
    train_data: dict[str, Any],
    validation_data: dict[str, Any],
    metadata: dict[str, Any],
    joint_decoder: nn.Module,
    encoder_history: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[nn.Module, pd.DataFrame]:
    """Minimise the reconstruction MSE on cached (latent, x) pairs; the encoder never runs here.

    A baseline (VAE family) arrives with the decoder trained jointly with its encoder: it is kept, unless
    train_decoder.fresh_decoder asks for a new decoder on the frozen encoder's latents (the paper's Table 1).
    A new decoder trains as stage_training.train_decoder_model.
    """
    if not isinstance(joint_decoder, NoModel) and not params.get("fresh_decoder", False):
        return joint_decoder, kept_decoder_history(encoder_history)
    return train_decoder_model(train_latents, validation_latents, train_data["x"], validation_data["x"], metadata, params)


def kept_decoder_history(joint_history: pd.DataFrame) -> pd.DataFrame:
    """The jointly trained decoder's curve under the decoder stage's names, also logged as train_decoder/* metrics.

    So every variant has train_decoder/validation_mse in MLflow and in decoder_history; `trained_jointly` marks
    that these steps and seconds belong to the encoder stage (a comparison must not count them twice).
    """
    keep = ["step", *JOINT_DECODER_COLUMNS, "steps_per_sec", "elapsed_s", "train_elapsed_s"]
    history = joint_history[[column for column in keep if column in joint_history]].rename(columns=JOINT_DECODER_COLUMNS)
    records = history.to_dict("records")
    MlflowMetricsLogger("train_decoder").log_records(
        [({k: v for k, v in record.items() if k != "step"}, int(record["step"])) for record in records]
    )
    final = {"validation_mse": float(records[-1]["validation_mse"])}
    # The summary a trained decoder logs: the decoder stage itself trained for 0 seconds.
    stop_reason = "kept the decoder trained jointly with the encoder (fresh_decoder: false)"
    log_training_summary("train_decoder", int(records[-1]["step"]), 0.0, final, stop_reason)
    return history.assign(trained_jointly=True)
