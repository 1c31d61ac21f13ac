"""Nodes of the evaluate pipeline: every measurement of SPEC 2 on the held-out split, and the figures.

The comparison sets, the samples and the distances are evaluation.py's (E6 measures its snapshots with them too).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from gpe_pipeline import plotting
from gpe_pipeline.core.data import to_model_scale
from gpe_pipeline.core.latents import decode, normalise_latents
from gpe_pipeline.core.losses import reconstruction_loss
from gpe_pipeline.core.metrics import bilipschitz_p95, gme_heldout, local_distortion
from gpe_pipeline.core.models import NoModel
from gpe_pipeline.core.step_losses import classifier_step_loss
from gpe_pipeline.evaluation import distance_features, distribution_distances, real_comparison_sets
from gpe_pipeline.params import model_from_params
from gpe_pipeline.tracking import log_metrics, train_and_log

logger = logging.getLogger(__name__)


def train_feature_classifier(
    train_data: dict[str, Any], metadata: dict[str, Any], params: dict[str, Any]
) -> tuple[nn.Module, pd.DataFrame]:
    """A small classifier on the train split whose features give the classifier Frechet distance; None without labels."""
    if train_data.get("labels") is None or metadata.get("num_classes", 0) < 2:
        logger.info("evaluate: the dataset has no labels, so no feature classifier is trained")
        return NoModel(), pd.DataFrame({"step": [], "train_loss": []})
    section = params["classifier"]
    classifier = model_from_params(
        "classifier", "evaluate.classifier", section, data_shape=metadata["shape"], num_classes=metadata["num_classes"]
    )
    return train_and_log(
        "feature_classifier",
        classifier,
        classifier_step_loss,
        [train_data["x"], train_data["labels"]],
        section["training"],
    )


def reconstruct_heldout(decoder: nn.Module, heldout_latents: Tensor, params: dict[str, Any]) -> Tensor:
    """S(T x) of the held-out split from its cached latents (the encoder does not run again)."""
    return decode(decoder, heldout_latents, params["batch_size"], params["device"])


def compute_metrics(
    encoder: nn.Module,
    train_data: dict[str, Any],
    heldout_data: dict[str, Any],
    heldout_latents: Tensor,
    reconstructions: Tensor,
    generated: Tensor,
    generation_info: dict[str, Any],
    feature_classifier: nn.Module,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Every measurement of SPEC 2 on the held-out split, as one flat dict (also logged to MLflow)."""
    heldout = to_model_scale(heldout_data["x"])
    seed = params.get("seed", 0)
    real, heldout_rows = real_comparison_sets(train_data, heldout, params)
    size = len(heldout_rows)
    sets = {**real, "gen": generated[:size], "recon": reconstructions[heldout_rows]}
    geometry_points = heldout[: params["geometry_points"]]
    geometry_latents = heldout_latents[: params["geometry_points"]]
    encoder = encoder.eval()
    metrics: dict[str, Any] = {
        "recon_mse": float(reconstruction_loss(reconstructions, heldout)),  # S(T x) of every held-out row, unrounded
        "gme_heldout": gme_heldout(geometry_latents, geometry_points),
        "bilipschitz_p95": bilipschitz_p95(geometry_latents, geometry_points),
        "local_distortion": local_distortion(
            encoder, geometry_points, k=params["neighbours"], max_points=params["distortion_points"], seed=seed
        ),
        "frechet_points": size,
        "geometry_points": len(geometry_points),
        "sampling_nfe": generation_info["nfe"],
        "sampling_seconds": generation_info["seconds"],
    }
    features, metrics["fid_status"] = distance_features(feature_classifier, params, images=heldout.ndim == 4)
    metrics.update(distribution_distances(sets, features, params))
    log_metrics("evaluate", {k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    return metrics


def make_figures(
    heldout_data: dict[str, Any],
    reconstructions: Tensor,
    generated: Tensor,
    heldout_latents: Tensor,
    latent_stats: dict[str, Tensor],
    decoder: nn.Module,
    encoder_history: pd.DataFrame,
    decoder_history: pd.DataFrame,
    flow_history: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Figure]:
    """Reconstructions under their originals, generated samples, a latent interpolation grid, a latent scatter, loss curves."""
    count = params.get("num_figure_samples", 64)
    heldout = to_model_scale(heldout_data["x"])
    mean, scale = latent_stats["mean"], latent_stats["scale"]
    normalised = normalise_latents(heldout_latents, mean, scale)
    gaussian = torch.randn(normalised.shape, generator=torch.Generator().manual_seed(0))
    figures = {
        "latent_scatter.png": plotting.latent_scatter_figure(normalised, gaussian),
        "loss_curves.png": plotting.loss_curves_figure(
            {"encoder (GME)": encoder_history, "decoder (MSE)": decoder_history, "flow (CFM)": flow_history}
        ),
    }
    if heldout.ndim == 4:
        figures["reconstructions.png"] = plotting.reconstruction_figure(heldout[:count], reconstructions[:count])
        figures["samples.png"] = plotting.image_grid_figure(generated[:count], "generated samples")
        figures["interpolation.png"] = plotting.image_grid_figure(
            interpolate(
                decoder, heldout_latents, rows=params.get("interpolation_rows", 6), steps=params.get("interpolation_steps", 8)
            ),
            "latent interpolation between held-out examples",
            columns=params.get("interpolation_steps", 8),
        )
    else:
        figures["samples.png"] = plotting.vector_samples_figure(heldout, generated, "first two coordinates")
    return figures


def interpolate(decoder: nn.Module, latents: Tensor, rows: int, steps: int) -> Tensor:
    """Decoded straight lines between pairs of held-out latents: (rows * steps, ...) images."""
    rows = min(rows, len(latents) // 2)
    weights = torch.linspace(0, 1, steps)[None, :, None]
    start, end = latents[:rows, None, :], latents[rows : 2 * rows, None, :]
    path = ((1 - weights) * start + weights * end).reshape(rows * steps, -1)
    with torch.no_grad():
        return decoder.eval()(path)
