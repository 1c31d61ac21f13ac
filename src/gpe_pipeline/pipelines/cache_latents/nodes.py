"""Nodes of the cache_latents pipeline."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gpe_pipeline.core.latents import encode, latent_scale
from gpe_pipeline.tracking import log_metrics


def cache_latents(
    encoder: nn.Module,
    train_data: dict[str, Any],
    validation_data: dict[str, Any],
    heldout_data: dict[str, Any],
    params: dict[str, Any],
) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """Encode the three splits once (no grad, batched) and compute the centring mean m and scale C from the train latents."""
    batch_size = params.get("batch_size", 1024)
    device = params.get("device", "auto")
    train_latents, validation_latents, heldout_latents = (
        encode(encoder, split["x"], batch_size, device) for split in (train_data, validation_data, heldout_data)
    )
    mean, scale = latent_scale(train_latents)
    log_metrics("cache_latents", {"latent_scale": float(scale)})
    return train_latents, validation_latents, heldout_latents, {"mean": mean, "scale": scale}
