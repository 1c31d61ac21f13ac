"""The encoder and decoder stages' training as plain functions: sections and tensors in, models and histories out.

The train_encoder and train_decoder nodes are thin layers on top of them; E5's learning-rate probe calls the same
functions with its probe settings. Each trains through tracking.train_and_log (core/training.py's loop, logged to
MLflow under the stage's name); nothing here imports Kedro.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
from torch import Tensor, nn

from gpe_pipeline.core.data import to_model_scale
from gpe_pipeline.core.latents import encode
from gpe_pipeline.core.metrics import bilipschitz_p95, gme_heldout, local_distortion, reconstruction_mse
from gpe_pipeline.core.models import JointAutoencoder, NoModel
from gpe_pipeline.core.step_losses import decoder_step_loss, encoder_step_loss, joint_step_loss
from gpe_pipeline.params import check_decoder_covers_data, joint_min_batch_size, model_from_params
from gpe_pipeline.tracking import train_and_log, train_and_log_result

# What every method's encoder stage logs to MLflow, so the variants' runs share their metric names. A baseline's
# own terms (train_reconstruction, train_kl, train_mds, validation_mse) stay in its encoder_history; its validation
# reconstruction curve reaches MLflow as train_decoder/validation_mse (train_decoder.nodes.kept_decoder_history).
GEOMETRY_POINTS = 200  # validation points at which local_distortion probes the Jacobian when eval_geometry is on
ENCODER_STAGE_METRICS = (
    "train_loss",
    "validation_gme",
    "validation_bilipschitz_p95",
    "validation_local_distortion",
    "steps_per_sec",
    "elapsed_s",
    "train_elapsed_s",
    "steps",
    "train_seconds",
    "final_validation_gme",
    "final_validation_bilipschitz_p95",
    "final_validation_local_distortion",
)


def validation_geometry(
    encoder: nn.Module, points: Tensor, geometry: bool = False, latents: Tensor | None = None
) -> dict[str, float]:
    """All-pairs GME of the validation points (the formula evaluate applies to the held-out split).

    geometry: also bilipschitz_p95 and local_distortion (SPEC 2) of the same points, as the stability study
    (E2) records at every evaluation; local_distortion probes at most GEOMETRY_POINTS of them.
    latents: encoder(points) when the caller has them already.
    """
    device = next(encoder.parameters()).device
    latents = encode(encoder, points, device=str(device)) if latents is None else latents
    data = to_model_scale(points.to(device))
    metrics = {"gme": gme_heldout(latents.to(device), data)}
    if geometry:
        metrics["bilipschitz_p95"] = bilipschitz_p95(latents, data.cpu())
        metrics["local_distortion"] = local_distortion(encoder, data, max_points=GEOMETRY_POINTS)
    return metrics


def joint_validation(model: JointAutoencoder, points: Tensor, geometry: bool = False) -> dict[str, float]:
    """Validation reconstruction MSE through the mean latent (no sampling), and the mean encoder's geometry."""
    device = next(model.parameters()).device
    latents = encode(model.encoder, points, device=str(device))
    geometry_metrics = validation_geometry(model.encoder, points, geometry, latents=latents)
    return {"mse": reconstruction_mse(model.decoder, latents, points), **geometry_metrics}


def train_encoder_model(
    train_x: Tensor, validation_x: Tensor, metadata: dict[str, Any], params: dict[str, Any], decoder_params: dict[str, Any]
) -> tuple[nn.Module, pd.DataFrame, nn.Module, dict[float, dict[str, Any]]]:
    """The encoder of train_encoder.method: GPE's (GME or an MDS loss, alone), or a VAE/AE baseline's mean encoder.

    train_x, validation_x: the splits' examples (N, ...); metadata: the dataset's (its shape); params, decoder_params:
    the train_encoder and train_decoder sections. Returns the deterministic encoder, its training history and, for a
    baseline, the decoder trained jointly with it (NoModel for GPE, whose decoder the decoder stage trains on the
    cached latents), and its weights at each level of training.snapshot_at it reached (train_encoder_stage).
    """
    if params.get("method", "gpe") != "gpe":
        return train_jointly(train_x, validation_x, metadata, params, decoder_params)
    encoder = model_from_params("encoder", "train_encoder", params, data_shape=metadata["shape"], latent_dim=params["latent_dim"])
    step_loss = partial(encoder_step_loss, loss_name=params.get("loss", "gme"), augment=dict(params.get("augment") or {}))
    encoder, history, snapshots = train_encoder_stage(encoder, step_loss, train_x, validation_x, params, params["training"], "gme")
    return encoder, history, NoModel(), snapshots


