"""Nodes of the train_encoder pipeline."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
from torch import Tensor, nn

from gpe_pipeline.core.data import to_model_scale
from gpe_pipeline.core.latents import encode
from gpe_pipeline.core.metrics import gme_heldout
from gpe_pipeline.core.step_losses import encoder_step_loss
from gpe_pipeline.params import model_from_params
from gpe_pipeline.tracking import train_and_log


def validation_gme(model: nn.Module, points: Tensor) -> dict[str, float]:
    """All-pairs GME of the validation points (the same formula evaluate applies to the held-out split)."""
    device = next(model.parameters()).device
    latents = encode(model, points, device=str(device))
    return {"gme": gme_heldout(latents.to(device), to_model_scale(points.to(device)))}


def train_encoder(
    train_data: dict[str, Any], validation_data: dict[str, Any], metadata: dict[str, Any], params: dict[str, Any]
) -> tuple[nn.Module, pd.DataFrame]:
    """Minimise the encoder loss (GME by default) with Adam until max_steps or the validation GME target."""
    encoder = model_from_params("encoder", "train_encoder", params, data_shape=metadata["shape"], latent_dim=params["latent_dim"])
    return train_and_log(
        "train_encoder",
        encoder,
        partial(encoder_step_loss, loss_name=params.get("loss", "gme"), augment=dict(params.get("augment") or {})),
        [train_data["x"]],
        params["training"],
        evaluate=partial(validation_gme, points=validation_data["x"][: params.get("eval_samples", 2000)]),
        target_metric="gme",
        min_batch_size=2,
    )
