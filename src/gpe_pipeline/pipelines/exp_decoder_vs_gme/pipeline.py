"""E3: three GPE encoders stopped at GME levels, a fresh decoder on each, then one summary.

`kedro run --pipeline=exp_decoder_vs_gme`; parameters in conf/base/parameters_exp_decoder_vs_gme.yml. The
variants are named after the levels' slots (gme_high, gme_mid, gme_low); the levels come from
exp_decoder_vs_gme.gme_levels.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines.variant_stages import grid_experiment_pipeline
from gpe_pipeline.variants import DECODER_VS_GME as EXPERIMENT
from gpe_pipeline.variants import variant_names

from .nodes import summarise_decoder_vs_gme

POINTS = variant_names(EXPERIMENT)  # gme_high, gme_mid, gme_low (gpe_pipeline.variants)


def create_pipeline(**kwargs) -> Pipeline:
    return grid_experiment_pipeline(
        EXPERIMENT,
        ("train_encoder", "cache_latents", "train_decoder"),
        POINTS,
        summarise_decoder_vs_gme,
        {
            "level_grid": "params:gme_levels",  # params:exp_decoder_vs_gme.gme_levels
            "thresholds": "params:thresholds",  # the range: params:exp_decoder_vs_gme.thresholds
            **{f"{variant}__encoder": f"{variant}.encoder_history" for variant in POINTS},
            **{f"{variant}__decoder": f"{variant}.decoder_history" for variant in POINTS},
        },
    )
