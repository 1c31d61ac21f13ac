"""E2: nine encoder-only variants (GME, MDS1, MDS2 x three learning rates) on the shared data, then one summary.

`kedro run --pipeline=exp_encoder_stability`; parameters in conf/base/parameters_exp_encoder_stability.yml.
The variants are named after the grid's slots (gme_lr_low ... mds2_lr_high) because Kedro builds pipelines before
it reads parameters; the rates themselves come from exp_encoder_stability.learning_rates.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines.variant_stages import grid_experiment_pipeline
from gpe_pipeline.variants import ENCODER_STABILITY as EXPERIMENT
from gpe_pipeline.variants import variant_names

from .nodes import summarise_encoder_stability

POINTS = variant_names(EXPERIMENT)  # gme_lr_low ... mds2_lr_high (gpe_pipeline.variants)


def create_pipeline(**kwargs) -> Pipeline:
    return grid_experiment_pipeline(
        EXPERIMENT,
        ("train_encoder",),
        POINTS,
        summarise_encoder_stability,
        {
            "rate_grid": "params:learning_rates",  # params:exp_encoder_stability.learning_rates
            "shared": "params:shared",
            "slope_tolerance": "params:slope_tolerance",
            "convergence": "params:convergence",  # what "stable" means for GME
            "isometry_factor": "params:isometry_factor",  # what "matches GME's global isometry" means for MDS2
            **{variant: f"{variant}.encoder_history" for variant in POINTS},
        },
    )
