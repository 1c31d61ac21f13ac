"""E3: decoders on a GPE encoder's weights at three GME levels, then one summary.

`kedro run --pipeline=exp_decoder_vs_gme`; parameters in conf/base/parameters_exp_decoder_vs_gme.yml. The levels'
encoders and decoders are the GME-level study's (variants.LEVELS, shared with E4): per seed one GPE encoder that
keeps its weights at each level it crosses, and one fresh decoder on each level's weights. The summary names the
levels by their slots (gme_high, gme_mid, gme_low); the levels come from exp_decoder_vs_gme.gme_levels.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines import ingest
from gpe_pipeline.pipelines.build_parameters import build_parameters
from gpe_pipeline.pipelines.variant_stages import level_entries, level_study_pipeline, seeded_experiment_pipeline
from gpe_pipeline.variants import DECODER_LEVEL_SLOTS, decoder_level_name, decoder_levels, level_index, nested_get
from gpe_pipeline.variants import DECODER_VS_GME as EXPERIMENT

from .nodes import summarise_decoder_vs_gme

POINTS = [decoder_level_name(slot) for slot in DECODER_LEVEL_SLOTS]  # gme_high, gme_mid, gme_low
ENTRIES = ("encoder_history", "decoder_history")


def create_pipeline(**kwargs) -> Pipeline:
    parameters = build_parameters()
    levels = decoder_levels(nested_get(parameters, f"{EXPERIMENT}.gme_levels"))
    indices = {decoder_level_name(slot): level_index(parameters, levels[slot]) for slot in DECODER_LEVEL_SLOTS}
    return seeded_experiment_pipeline(
        EXPERIMENT,
        lambda group, seed: level_study_pipeline(seed, sorted(set(indices.values()))),
        summarise_decoder_vs_gme,
        {
            "level_grid": "params:gme_levels",  # params:exp_decoder_vs_gme.gme_levels
            "thresholds": "params:thresholds",  # the range: params:exp_decoder_vs_gme.thresholds
            **{f"{variant}__encoder": f"{variant}.encoder_history" for variant in POINTS},
            **{f"{variant}__decoder": f"{variant}.decoder_history" for variant in POINTS},
        },
        shared=ingest.create_pipeline(),
        shared_entries=lambda seed: level_entries(seed, indices, ENTRIES),
    )
