"""E4: fresh decoders on a GPE encoder's weights at two GME levels and on a frozen jointly trained VAE, then Table 1.

`kedro run --pipeline=exp_iterations_to_threshold`; parameters in conf/base/parameters_exp_iterations_to_threshold.yml.
The rows are gpe_gme_high, gpe_gme_low (levels from exp_iterations_to_threshold.gme_levels: the GME-level study's
encoder and decoders, shared with E3, variants.LEVELS) and vae (a variant per seed in the same study's namespace).
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.level_study import vae_at_lowest_threshold
from gpe_pipeline.pipelines import ingest
from gpe_pipeline.pipelines.build_parameters import build_parameters
from gpe_pipeline.pipelines.variant_stages import (
    level_entries,
    level_study_pipeline,
    seeded_experiment_pipeline,
    vae_from_study,
)
from gpe_pipeline.variants import ITERATIONS as EXPERIMENT
from gpe_pipeline.variants import (
    ITERATIONS_LEVEL_SLOTS,
    LEVELS,
    iterations_levels,
    iterations_row_name,
    level_index,
    nested_get,
    seeded_namespace,
)

from .nodes import summarise_iterations_to_threshold

GPE_ROWS = [iterations_row_name("gpe", slot) for slot in ITERATIONS_LEVEL_SLOTS]  # gpe_gme_high, gpe_gme_low
VAE_ROW = iterations_row_name("vae", None)
ROW_OUTPUTS = {"encoder": "encoder_history", "decoder": "decoder_history", "latent_stats": "latent_stats"}
VAE_ROW_STAGES = ("cache_latents", "train_decoder")  # after the study's joint VAE at the lowest threshold


def create_pipeline(**kwargs) -> Pipeline:
    parameters = build_parameters()
    levels = iterations_levels(nested_get(parameters, f"{EXPERIMENT}.gme_levels"))
    indices = {iterations_row_name("gpe", slot): level_index(parameters, levels[slot]) for slot in ITERATIONS_LEVEL_SLOTS}

    def rows(group: str, seed: int) -> Pipeline:
        """The level study's GPE rows and the VAE row, all in the study's namespace (gme_levels.seed_<k>)."""
        thresholds = {"thresholds": f"params:{EXPERIMENT}.thresholds"}
        vae = vae_from_study(seeded_namespace(LEVELS, seed, VAE_ROW), seed, vae_at_lowest_threshold, thresholds, VAE_ROW_STAGES)
        return level_study_pipeline(seed, sorted(set(indices.values()))) + vae

    def entries(seed: int) -> dict[str, str]:
        vae = {f"{VAE_ROW}.{entry}": f"{seeded_namespace(LEVELS, seed)}.{VAE_ROW}.{entry}" for entry in ROW_OUTPUTS.values()}
        return level_entries(seed, indices, tuple(ROW_OUTPUTS.values())) | vae

    return seeded_experiment_pipeline(
        EXPERIMENT,
        rows,
        summarise_iterations_to_threshold,
        {
            "level_grid": "params:gme_levels",  # params:exp_iterations_to_threshold.gme_levels
            "thresholds": "params:thresholds",
            "metadata": "dataset_metadata",
            **{f"{row}__{key}": f"{row}.{entry}" for row in [*GPE_ROWS, VAE_ROW] for key, entry in ROW_OUTPUTS.items()},
        },
        shared=ingest.create_pipeline(),
        shared_entries=entries,
    )
