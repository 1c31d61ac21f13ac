"""E6: GPE and a VAE through every stage, their flows snapshotted at the same iterations, then compared.

`kedro run --pipeline=exp_generation_budget`; parameters in conf/base/parameters_exp_generation_budget.yml. The
dataset and the feature classifier are the run's shared ones (as in the compare pipeline).
"""

import warnings
from functools import partial

from kedro.pipeline import Node, Pipeline

from gpe_pipeline.pipelines import evaluate, ingest
from gpe_pipeline.pipelines.variant_stages import DerivedOverrides, variant_pipeline

from .nodes import METHODS, SUMMARY_INPUTS, method_overrides, summarise_generation_budget

EXPERIMENT = "exp_generation_budget"


def create_pipeline(**kwargs) -> Pipeline:
    derived = {"experiment": f"params:{EXPERIMENT}", "train_flow": "params:train_flow"}
    variants = [
        variant_pipeline(f"{EXPERIMENT}.{method}", overrides=DerivedOverrides(partial(method_overrides, method=method), derived))
        for method in METHODS
    ]
    with warnings.catch_warnings():  # the summary reads namespaced entries, whose names have dots by Kedro's design
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        summary = Node(
            summarise_generation_budget,
            inputs={
                "train_data": "train_data",
                "heldout_data": "heldout_data",
                "metadata": "dataset_metadata",
                "feature_classifier": "feature_classifier",
                "evaluate": "params:evaluate",
                "experiment": f"params:{EXPERIMENT}",
                **{f"{m}__{entry}": f"{m}.{entry}" for m in METHODS for entry in SUMMARY_INPUTS},
            },
            outputs=["results_table", "results_figure", "findings"],
            name="summarise_generation_budget",
        )
    shared = {"train_data", "heldout_data", "dataset_metadata", "feature_classifier"}
    return (
        ingest.create_pipeline()
        + evaluate.classifier_pipeline()
        + sum(variants, Pipeline([]))
        + Pipeline(
            [summary],
            namespace=EXPERIMENT,
            inputs=shared,
            parameters={"params:evaluate", f"params:{EXPERIMENT}"},
            tags=[EXPERIMENT],
        )
    )
