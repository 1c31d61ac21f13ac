"""The stages every variant runs, in a Kedro namespace of its own: what `compare` and the experiments assemble.

A variant is a parameter choice, not a copy: the same stage pipelines (train_encoder .. evaluate's measurements)
under a namespace, reading the shared data and the shared feature classifier, with one extra node in front,
`variant_parameters`, that merges the shared parameter sections with the variant's overrides. The overrides are
`params:<namespace>` (e.g. compare.vae in conf/base/parameters_compare.yml), or, for an experiment's grid point,
what a function computes from the experiment's parameters (`DerivedOverrides`). Outputs live in the catalog's
"{variant}.<entry>" factories (conf/base/catalog_variants.yml).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from gpe_pipeline.pipelines import cache_latents, evaluate, ingest, train_decoder, train_encoder, train_flow
from gpe_pipeline.variants import STAGE_SECTIONS, merge_overrides, variant_parameters

# What variants read from the shared, non-namespaced part of the run (when their stages read it).
SHARED_DATA = ("train_data", "validation_data", "heldout_data", "dataset_metadata")
SHARED_INPUTS = (*SHARED_DATA, "feature_classifier")
# The tag of every node that turns parameters into a namespace's merged sections ("<section>_params" outputs):
# the parameter check and the MLflow hook run these nodes on the parameters to see what each variant will use.
PARAMETER_NODE_TAG = "variant_parameters"
# A variant's merged parameter section: a memory dataset inside its namespace (e.g. compare.vae.train_encoder_params).
MERGED_SECTION = "{}_params"
# The stages in the order they feed each other; a variant runs a prefix of them.
STAGES = {
    "train_encoder": train_encoder.create_pipeline,
    "cache_latents": cache_latents.create_pipeline,
    "train_decoder": train_decoder.create_pipeline,
    "train_flow": train_flow.create_pipeline,
    "evaluate": evaluate.measurement_pipeline,
}
DERIVE_PREFIX = "derive__"


@dataclass(frozen=True)
class DerivedOverrides:
    """A variant whose overrides a function computes, e.g. one point of an experiment's grid.

    derive(**arguments) -> overrides, with each argument read from the dataset or parameter `inputs` names
    (a `params:` name stays shared; any other name is the variant's own, e.g. a probe's result in its namespace).
    """

    derive: Callable[..., dict[str, Any]]
    inputs: dict[str, str] = field(default_factory=dict)


def derived_variant_parameters(namespace: str, derive: Callable[..., dict[str, Any]], **inputs: Any) -> tuple[dict, ...]:
    """variant_parameters with overrides = derive(**the derive__ inputs); the other inputs are the shared sections."""
    arguments = {key.removeprefix(DERIVE_PREFIX): value for key, value in inputs.items() if key.startswith(DERIVE_PREFIX)}
    sections = {key: value for key, value in inputs.items() if not key.startswith(DERIVE_PREFIX)}
    return variant_parameters(namespace, derive(**arguments), **sections)


def variant_pipeline(
    namespace: str,
    stages: tuple[str, ...] = tuple(STAGES),
    overrides: DerivedOverrides | None = None,
    prelude: Pipeline | None = None,
    data_from: str | None = None,
) -> Pipeline:
    """The stages under `namespace`, parameterised by the variant's overrides and the shared sections.

    stages: a prefix of STAGES (an encoder-only study stops after train_encoder). overrides: None reads
    params:<namespace>; a DerivedOverrides computes them. prelude: nodes that run first in the namespace
    (e.g. a learning-rate probe whose result the overrides read). data_from: read train_data .. dataset_metadata
    from that namespace (an experiment's own dataset, dataset_pipeline) instead of the run's shared ingest.
    """
    if list(stages) != list(STAGES)[: len(stages)] or not stages:
        raise ValueError(f"a variant runs a prefix of {list(STAGES)}, got {list(stages)}")
    sections = {section: f"params:{section}" for section in STAGE_SECTIONS}
    shared_parameters = {f"params:{s}": f"params:{s}" for s in STAGE_SECTIONS}
    if overrides is None:
        merge = update_wrapper(partial(variant_parameters, namespace), variant_parameters)
        inputs = {"overrides": "params:overrides", **sections}
        shared_parameters["params:overrides"] = f"params:{namespace}"
    else:
        merge = update_wrapper(partial(derived_variant_parameters, namespace, overrides.derive), derived_variant_parameters)
        inputs = {f"{DERIVE_PREFIX}{key}": name for key, name in overrides.inputs.items()} | sections
        shared_parameters |= {name: name for name in overrides.inputs.values() if name.startswith("params:")}
    parameters = Node(merge, inputs=inputs, outputs=[MERGED_SECTION.format(s) for s in STAGE_SECTIONS], name="variant_parameters")
    template = Pipeline(
        [
            *([prelude] if prelude is not None else []),
            Pipeline([parameters], tags=[PARAMETER_NODE_TAG]),
            *(STAGES[stage](MERGED_SECTION) for stage in stages),
        ]
    )
    shared = {name: f"{data_from}.{name}" if data_from and name in SHARED_DATA else name for name in SHARED_INPUTS}
    return Pipeline(
        template,
        namespace=namespace,
        inputs={name: target for name, target in shared.items() if name in template.inputs()},
        parameters={name: target for name, target in shared_parameters.items() if name in template.inputs()},
    )


def ingest_parameters(ingest: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The ingest section with an experiment's own dataset overrides (e.g. the gmm for E1)."""
    return merge_overrides(ingest, overrides or {}, "ingest")


def dataset_pipeline(namespace: str, overrides: str) -> Pipeline:
    """An ingest of the experiment's own dataset under `namespace` (its train_data .. dataset_metadata).

    overrides: the parameter holding the experiment's ingest overrides (e.g. params:exp_gmm_latents.ingest).
    """
    parameters = Node(
        ingest_parameters,
        inputs={"ingest": "params:ingest", "overrides": overrides},
        outputs=MERGED_SECTION.format("ingest"),
        name="ingest_parameters",
    )
    template = Pipeline([Pipeline([parameters], tags=[PARAMETER_NODE_TAG]), ingest.create_pipeline(MERGED_SECTION)])
    return Pipeline(template, namespace=namespace, parameters={"params:ingest": "params:ingest", overrides: overrides})


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
    derive: Callable[..., dict[str, Any]],
    points: dict[str, dict[str, Any]],
    summarise: Callable[..., tuple],
    summary_inputs: dict[str, str],
) -> Pipeline:
    """An experiment on the run's shared data: its ingest, one variant per grid point, then its summary.

    points: variant name -> the keyword arguments that, with experiment=params:<experiment>, make derive return
    that variant's overrides (each variant runs `stages` in the namespace <experiment>.<name>).
    summary_inputs: as summary_pipeline's.
    """
    variants = [
        variant_pipeline(
            f"{experiment}.{name}",
            stages=stages,
            overrides=DerivedOverrides(partial(derive, **point), {"experiment": f"params:{experiment}"}),
        )
        for name, point in points.items()
    ]
    return ingest.create_pipeline() + sum(variants, Pipeline([])) + summary_pipeline(experiment, summarise, summary_inputs)
