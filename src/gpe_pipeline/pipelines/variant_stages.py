"""The stages every variant runs, in a Kedro namespace of its own: what `compare` and the experiments assemble.

A variant is a parameter choice, not a copy: the same stage pipelines (train_encoder .. evaluate's measurements)
under a namespace, reading the shared data and the shared feature classifier. Kedro's namespacing hands each stage
its variant's sections: inside compare.vae a stage's `params:train_encoder` is `params:compare.vae.train_encoder`,
which the parameter layer (gpe_pipeline.variants) completes from the shared sections before the run. Outputs live in
the catalog's "{variant}.<entry>" factories (conf/base/catalog_variants.yml).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from gpe_pipeline.level_study import encoder_at_level
from gpe_pipeline.pipelines import cache_latents, evaluate, ingest, train_decoder, train_encoder, train_flow
from gpe_pipeline.pipelines.build_parameters import experiment_seeds
from gpe_pipeline.seed_summary import combine_seeds
from gpe_pipeline.variants import (
    DECODER_VS_GME,
    ITERATIONS,
    LEVEL_ENCODER,
    LEVELS,
    SHARED_VAE,
    STAGE_SECTIONS,
    level_name,
    seeded_namespace,
)

# What variants read from the shared, non-namespaced part of the run (when their stages read it).
SHARED_DATA = ("train_data", "validation_data", "heldout_data", "dataset_metadata")
SHARED_INPUTS = (*SHARED_DATA, "feature_classifier")
# A node tagged so completes its namespace's sections at run time (E5's probed learning rates), writing each as
# RUNTIME_SECTION (e.g. train_encoder_probed), which the variant's stages then read; its child run logs them.
RUNTIME_PARAMETERS_TAG = "runtime_parameters"
RUNTIME_SECTION = "{}_probed"
# The stages in the order they feed each other; a variant runs a prefix of them.
STAGES = {
    "train_encoder": train_encoder.create_pipeline,
    "cache_latents": cache_latents.create_pipeline,
    "train_decoder": train_decoder.create_pipeline,
    "train_flow": train_flow.create_pipeline,
    "evaluate": evaluate.measurement_pipeline,
}


def variant_pipeline(
    namespace: str,
    stages: tuple[str, ...] = tuple(STAGES),
    prelude: Pipeline | None = None,
    data_from: str | None = None,
    sections: str = "params:{}",
    as_configured: dict[str, tuple[str, ...]] | None = None,
) -> Pipeline:
    """The stages under `namespace`, each reading its variant's sections.

    stages: consecutive STAGES (an encoder-only study stops after train_encoder; a variant whose prelude gives its
    encoder starts at cache_latents). prelude: nodes that run in the namespace besides its stages (e.g. a
    learning-rate probe); a parameter it reads that is not a stage section stays shared.
    data_from: read train_data .. dataset_metadata from that namespace (an experiment's own dataset,
    dataset_pipeline) instead of the run's shared ingest. sections: how the stages name their sections' inputs
    (RUNTIME_SECTION when a prelude completes them at run time). as_configured: {stage: sections it reads as the
    parameters give them, not as completed} (E5's GPE encoder names train_decoder, whose rate is probed after it).
    """
    order = list(STAGES)
    if not stages or list(stages) != order[order.index(stages[0]) : order.index(stages[0]) + len(stages)]:
        raise ValueError(f"a variant runs consecutive stages of {order}, got {list(stages)}")
    built = []
    for stage in stages:
        kept = (as_configured or {}).get(stage, ())
        renamed = {sections.format(section): f"params:{namespace}.{section}" for section in kept}
        built.append(Pipeline(STAGES[stage](sections), inputs=renamed or None))
    template = Pipeline([*([prelude] if prelude is not None else []), *built])
    shared = {name: f"{data_from}.{name}" if data_from and name in SHARED_DATA else name for name in SHARED_INPUTS}
    # A prelude's inputs from another namespace (e.g. the level study's encoder) keep their full names.
    shared |= {name: name for name in template.inputs() if "." in name and not name.startswith("params:")}
    shared_parameters = {
        name
        for name in template.inputs()
        if name.startswith("params:") and name.removeprefix("params:").split(".")[0] not in STAGE_SECTIONS
    }
    return Pipeline(
        template,
        namespace=namespace,
        inputs={name: target for name, target in shared.items() if name in template.inputs()},
        parameters=shared_parameters or None,
    )


def dataset_pipeline(namespace: str) -> Pipeline:
    """An ingest of the experiment's own dataset under `namespace` (its train_data .. dataset_metadata).

    Its `params:<namespace>.ingest` is the shared ingest section with the experiment's own keys merged in.
    """
    return Pipeline(ingest.create_pipeline(), namespace=namespace)


def summary_node(func: Callable[..., Any], inputs: dict[str, str], outputs: list[str] | str, name: str) -> Node:
    """A node that reads other namespaces' entries (compare.vae.evaluation_metrics ...), e.g. a comparison's summary.

    Kedro warns about dataset names with dots, which namespaced names have by its own design: silenced here only.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        return Node(func, inputs=inputs, outputs=outputs, name=name)


# What every experiment's summary writes, for each seed and combined (conf/base/catalog_experiments.yml).
EXPERIMENT_OUTPUTS = ["results_table", "results_figure", "findings"]
COMBINED_OUTPUTS = ["results_table", "results_summary", "results_figure", "findings"]


def summary_pipeline(
    experiment: str,
    summarise: Callable[..., tuple],
    inputs: dict[str, str],
    shared_parameters: tuple[str, ...] = (),
    seed: int = 0,
    shared_entries: dict[str, str] | Callable[[int], dict[str, str]] | None = None,
) -> Pipeline:
    """An experiment's summary for one seed, in the namespace <experiment>.seed_<k>, writing EXPERIMENT_OUTPUTS.

    inputs: argument -> entry, relative to that namespace (e.g. "gme_lr_low.encoder_history" for the seed's variant;
    "gpe.evaluate" for a variant's merged section), except: the run's shared data and feature classifier
    (SHARED_INPUTS) and shared_parameters (e.g. "params:evaluate") stay shared, a `params:<key>` without a dot is the
    experiment's own (params:<experiment>.<key>), and shared_entries renames entries outside (e.g. an experiment's
    own dataset: {"heldout_data": "exp_gmm_latents.heldout_data"}; a function of the seed for entries of another
    seeded namespace, e.g. the level study's).
    """
    if callable(shared_entries):
        shared_entries = shared_entries(seed)
    summary = summary_node(summarise, inputs=inputs, outputs=EXPERIMENT_OUTPUTS, name=summarise.__name__)
    renamed = {name: name for name in inputs.values() if name in SHARED_INPUTS} | dict(shared_entries or {})
    parameters = {
        name: name if name in shared_parameters else f"params:{experiment}.{name.removeprefix('params:')}"
        for name in inputs.values()
        if name.startswith("params:") and (name in shared_parameters or "." not in name)
    }
    return Pipeline(
        [summary],
        namespace=seeded_namespace(experiment, seed),
        tags=[experiment],
        inputs={name: target for name, target in renamed.items() if name in inputs.values()} or None,
        parameters=parameters or None,
    )


def combine_pipeline(experiment: str, seeds: int) -> Pipeline:
    """The experiment's seeds combined (seed_summary.combine_seeds) into COMBINED_OUTPUTS, in its namespace."""
    inputs = {
        f"seed_{k}__{kind}": f"seed_{k}.{output}"
        for k in range(seeds)
        for kind, output in (("table", "results_table"), ("figure", "results_figure"), ("findings", "findings"))
    }
    node = summary_node(combine_seeds, inputs=inputs, outputs=COMBINED_OUTPUTS, name="combine_seeds")
    return Pipeline([node], namespace=experiment, tags=[experiment])


def seeded_experiment_pipeline(
    experiment: str,
    variants: Callable[[str, int], Pipeline],
    summarise: Callable[..., tuple],
    summary_inputs: dict[str, str],
    shared: Pipeline | None = None,
    shared_parameters: tuple[str, ...] = (),
    shared_entries: dict[str, str] | Callable[[int], dict[str, str]] | None = None,
    seeds: int | None = None,
) -> Pipeline:
    """An experiment over its seeds: shared nodes (its data), each seed's variants and summary, then their combination.

    variants(group, k) -> the variants of seed k under the namespace `group` (<experiment>.seed_<k>); summary_inputs,
    shared_parameters, shared_entries: as summary_pipeline's. seeds: the experiment's seed count, by default the one
    the run's parameters give (build_parameters.experiment_seeds).
    """
    count = experiment_seeds(experiment) if seeds is None else seeds
    per_seed = [
        variants(seeded_namespace(experiment, k), k)
        + summary_pipeline(experiment, summarise, summary_inputs, shared_parameters, k, shared_entries)
        for k in range(count)
    ]
    return (shared or Pipeline([])) + sum(per_seed, Pipeline([])) + combine_pipeline(experiment, count)


def grid_experiment_pipeline(
    experiment: str,
    stages: tuple[str, ...],
    variants: list[str],
    summarise: Callable[..., tuple],
    summary_inputs: dict[str, str],
    seeds: int | None = None,
) -> Pipeline:
    """An experiment on the run's shared data: its ingest, one variant per grid point and seed, the summaries.

    variants: the grid points' names (each runs `stages` in the namespace <experiment>.seed_<k>.<name>; the parameter
    layer gives each its sections). summary_inputs: as summary_pipeline's.
    """

    def points(group: str, seed: int) -> Pipeline:
        return sum((variant_pipeline(f"{group}.{name}", stages=stages) for name in variants), Pipeline([]))

    return seeded_experiment_pipeline(experiment, points, summarise, summary_inputs, shared=ingest.create_pipeline(), seeds=seeds)


def level_study_pipeline(seed: int, indices: list[int]) -> Pipeline:
    """One seed of the GME-level study (variants.LEVELS): its GPE encoder, and a fresh decoder on the encoder's weights
    at each level of `indices` (positions in variants.level_values), each in its namespace gme_levels.seed_<k>.level_<i>.
    """
    group = seeded_namespace(LEVELS, seed)
    trained = f"{group}.{LEVEL_ENCODER}"
    levels = {
        "decoder_vs_gme_levels": f"params:{DECODER_VS_GME}.gme_levels",
        "iterations_levels": f"params:{ITERATIONS}.gme_levels",
    }
    decoders = []
    for index in indices:
        at_level = update_wrapper(partial(encoder_at_level, index=index), encoder_at_level)
        prelude = study_reader(at_level, trained, ("encoder", "history", "snapshots"), levels)
        decoders.append(variant_pipeline(f"{group}.{level_name(index)}", ("cache_latents", "train_decoder"), prelude))
    return variant_pipeline(trained, ("train_encoder",)) + sum(decoders, Pipeline([]))


# What a study reader takes of the training it reads, by argument: the encoder stage's outputs.
STUDY_OUTPUTS = {
    "encoder": "encoder",
    "joint_decoder": "joint_decoder",
    "history": "encoder_history",
    "snapshots": "encoder_snapshots",
}


def study_reader(reader: Callable[..., tuple], source: str, arguments: tuple[str, ...], parameters: dict[str, str]) -> Pipeline:
    """A variant's prelude that stands in for its encoder stage: reader(<arguments> of the study training in the
    namespace `source>`, **parameters) -> the stage's encoder, encoder_history and joint_decoder (level_study's readers).
    arguments: names of STUDY_OUTPUTS; parameters: the reader's other arguments -> their params: entries."""
    inputs = {argument: f"{source}.{STUDY_OUTPUTS[argument]}" for argument in arguments} | parameters
    return Pipeline([Node(reader, inputs=inputs, outputs=["encoder", "encoder_history", "joint_decoder"], name=reader.__name__)])


def vae_from_study(namespace: str, seed: int, reader: Callable[..., tuple], level_input: dict[str, str], stages) -> Pipeline:
    """A VAE variant whose encoder stage is the study's joint VAE (variants.SHARED_VAE, its encoder stage alone, in
    gme_levels.seed_<k>.vae_joint) read at a level by `reader` (level_study.vae_at_lowest_threshold for E4's row,
    vae_at_decoder_target for E6's VAE), then `stages` in `namespace`. level_input: the reader's level argument."""
    source = seeded_namespace(LEVELS, seed, SHARED_VAE)
    prelude = study_reader(reader, source, tuple(STUDY_OUTPUTS), level_input)
    return variant_pipeline(source, ("train_encoder",)) + variant_pipeline(namespace, stages, prelude)


def level_entries(seed: int, indices: dict[str, int], entries: tuple[str, ...]) -> dict[str, str]:
    """What an experiment's summary reads of the level study, by its grid points' names: {"gme_high.decoder_history":
    "gme_levels.seed_0.level_0.decoder_history", ...}. indices: grid point -> its level's position in level_values."""
    group = seeded_namespace(LEVELS, seed)
    return {f"{point}.{entry}": f"{group}.{level_name(index)}.{entry}" for point, index in indices.items() for entry in entries}
