"""E1: the gmm set (its own ingest, under the namespace) encoded to 2-D by GPE and by a VAE, then compared.

`kedro run --pipeline=exp_gmm_latents`; parameters in conf/base/parameters_exp_gmm_latents.yml.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines.variant_stages import dataset_pipeline, summary_node, variant_pipeline
from gpe_pipeline.variants import GMM_LATENTS as EXPERIMENT
from gpe_pipeline.variants import variant_names

from .nodes import summarise_gmm_latents

METHODS = variant_names(EXPERIMENT)  # gpe, vae (gpe_pipeline.variants)


def create_pipeline(**kwargs) -> Pipeline:
    variants = [
        variant_pipeline(
            f"{EXPERIMENT}.{method}",
            stages=("train_encoder", "cache_latents"),
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
        dataset_pipeline(EXPERIMENT)
        + sum(variants, Pipeline([]))
        + Pipeline([summary], namespace=EXPERIMENT, tags=[EXPERIMENT])
    )
