"""E5: GPE (encoder, then decoder) and VAE, VAE+MDS, AE, AE+MDS (jointly trained), each at its probed learning rates.

`kedro run --pipeline=exp_wallclock`; parameters in conf/base/parameters_exp_wallclock.yml. Each method is a variant
(exp_wallclock.<method>) whose prelude probes its learning rates; its stages (train_encoder, cache_latents,
train_decoder) then run at the rates the probe chose, and a summary compares the methods.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from gpe_pipeline.pipelines import ingest
from gpe_pipeline.pipelines.variant_stages import (
    RUNTIME_PARAMETERS_TAG,
    RUNTIME_SECTION,
    seeded_experiment_pipeline,
    variant_pipeline,
)
from gpe_pipeline.variants import WALLCLOCK as EXPERIMENT

from .nodes import METHODS, probe_decoder_rates, probe_learning_rates, summarise_wallclock, use_probed_rates

PROBE = "learning_rate_probe"
# GPE's whole probe record (its encoder's rates and its decoder's, probed on the cached latents) has a name of its
# own: it comes after the latents, a baseline's before any training (kedro-viz layers must not form a cycle).
GPE_PROBE = "decoder_rate_probe"


def probe_record(method: str) -> str:
    """The entry holding a method's whole learning-rate probe record (what the summary reads)."""
    return GPE_PROBE if method == "gpe" else PROBE


# What the summary reads of each method's variant.
SUMMARY_INPUTS = ("encoder_history", "decoder_history", PROBE, "decoder", "heldout_latents")
STAGES = ("train_encoder", "cache_latents", "train_decoder")


def probe_pipeline(method: str) -> Pipeline:
    """The method's learning-rate probes and its sections at the chosen rates: nodes in its namespace beside the stages.

    A baseline probes its joint training first. GPE probes its encoder first, and its decoder on the latents the
    cache_latents stage wrote from the encoder trained at that rate (Kedro orders the nodes by what they read).
    """
    probe = update_wrapper(partial(probe_learning_rates, method=method), probe_learning_rates)
    sections = {section: f"params:{section}" for section in STAGES}  # the variant's own (namespaced)
    data = {"train_data": "train_data", "validation_data": "validation_data", "metadata": "dataset_metadata"}
    first = "encoder_rate_probe" if method == "gpe" else PROBE
    completed_first = STAGES[:2] if method == "gpe" else STAGES  # GPE's decoder rate comes from its second probe
    nodes = [
        Node(
            probe,
            inputs={**data, "experiment": f"params:{EXPERIMENT}", **sections},
            outputs=first,
            name="probe_learning_rates",
        ),
        Node(
            use_probed_rates,
            inputs={"probe": first, **{section: sections[section] for section in completed_first}},
            outputs=[RUNTIME_SECTION.format(section) for section in completed_first],
            name="use_probed_rates",
            tags=[RUNTIME_PARAMETERS_TAG],
        ),
    ]
    if method == "gpe":
        nodes += [
            Node(
                probe_decoder_rates,
                inputs={
                    "train_latents": "train_latents",
                    "validation_latents": "validation_latents",
                    **data,
                    "experiment": f"params:{EXPERIMENT}",
                    "train_decoder": sections["train_decoder"],
                    "encoder_probe": first,
                },
                outputs=GPE_PROBE,
                name="probe_decoder_rates",
            ),
            Node(
                use_probed_rates,
                inputs={"probe": GPE_PROBE, "train_decoder": sections["train_decoder"]},
                outputs=[RUNTIME_SECTION.format("train_decoder")],
                name="use_probed_decoder_rate",
                tags=[RUNTIME_PARAMETERS_TAG],
            ),
        ]
    return Pipeline(nodes)


def create_pipeline(**kwargs) -> Pipeline:
    def methods(group: str, seed: int) -> Pipeline:
        return sum(
            (
                variant_pipeline(
                    f"{group}.{method}",
                    stages=STAGES,
                    prelude=probe_pipeline(method),
                    sections=RUNTIME_SECTION,
                    # GPE's encoder stage names the decoder's section (a baseline's joint training uses it), whose
                    # rate GPE probes only after that stage: it reads it as configured.
                    as_configured={"train_encoder": ("train_decoder",)} if method == "gpe" else None,
                )
                for method in METHODS
            ),
            Pipeline([]),
        )

    summary_inputs = {
        f"{method}__{entry}": f"{method}.{probe_record(method) if entry == PROBE else entry}"
        for method in METHODS
        for entry in SUMMARY_INPUTS
    }
    return seeded_experiment_pipeline(
        EXPERIMENT,
        methods,
        summarise_wallclock,
        {
            "threshold": "params:threshold",
            "threshold_grid": "params:threshold_grid",
            "heldout_data": "heldout_data",
            **summary_inputs,
        },
        shared=ingest.create_pipeline(),
    )
