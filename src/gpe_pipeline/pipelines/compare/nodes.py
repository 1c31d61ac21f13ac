"""Nodes of the compare pipeline: the side-by-side summary of every variant (the variants' stages are the usual ones)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from torch import Tensor

from gpe_pipeline import plotting
from gpe_pipeline.core.data import to_model_scale
from gpe_pipeline.core.latents import normalise_latents
from gpe_pipeline.readings import by_variant, markdown_table, reconstruction_curve, stage_costs
from gpe_pipeline.variants import method_label

# Each variant's catalog entries the summary reads (compare.<variant>.<entry>), besides its train_encoder section.
SUMMARY_INPUTS = (
    "evaluation_metrics",
    "encoder_history",
    "decoder_history",
    "flow_history",
    "generated_samples",
    "heldout_latents",
    "latent_stats",
)
GEOMETRY_METRICS = ("recon_mse", "gme_heldout", "bilipschitz_p95", "local_distortion")
# The Frechet distances (fd_*, fid_*) and kernel distances (kd_*, kid_*) of evaluate, with their floors.
DISTANCE_PREFIXES = ("fd_", "fid_", "kd_", "kid_")
# Their uncertainty columns: in the CSV, left out of the markdown table to keep it readable.
UNCERTAINTY_SUFFIXES = ("_ci_low", "_ci_high", "_std")
# Evaluation metrics that are bookkeeping rather than measurements; left out of the table.
NOT_MEASUREMENTS = ("frechet_points", "geometry_points", "sampling_nfe", "sampling_seconds")


def summary_row(variant: str, method: str, outputs: dict[str, Any]) -> dict[str, Any]:
    """One variant's stage costs and held-out measurements."""
    (encoder_steps, encoder_seconds), (decoder_steps, decoder_seconds), (flow_steps, flow_seconds) = stage_costs(outputs)
    row: dict[str, Any] = {
        "variant": variant,
        "method": method,
        "encoder_steps": encoder_steps,
        "encoder_s": round(encoder_seconds, 2),
        "decoder_steps": decoder_steps,
        "decoder_s": round(decoder_seconds, 2),
        "flow_steps": flow_steps,
        "flow_s": round(flow_seconds, 2),
        "total_train_s": round(encoder_seconds + decoder_seconds + flow_seconds, 2),
    }
    metrics = outputs["evaluation_metrics"]
    row.update({name: metrics.get(name) for name in GEOMETRY_METRICS})
    distances = sorted(
        key
        for key, value in metrics.items()
        if key.startswith(DISTANCE_PREFIXES) and isinstance(value, (int, float)) and key not in NOT_MEASUREMENTS
    )
    row.update({key: metrics[key] for key in distances})
    return row


def summarise_comparison(
    metadata: dict[str, Any], heldout_data: dict[str, Any], **variant_outputs: Any
) -> tuple[pd.DataFrame, str, dict[str, Figure]]:
    """The comparison of every variant: a summary table (CSV and markdown) and three figures.

    variant_outputs: "<variant>__<entry>" for every entry of SUMMARY_INPUTS, and "<variant>__train_encoder", the
    variant's train_encoder section (which gives its method).
    Figures: validation reconstruction MSE against training seconds, generated samples, normalised latents.
    """
    variants = by_variant(variant_outputs)
    methods = {variant: method_label(outputs["train_encoder"]) for variant, outputs in variants.items()}
    table = pd.DataFrame([summary_row(variant, methods[variant], outputs) for variant, outputs in variants.items()])
    floors = ", ".join(sorted(column for column in table.columns if column.endswith("_floor")))
    markdown = "\n\n".join(
        [
            f"# Comparison of {len(variants)} variants on {metadata.get('dataset')} "
            f"({metadata.get('num_train')} train, {metadata.get('num_heldout')} held-out examples)",
            markdown_table(table[[c for c in table.columns if not c.endswith(UNCERTAINTY_SUFFIXES)]]),
            "Seconds are training seconds (evaluations and checkpoints excluded). A baseline that kept its jointly "
            "trained decoder has decoder_steps 0: its decoder trained in the encoder stage. Held-out measurements "
            f"as in evaluation_metrics.json; each distance's real-vs-real floor is in its *_floor column ({floors}); "
            "the bootstrap intervals (_ci_low, _ci_high) and KID standard deviations (_std) are in summary.csv.",
        ]
    )
    labels = {variant: f"{variant} ({methods[variant]})" for variant in variants}
    curves = {labels[variant]: reconstruction_curve(outputs) for variant, outputs in variants.items()}
    # Vector samples are drawn over the held-out points; image samples need no reference (none converted).
    reference = to_model_scale(heldout_data["x"]) if heldout_data["x"].ndim == 2 else None
    figures = {
        "reconstruction_vs_seconds.png": plotting.curves_against_seconds_figure(
            curves, "validation reconstruction MSE", "decoder convergence (GPE shifted by its encoder's time)"
        ),
        "samples.png": plotting.samples_by_variant_figure(
            {labels[variant]: outputs["generated_samples"] for variant, outputs in variants.items()}, reference
        ),
        "latents.png": plotting.latents_by_variant_figure(
            {labels[variant]: normalised_latents(outputs) for variant, outputs in variants.items()}
        ),
    }
    return table, markdown + "\n", figures


def normalised_latents(outputs: dict[str, Any]) -> Tensor:
    stats = outputs["latent_stats"]
    return normalise_latents(outputs["heldout_latents"], stats["mean"], stats["scale"])
