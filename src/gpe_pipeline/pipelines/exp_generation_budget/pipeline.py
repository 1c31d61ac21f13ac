"""E6: GPE and a VAE through every stage, their flows snapshotted at the same iterations, then compared.

`kedro run --pipeline=exp_generation_budget`; parameters in conf/base/parameters_exp_generation_budget.yml. The
dataset and the feature classifier are the run's shared ones (as in the compare pipeline).
"""


from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines import evaluate, ingest
from gpe_pipeline.pipelines.variant_stages import seeded_experiment_pipeline, variant_pipeline
from gpe_pipeline.variants import GENERATION_BUDGET as EXPERIMENT

from .nodes import METHODS, SUMMARY_INPUTS, summarise_generation_budget


def create_pipeline(**kwargs) -> Pipeline:
    def methods(group: str, seed: int) -> Pipeline:
        return sum((variant_pipeline(f"{group}.{method}") for method in METHODS), Pipeline([]))

    inputs = {
        "train_data": "train_data",
        "heldout_data": "heldout_data",
        "metadata": "dataset_metadata",
        "feature_classifier": "feature_classifier",
        "evaluate": f"params:{METHODS[0]}.evaluate",  # the seed's evaluate section (its sampling noise), equal for both
        "snapshot_steps": "params:snapshot_steps",
        **{f"{m}__{entry}": f"{m}.{entry}" for m in METHODS for entry in SUMMARY_INPUTS},
    }
    shared = ingest.create_pipeline() + evaluate.classifier_pipeline()
    return seeded_experiment_pipeline(EXPERIMENT, methods, summarise_generation_budget, inputs, shared=shared)