def train_encoder_stage(
    model: nn.Module,
    step_loss,
    train_x: Tensor,
    validation_x: Tensor,
    params: dict[str, Any],
    training: dict[str, Any],
    target_metric: str,
    min_batch_size: int = 2,
    params_key: str | None = None,
) -> tuple[nn.Module, pd.DataFrame, dict[float, dict[str, Any]]]:
    """The encoder stage's training, whatever the method: logged as train_encoder with ENCODER_STAGE_METRICS,
    evaluated on the first train_encoder.eval_samples validation points (validation_geometry, or joint_validation
    for a JointAutoencoder). Returns the model, its history and its weights at each level of training.snapshot_at
    it reached ({level: {"step", "value", "weights"}})."""
    validation = joint_validation if isinstance(model, JointAutoencoder) else validation_geometry
    result = train_and_log_result(
        "train_encoder",
        model,
        step_loss,
        [train_x],
        training,
        evaluate=partial(
            validation, points=validation_x[: params.get("eval_samples", 2000)], geometry=params.get("eval_geometry", False)
        ),
        target_metric=target_metric,
        min_batch_size=min_batch_size,
        mlflow_metrics=ENCODER_STAGE_METRICS,
        params_key=params_key,
    )
    return result.model, pd.DataFrame(result.history), result.level_snapshots


def train_jointly(
    train_x: Tensor, validation_x: Tensor, metadata: dict[str, Any], params: dict[str, Any], decoder_params: dict[str, Any]
) -> tuple[nn.Module, pd.DataFrame, nn.Module, dict[float, dict[str, Any]]]:
    """A VAE (method vae: z = mu + sigma eps, KL weight beta) or AE (method ae: z = mu) with R_MDS weight mds_weight.

    The encoder is a Gaussian encoder on train_encoder's architecture; the decoder is the one the decoder stage
    would build (train_decoder's architecture and options), so every method shares the same bodies (SPEC 1).
    Training settings are the decoder stage's (train_decoder.training: the budget GPE's decoder gets, and its
    target on the validation reconstruction MSE); only the checkpoint file is train_encoder.training's.
    """
    shape, latent_dim = metadata["shape"], params["latent_dim"]
    stochastic = params["method"] == "vae"
    encoder = model_from_params(
        "gaussian_encoder", "train_encoder", params, data_shape=shape, latent_dim=latent_dim, stochastic=stochastic
    )
    decoder = model_from_params("decoder", "train_decoder", decoder_params, data_shape=shape, latent_dim=latent_dim)
    # beta weighs the KL term, which the AE family (no log-variance head) does not have.
    step_loss = partial(joint_step_loss, beta=float(params.get("beta", 0.0)), mds_weight=float(params.get("mds_weight", 0.0)))
    training = {**decoder_params["training"], "checkpoint_path": params["training"].get("checkpoint_path")}
    model, history, snapshots = train_encoder_stage(
        JointAutoencoder(encoder, decoder),
        step_loss,
        train_x,
        validation_x,
        params,
        training,
        "mse",
        joint_min_batch_size(params),
        params_key="train_decoder.training",  # the settings it trains with: errors name the key to change
    )
    return model.encoder, history, model.decoder, snapshots


def validation_mse(model: nn.Module, latents: Tensor, data: Tensor) -> dict[str, float]:
    """Reconstruction MSE of the validation split from its cached latents."""
    return {"mse": reconstruction_mse(model, latents, data)}


def train_decoder_model(
    train_latents: Tensor,
    validation_latents: Tensor,
    train_x: Tensor,
    validation_x: Tensor,
    metadata: dict[str, Any],
    params: dict[str, Any],
) -> tuple[nn.Module, pd.DataFrame]:
    """A new decoder minimising the reconstruction MSE on cached (latent, x) pairs; the encoder never runs here.

    train_latents, validation_latents: (N, d) latents of the splits' examples train_x, validation_x (N, ...);
    metadata: the dataset's (shape, value_range, dataset); params: the train_decoder section. The decoder's outputs
    must reach the data's value range (refused before training otherwise).
    """
    decoder = model_from_params(
        "decoder", "train_decoder", params, data_shape=metadata["shape"], latent_dim=train_latents.shape[1]
    )
    value_range = metadata["value_range"]  # of the ingested data, in model scale: refuse before training
    data_source = f"the ingested '{metadata.get('dataset')}' data (dataset_metadata value_range {value_range})"
    check_decoder_covers_data(decoder, tuple(value_range), data_source, "train_decoder", params)
    n_eval = params.get("eval_samples", 2000)
    validation_y, validation_x = validation_latents[:n_eval], validation_x[:n_eval]
    return train_and_log(
        "train_decoder",
        decoder,
        decoder_step_loss,
        [train_latents, train_x],
        params["training"],
        evaluate=partial(validation_mse, latents=validation_y, data=validation_x),
        target_metric="mse",
    )
