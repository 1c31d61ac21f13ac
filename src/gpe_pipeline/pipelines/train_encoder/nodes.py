"""Nodes of the train_encoder pipeline."""

from __future__ import annotations

from typing import Any

import pandas as pd
from torch import nn

from gpe_pipeline.core.latents import encode
from gpe_pipeline.core.losses import ENCODER_LOSSES
from gpe_pipeline.core.metrics import gme_heldout
from gpe_pipeline.params import model_from_params
from gpe_pipeline.tracking import train_and_log


def encoder_loss(name: str):
    if name not in ENCODER_LOSSES:
        raise ValueError(f"unknown train_encoder.loss '{name}': choose one of {sorted(ENCODER_LOSSES)}")
    return ENCODER_LOSSES[name]


def train_encoder(
    train_data: dict[str, Any], heldout_data: dict[str, Any], metadata: dict[str, Any], params: dict[str, Any]
) -> tuple[nn.Module, pd.DataFrame]:
    """Minimise the encoder loss (GME by default) with Adam until max_steps or the held-out GME target."""
    loss = encoder_loss(params.get("loss", "gme"))
    encoder = model_from_params("encoder", "train_encoder", params, data_shape=metadata["shape"], latent_dim=params["latent_dim"])
    heldout = heldout_data["x"][: params.get("eval_samples", 2000)]
    training = params["training"]

    def evaluate(model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        latents = encode(model, heldout, device=str(device))
        return {"gme": gme_heldout(latents.to(device), heldout.to(device))}

    return train_and_log(
        "train_encoder",
        encoder,
        lambda model, batch: loss(model(batch[0]), batch[0]),
        [train_data["x"]],
        training,
        evaluate=evaluate,
        target_metric="gme",
        min_batch_size=2,
    )
