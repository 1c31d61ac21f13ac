"""Nodes of the train_flow pipeline."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from gpe_pipeline.core.latents import normalise_latents
from gpe_pipeline.core.losses import cfm_loss
from gpe_pipeline.core.step_losses import flow_step_loss
from gpe_pipeline.params import model_from_params
from gpe_pipeline.tracking import train_and_log_result


def validation_cfm(model: nn.Module, latents: Tensor, noise: Tensor, times: Tensor) -> dict[str, float]:
    """CFM loss of the normalised validation latents at fixed noise and times, comparable across evaluations."""
    device = next(model.parameters()).device
    return {"cfm": float(cfm_loss(model, latents.to(device), noise.to(device), times.to(device)))}


def train_flow(
    train_latents: Tensor, validation_latents: Tensor, latent_stats: dict[str, Tensor], params: dict[str, Any]
) -> tuple[nn.Module, pd.DataFrame, dict[int, dict[str, Tensor]]]:
    """Fit the latent velocity field by conditional flow matching on the cached, normalised latents.

    Returns the moving-average velocity field (used for sampling), the loss history, and the field's weights
    after each of training.snapshot_steps (empty by default; generation against flow iterations reads them).
    """
    mean, scale = latent_stats["mean"], latent_stats["scale"]
    train_y = normalise_latents(train_latents, mean, scale)
    validation_y = normalise_latents(validation_latents[: params.get("eval_samples", 2000)], mean, scale)
    # Fixed noise and times make the validation loss comparable from one evaluation to the next.
    generator = torch.Generator().manual_seed(params["training"].get("seed", 0))
    validation_noise = torch.randn(validation_y.shape, generator=generator)
    validation_t = torch.rand(len(validation_y), generator=generator)
    velocity = model_from_params("velocity", "train_flow", params, latent_dim=train_y.shape[1])

    result = train_and_log_result(
        "train_flow",
        velocity,
        flow_step_loss,
        [train_y],
        params["training"],
        evaluate=partial(validation_cfm, latents=validation_y, noise=validation_noise, times=validation_t),
        target_metric="cfm",
    )
    return result.model, pd.DataFrame(result.history), result.snapshots
