"""The compare pipeline: ingest and the feature classifier once, then every variant in its namespace, then a summary.

`kedro run --pipeline=compare` runs all six; `kedro run --pipeline=compare --namespaces=compare.vae` runs one
variant alone once the shared inputs exist on disk. Each variant's parameters: conf/base/parameters_compare.yml.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines import evaluate, ingest
from gpe_pipeline.pipelines.variant_stages import summary_node, variant_pipeline
from gpe_pipeline.variants import variant_names

from .nodes import SUMMARY_INPUTS, summarise_comparison

VARIANTS = variant_names("compare")  # one per method of conf/base/parameters_methods.yml


def create_pipeline(**kwargs) -> Pipeline:
    variants = [variant_pipeline(f"compare.{variant}") for variant in VARIANTS]
    summary = summary_node(
        summarise_comparison,
        inputs={
            "metadata": "dataset_metadata",
            "heldout_data": "heldout_data",
            **{f"{variant}__{name}": f"compare.{variant}.{name}" for variant in VARIANTS for name in SUMMARY_INPUTS},
            **{f"{variant}__train_encoder": f"params:compare.{variant}.train_encoder" for variant in VARIANTS},
        },
        outputs=["compare_summary", "compare_summary_markdown", "compare_figures"],
        name="summarise_comparison",
    )
    return (
        ingest.create_pipeline()
        + evaluate.classifier_pipeline()
        + sum(variants, Pipeline([]))
        + Pipeline([summary], tags=["compare"])
    )
