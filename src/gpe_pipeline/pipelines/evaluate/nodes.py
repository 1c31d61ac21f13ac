"""Nodes of the evaluate pipeline.

The held-out split is cut in two halves: `evaluation` (A) and `reference` (B).
Reconstructions of B and a generated set of the same size are compared with A;
the real-vs-real floor of each Frechet distance is B against A. No model of the
run trained on either half (the feature classifier trains on the train split).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from gpe_pipeline import plotting
from gpe_pipeline.core.data import to_model_scale
from gpe_pipeline.core.latents import decode, normalise_latents
from gpe_pipeline.core.losses import reconstruction_loss
from gpe_pipeline.core.metrics import (
    bilipschitz_p95,
    frechet_distance,
    gme_heldout,
    inception_available,
    inception_features,
    inception_weights_path,
    local_distortion,
)
from gpe_pipeline.core.models import NoModel
from gpe_pipeline.core.sampling import sample_images
from gpe_pipeline.core.step_losses import classifier_step_loss
from gpe_pipeline.core.training import resolve_device
from gpe_pipeline.params import model_from_params
from gpe_pipeline.tracking import log_metrics, train_and_log

logger = logging.getLogger(__name__)


def split_halves(num_heldout: int, limit: int) -> tuple[slice, slice]:
    """The evaluation half A and reference half B of the held-out split, each at most `limit` long."""
    half = min(num_heldout // 2, limit)
    if half < 2:
        raise ValueError(
            f"evaluate needs at least 4 held-out examples, got {num_heldout}: lower ingest.heldout_fraction's complement"
        )
    return slice(0, half), slice(half, 2 * half)


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


def generate_samples(
    flow: nn.Module, decoder: nn.Module, latent_stats: dict[str, Tensor], metadata: dict[str, Any], params: dict[str, Any]
) -> tuple[Tensor, dict[str, Any]]:
    """As many generated examples as the reference half holds: integrate the flow ODE from N(0, I) and decode."""
    sampling = params["sampling"]
    _, reference = split_halves(metadata["num_heldout"], params["max_points"])
    count = max(reference.stop - reference.start, params.get("num_figure_samples", 64))
    device = resolve_device(params["device"])
    start = time.perf_counter()
    images, nfe = sample_images(
        flow.to(device),
        decoder.to(device),
        latent_stats["mean"],
        latent_stats["scale"],
        count,
        batch_size=params["batch_size"],
        solver=sampling["solver"],
        steps=sampling["steps"],
        rtol=sampling.get("rtol", 1e-5),
        atol=sampling.get("atol", 1e-5),
        generator=torch.Generator().manual_seed(sampling.get("seed", 0)),
    )
    info = {
        "solver": sampling["solver"],
        "steps": sampling["steps"],
        "nfe": nfe,
        "num_samples": count,
        "seconds": time.perf_counter() - start,
    }
    return images, info


def _frechet_with_floor(
    name: str, features, evaluation: Tensor, reference: Tensor, candidates: dict[str, Tensor]
) -> dict[str, Any]:
    """FD of each candidate set against the evaluation half, with the reference half's FD as the real-vs-real floor."""
    evaluation_features = features(evaluation)
    results: dict[str, Any] = {f"{name}_floor": frechet_distance(features(reference), evaluation_features)}
    for label, images in candidates.items():
        results[f"{name}_{label}"] = frechet_distance(features(images), evaluation_features)
    return results


def compute_metrics(
    encoder: nn.Module,
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
    evaluation, reference = split_halves(len(heldout), params["max_points"])
    size = evaluation.stop - evaluation.start
    real_a, real_b = heldout[evaluation], heldout[reference]
    candidates = {"gen": generated[:size], "recon": reconstructions[reference]}
    geometry_points = heldout[: params["max_points"]]
    geometry_latents = heldout_latents[: params["max_points"]]
    encoder = encoder.eval()
    metrics: dict[str, Any] = {
        "recon_mse": float(reconstruction_loss(reconstructions, heldout)),  # S(T x) of every held-out row
        "gme_heldout": gme_heldout(geometry_latents, geometry_points),
        "bilipschitz_p95": bilipschitz_p95(geometry_latents, geometry_points),
        "local_distortion": local_distortion(
            encoder, geometry_points, k=params["neighbours"], max_points=params["distortion_points"], seed=params.get("seed", 0)
        ),
        "frechet_points": size,
        "geometry_points": len(geometry_points),
        "sampling_nfe": generation_info["nfe"],
        "sampling_seconds": generation_info["seconds"],
    }
    metrics.update(_frechet_with_floor("fd_pixel", lambda x: x.reshape(len(x), -1), real_a, real_b, candidates))
    if not isinstance(feature_classifier, NoModel):
        classifier = feature_classifier.eval()
        with torch.no_grad():
            metrics.update(_frechet_with_floor("fd_classifier", classifier.features, real_a, real_b, candidates))
    if not params.get("fid", True):
        metrics["fid_status"] = "disabled by evaluate.fid"
    elif heldout.ndim != 4:
        metrics["fid_status"] = "skipped: FID needs images, this dataset holds vectors"
    elif not inception_available():
        weights = inception_weights_path()
        logger.warning(
            "evaluate: FID skipped: the Inception weights %s are not in %s (put the file there to enable FID)",
            weights.name,
            weights.parent,
        )
        metrics["fid_status"] = f"skipped: {weights.name} not in {weights.parent}"
    else:
        metrics.update(_frechet_with_floor("fid", inception_features, real_a, real_b, candidates))
        metrics["fid_status"] = "computed"
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
