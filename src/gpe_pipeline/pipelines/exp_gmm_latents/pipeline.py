"""E1: the gmm set (its own ingest, under the namespace) encoded to 2-D by GPE and by a VAE, then compared.

`kedro run --pipeline=exp_gmm_latents`; parameters in conf/base/parameters_exp_gmm_latents.yml.
"""

from functools import partial

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines.variant_stages import DerivedOverrides, dataset_pipeline, summary_node, variant_pipeline

from .nodes import method_overrides, summarise_gmm_latents

EXPERIMENT = "exp_gmm_latents"
METHODS = ("gpe", "vae")


def create_pipeline(**kwargs) -> Pipeline:
    variants = [
        variant_pipeline(
            f"{EXPERIMENT}.{method}",
            stages=("train_encoder", "cache_latents"),
            overrides=DerivedOverrides(partial(method_overrides, method=method), {"experiment": f"params:{EXPERIMENT}"}),
            data_from=EXPERIMENT,
        )
        for method in METHODS
    ]
    summary = summary_node(
        summarise_gmm_latents,
        inputs={"heldout_data": "heldout_data", **{f"{m}_latents": f"{m}.heldout_latents" for m in METHODS}},
        outputs=["results_table", "results_figure", "findings"],
        name="summarise_gmm_latents",
    )
    return (
        dataset_pipeline(EXPERIMENT, f"params:{EXPERIMENT}.ingest")
        + sum(variants, Pipeline([]))
        + Pipeline([summary], namespace=EXPERIMENT, tags=[EXPERIMENT])
    )
