"""E1: the gmm set (its own ingest, under the namespace) encoded to 2-D by GPE and by a VAE, then compared.

`kedro run --pipeline=exp_gmm_latents`; parameters in conf/base/parameters_exp_gmm_latents.yml.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines.variant_stages import dataset_pipeline, seeded_experiment_pipeline, variant_pipeline
from gpe_pipeline.variants import GMM_LATENTS as EXPERIMENT
from gpe_pipeline.variants import variant_names

from .nodes import summarise_gmm_latents

METHODS = variant_names(EXPERIMENT)  # gpe, vae (gpe_pipeline.variants)


def create_pipeline(**kwargs) -> Pipeline:
    def methods(group: str, seed: int) -> Pipeline:
        stages = ("train_encoder", "cache_latents")
        return sum((variant_pipeline(f"{group}.{m}", stages=stages, data_from=EXPERIMENT) for m in METHODS), Pipeline([]))

    return seeded_experiment_pipeline(
        EXPERIMENT,
        methods,
        summarise_gmm_latents,
        {"heldout_data": "heldout_data", **{f"{m}_latents": f"{m}.heldout_latents" for m in METHODS}},
        shared=dataset_pipeline(EXPERIMENT),
        shared_entries={"heldout_data": f"{EXPERIMENT}.heldout_data"},
    )
