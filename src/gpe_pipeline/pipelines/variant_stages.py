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
from typing import Any

from kedro.pipeline import Node, Pipeline

from gpe_pipeline.pipelines import cache_latents, evaluate, ingest, train_decoder, train_encoder, train_flow
from gpe_pipeline.variants import STAGE_SECTIONS

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
) -> Pipeline:
    """The stages under `namespace`, each reading its variant's sections.

    stages: a prefix of STAGES (an encoder-only study stops after train_encoder). prelude: nodes that run first in
    the namespace (e.g. a learning-rate probe); a parameter it reads that is not a stage section stays shared.
    data_from: read train_data .. dataset_metadata from that namespace (an experiment's own dataset,
    dataset_pipeline) instead of the run's shared ingest. sections: how the stages name their sections' inputs
    (RUNTIME_SECTION when a prelude completes them at run time).
    """
    if list(stages) != list(STAGES)[: len(stages)] or not stages:
        raise ValueError(f"a variant runs a prefix of {list(STAGES)}, got {list(stages)}")
    template = Pipeline([*([prelude] if prelude is not None else []), *(STAGES[stage](sections) for stage in stages)])
    shared = {name: f"{data_from}.{name}" if data_from and name in SHARED_DATA else name for name in SHARED_INPUTS}
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


# What every experiment's summary node writes (conf/base/catalog_experiments.yml: "{experiment}.<output>").
EXPERIMENT_OUTPUTS = ["results_table", "results_figure", "findings"]


def summary_pipeline(
    experiment: str, summarise: Callable[..., tuple], inputs: dict[str, str], shared_parameters: tuple[str, ...] = ()
) -> Pipeline:
    """An experiment's summary node in its namespace, named after `summarise`, writing EXPERIMENT_OUTPUTS.

    inputs: argument -> entry, relative to the namespace (e.g. "gme_lr_low.encoder_history", "params:learning_rates"
    for params:<experiment>.learning_rates), except the run's shared data and feature classifier (SHARED_INPUTS) and
    the parameters named in shared_parameters (e.g. "params:evaluate"), which stay shared.
    """
    summary = summary_node(summarise, inputs=inputs, outputs=EXPERIMENT_OUTPUTS, name=summarise.__name__)
    shared = {name for name in inputs.values() if name in SHARED_INPUTS}
    return Pipeline(
        [summary], namespace=experiment, tags=[experiment], inputs=shared or None, parameters=set(shared_parameters) or None
    )


def grid_experiment_pipeline(
    experiment: str,
    stages: tuple[str, ...],
    variants: list[str],
    summarise: Callable[..., tuple],
    summary_inputs: dict[str, str],
) -> Pipeline:
    """An experiment on the run's shared data: its ingest, one variant per grid point, then its summary.

    variants: the grid points' names (each runs `stages` in the namespace <experiment>.<name>; the parameter layer
    gives each its sections). summary_inputs: as summary_pipeline's.
    """
    points = [variant_pipeline(f"{experiment}.{name}", stages=stages) for name in variants]
    return ingest.create_pipeline() + sum(points, Pipeline([])) + summary_pipeline(experiment, summarise, summary_inputs)
