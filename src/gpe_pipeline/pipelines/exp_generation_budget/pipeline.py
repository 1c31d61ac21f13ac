"""E6: GPE and a VAE through every stage, their flows snapshotted at the same iterations, then compared.

`kedro run --pipeline=exp_generation_budget`; parameters in conf/base/parameters_exp_generation_budget.yml. The
dataset and the feature classifier are the run's shared ones (as in the compare pipeline).
"""


from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines import evaluate, ingest
from gpe_pipeline.pipelines.variant_stages import summary_pipeline, variant_pipeline
from gpe_pipeline.variants import GENERATION_BUDGET as EXPERIMENT

from .nodes import METHODS, SUMMARY_INPUTS, summarise_generation_budget


def create_pipeline(**kwargs) -> Pipeline:
    variants = [variant_pipeline(f"{EXPERIMENT}.{method}") for method in METHODS]
    inputs = {
        "train_data": "train_data",
        "heldout_data": "heldout_data",
        "metadata": "dataset_metadata",
        "feature_classifier": "feature_classifier",
        "evaluate": "params:evaluate",
        "snapshot_steps": "params:snapshot_steps",
        **{f"{m}__{entry}": f"{m}.{entry}" for m in METHODS for entry in SUMMARY_INPUTS},
    }
    summary = summary_pipeline(EXPERIMENT, summarise_generation_budget, inputs, shared_parameters=("params:evaluate",))
    return ingest.create_pipeline() + evaluate.classifier_pipeline() + sum(variants, Pipeline([])) + summary
