"""E6: GPE and a VAE through every stage, their flows snapshotted at the same iterations, then compared.

`kedro run --pipeline=exp_generation_budget`; parameters in conf/base/parameters_exp_generation_budget.yml. The
dataset and the feature classifier are the run's shared ones (as in the compare pipeline).
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.level_study import vae_at_decoder_target
from gpe_pipeline.pipelines import evaluate, ingest
from gpe_pipeline.pipelines.build_parameters import build_parameters
from gpe_pipeline.pipelines.variant_stages import seeded_experiment_pipeline, vae_from_study, variant_pipeline
from gpe_pipeline.variants import GENERATION_BUDGET as EXPERIMENT
from gpe_pipeline.variants import generation_reads_shared_vae

from .nodes import METHODS, SUMMARY_INPUTS, summarise_generation_budget

# E6's VAE after the study's joint VAE, when it reads that (variants.generation_reads_shared_vae).
STAGES_AFTER_ENCODER = ("cache_latents", "train_decoder", "train_flow", "evaluate")


def create_pipeline(**kwargs) -> Pipeline:
    shares_vae = generation_reads_shared_vae(build_parameters())

    def method_pipeline(group: str, seed: int, method: str) -> Pipeline:
        if method == "vae" and shares_vae:  # E4's VAE row's joint training, read at the decoder stage's target
            target = {"train_decoder": "params:train_decoder"}  # this variant's own section
            return vae_from_study(f"{group}.vae", seed, vae_at_decoder_target, target, STAGES_AFTER_ENCODER)
        return variant_pipeline(f"{group}.{method}")

    def methods(group: str, seed: int) -> Pipeline:
        return sum((method_pipeline(group, seed, method) for method in METHODS), Pipeline([]))

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
