"""E5: GPE (encoder, then decoder) and VAE, VAE+MDS, AE, AE+MDS (jointly trained), each at its probed learning rates.

`kedro run --pipeline=exp_wallclock`; parameters in conf/base/parameters_exp_wallclock.yml. Each method is a variant
(exp_wallclock.<method>) whose prelude probes its learning rates; its stages (train_encoder, cache_latents,
train_decoder) then run at the rates the probe chose, and a summary compares the methods.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from gpe_pipeline.pipelines import ingest
from gpe_pipeline.pipelines.variant_stages import RUNTIME_PARAMETERS_TAG, RUNTIME_SECTION, summary_pipeline, variant_pipeline
from gpe_pipeline.variants import WALLCLOCK as EXPERIMENT

from .nodes import METHODS, probe_learning_rates, summarise_wallclock, use_probed_rates

PROBE = "learning_rate_probe"
# What the summary reads of each method's variant.
SUMMARY_INPUTS = ("encoder_history", "decoder_history", PROBE, "decoder", "heldout_latents")
STAGES = ("train_encoder", "cache_latents", "train_decoder")


def probe_pipeline(method: str) -> Pipeline:
    """The method's learning-rate probe, then its sections at the chosen rates: run first in its namespace."""
    probe = update_wrapper(partial(probe_learning_rates, method=method), probe_learning_rates)
    sections = {section: f"params:{section}" for section in STAGES}  # the variant's own (namespaced)
    return Pipeline(
        [
            Node(
                probe,
                inputs={
                    "train_data": "train_data",
                    "validation_data": "validation_data",
                    "metadata": "dataset_metadata",
                    "experiment": f"params:{EXPERIMENT}",
                    **sections,
                },
                outputs=PROBE,
                name="probe_learning_rates",
            ),
            Node(
                use_probed_rates,
                inputs={"probe": PROBE, **sections},
                outputs=[RUNTIME_SECTION.format(section) for section in STAGES],
                name="use_probed_rates",
                tags=[RUNTIME_PARAMETERS_TAG],
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    variants = [
        variant_pipeline(
            f"{EXPERIMENT}.{method}",
            stages=STAGES,
            prelude=probe_pipeline(method),
            sections=RUNTIME_SECTION,
        )
        for method in METHODS
    ]
    summary_inputs = {f"{method}__{entry}": f"{method}.{entry}" for method in METHODS for entry in SUMMARY_INPUTS}
    summary = summary_pipeline(
        EXPERIMENT,
        summarise_wallclock,
        {
            "threshold": "params:threshold",
            "threshold_grid": "params:threshold_grid",
            "heldout_data": "heldout_data",
            **summary_inputs,
        },
    )
    return ingest.create_pipeline() + sum(variants, Pipeline([])) + summary
