"""Nodes of the train_decoder pipeline."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
from torch import Tensor, nn

from gpe_pipeline.core.metrics import reconstruction_mse
from gpe_pipeline.core.step_losses import decoder_step_loss
from gpe_pipeline.params import check_decoder_covers_data, model_from_params
from gpe_pipeline.tracking import train_and_log


def validation_mse(model: nn.Module, latents: Tensor, data: Tensor) -> dict[str, float]:
    """Reconstruction MSE of the validation split from its cached latents."""
    return {"mse": reconstruction_mse(model, latents, data)}


def train_decoder(
    train_latents: Tensor,
    validation_latents: Tensor,
    train_data: dict[str, Any],
    validation_data: dict[str, Any],
    metadata: dict[str, Any],
    params: dict[str, Any],
) -> tuple[nn.Module, pd.DataFrame]:
    """Minimise the reconstruction MSE on cached (latent, x) pairs; the encoder never runs here."""
    decoder = model_from_params(
        "decoder", "train_decoder", params, data_shape=metadata["shape"], latent_dim=train_latents.shape[1]
    )
    value_range = metadata["value_range"]  # of the ingested data, in model scale: refuse before training
    data_source = f"the ingested '{metadata.get('dataset')}' data (dataset_metadata value_range {value_range})"
    check_decoder_covers_data(decoder, tuple(value_range), data_source, "train_decoder", params)
    n_eval = params.get("eval_samples", 2000)
    validation_y, validation_x = validation_latents[:n_eval], validation_data["x"][:n_eval]
    return train_and_log(
        "train_decoder",
        decoder,
        decoder_step_loss,
        [train_latents, train_data["x"]],
        params["training"],
        evaluate=partial(validation_mse, latents=validation_y, data=validation_x),
        target_metric="mse",
    )
