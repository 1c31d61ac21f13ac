"""Nodes of the train_decoder pipeline."""

from __future__ import annotations

from typing import Any

import pandas as pd
from torch import Tensor, nn

from gpe_pipeline.core.losses import reconstruction_loss
from gpe_pipeline.core.metrics import reconstruction_mse
from gpe_pipeline.params import model_from_params
from gpe_pipeline.tracking import train_and_log


def train_decoder(
    train_latents: Tensor,
    heldout_latents: Tensor,
    train_data: dict[str, Any],
    heldout_data: dict[str, Any],
    metadata: dict[str, Any],
    params: dict[str, Any],
) -> tuple[nn.Module, pd.DataFrame]:
    """Minimise the reconstruction MSE on cached (latent, x) pairs; the encoder never runs here."""
    decoder = model_from_params(
        "decoder", "train_decoder", params, data_shape=metadata["shape"], latent_dim=train_latents.shape[1]
    )
    n_eval = params.get("eval_samples", 2000)
    heldout_y, heldout_x = heldout_latents[:n_eval], heldout_data["x"][:n_eval]
    return train_and_log(
        "train_decoder",
        decoder,
        lambda model, batch: reconstruction_loss(model(batch[0]), batch[1]),
        [train_latents, train_data["x"]],
        params["training"],
        evaluate=lambda model: {"mse": reconstruction_mse(model, heldout_y, heldout_x)},
        target_metric="mse",
    )
