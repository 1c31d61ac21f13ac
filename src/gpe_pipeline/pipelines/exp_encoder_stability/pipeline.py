"""E2: nine encoder-only variants (GME, MDS1, MDS2 x three learning rates) on the shared data, then one summary.

`kedro run --pipeline=exp_encoder_stability`; parameters in conf/base/parameters_exp_encoder_stability.yml.
The variants are named after the grid's slots (gme_lr_low ... mds2_lr_high) because Kedro builds pipelines before
it reads parameters; the rates themselves come from exp_encoder_stability.learning_rates.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines.variant_stages import grid_experiment_pipeline

from .nodes import EXPERIMENT, LOSSES, RATE_SLOTS, stability_overrides, summarise_encoder_stability, variant_name

POINTS = {variant_name(loss, slot): {"loss": loss, "slot": slot} for loss in LOSSES for slot in RATE_SLOTS}


def create_pipeline(**kwargs) -> Pipeline:
    return grid_experiment_pipeline(
        EXPERIMENT,
        ("train_encoder",),
        stability_overrides,
        POINTS,
        summarise_encoder_stability,
        {
            "rate_grid": "params:learning_rates",  # params:exp_encoder_stability.learning_rates
            "shared": "params:shared",
            "slope_tolerance": "params:slope_tolerance",
            **{variant: f"{variant}.encoder_history" for variant in POINTS},
        },
    )
