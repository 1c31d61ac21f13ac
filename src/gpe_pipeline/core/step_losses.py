"""The loss of one training batch for each trainer: what `training.train` calls every step.

Each takes the (possibly DDP-wrapped, compiled) model and the batch drawn from
the trainer's in-memory tensors, maps uint8 images to [-1, 1] on the device,
and returns a scalar. They are module-level functions (with `functools.partial`
for options) so they pickle into spawned DDP processes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import Tensor, nn

from .data import augment_images, to_model_scale
from .distributed import distributed_pairwise_loss
from .losses import (
    ENCODER_LOSSES,
    PAIRWISE_RESIDUALS,
    cfm_loss,
    classifier_loss,
    mds_regulariser_residual,
    reconstruction_loss,
    vae_family_loss,
)

# Each pairwise loss pairs every row with the whole batch: under DDP it gathers the batch from all ranks.
ENCODER_STEP_LOSSES = {name: partial(distributed_pairwise_loss, PAIRWISE_RESIDUALS[name]) for name in ENCODER_LOSSES}


def encoder_step_loss(
    model: nn.Module, batch: tuple[Tensor, ...], loss_name: str = "gme", augment: dict[str, Any] | None = None
) -> Tensor:
    """The encoder loss of one batch (x,): loss(T x, x), after uint8 -> [-1, 1] and the optional augmentations."""
    x = to_model_scale(batch[0])
    if augment and x.ndim == 4:
        x = augment_images(x, **augment)
    return ENCODER_STEP_LOSSES[loss_name](model(x), x)


def joint_step_loss(model: nn.Module, batch: tuple[Tensor, ...], beta: float, mds_weight: float) -> dict[str, Tensor]:
    """The VAE family's joint loss of one batch (x,) through a JointAutoencoder (SPEC 1 scaling).

    Returns {"loss", "reconstruction", "kl", "mds"}: the training loop minimises "loss" and logs the terms.
    R_MDS pairs this process's rows with the batch gathered from every rank, like the encoder losses.
    """
    x = to_model_scale(batch[0])
    reconstruction, mean, logvar = model(x)
    mds_term = distributed_pairwise_loss(mds_regulariser_residual, mean, x) if mds_weight > 0 else None
    return vae_family_loss(reconstruction, x, mean, logvar, beta, mds_weight, mds_term=mds_term)


def decoder_step_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """Reconstruction MSE of one batch of cached pairs (latent, x)."""
    return reconstruction_loss(model(batch[0]), to_model_scale(batch[1]))


def flow_step_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """Conditional flow matching loss of one batch of normalised latents (y,)."""
    return cfm_loss(model, batch[0])


def classifier_step_loss(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    """Cross-entropy of one batch (x, labels)."""
    return classifier_loss(model, to_model_scale(batch[0]), batch[1])
