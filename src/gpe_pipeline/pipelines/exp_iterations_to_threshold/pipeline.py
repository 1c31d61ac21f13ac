"""E4: GPE encoders stopped at two GME levels and a jointly trained VAE, a fresh decoder on each, then Table 1.

`kedro run --pipeline=exp_iterations_to_threshold`; parameters in conf/base/parameters_exp_iterations_to_threshold.yml.
The rows are gpe_gme_high, gpe_gme_low (levels from exp_iterations_to_threshold.gme_levels) and vae.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines.variant_stages import grid_experiment_pipeline
from gpe_pipeline.variants import ITERATIONS as EXPERIMENT
from gpe_pipeline.variants import variant_names

from .nodes import summarise_iterations_to_threshold

POINTS = variant_names(EXPERIMENT)  # gpe_gme_high, gpe_gme_low, vae (gpe_pipeline.variants)

ROW_OUTPUTS = {"encoder": "encoder_history", "decoder": "decoder_history", "latent_stats": "latent_stats"}


def create_pipeline(**kwargs) -> Pipeline:
    return grid_experiment_pipeline(
        EXPERIMENT,
        ("train_encoder", "cache_latents", "train_decoder"),
        POINTS,
        summarise_iterations_to_threshold,
        {
            "level_grid": "params:gme_levels",  # params:exp_iterations_to_threshold.gme_levels
            "thresholds": "params:thresholds",
            "metadata": "dataset_metadata",
            **{f"{variant}__{key}": f"{variant}.{entry}" for variant in POINTS for key, entry in ROW_OUTPUTS.items()},
        },
    )
