"""The stages every variant runs, in a Kedro namespace of its own: what `compare` and the experiments assemble.

A variant is a parameter choice, not a copy: the same stage pipelines (train_encoder .. evaluate's measurements)
under a namespace, reading the shared data and the shared feature classifier, with one extra node in front,
`variant_parameters`, that merges the shared parameter sections with the variant's overrides
(`params:<namespace>`, e.g. compare.vae in conf/base/parameters_compare.yml). Its outputs live in the catalog's
"{variant}.<entry>" factories (conf/base/catalog_variants.yml).
"""

from __future__ import annotations

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from gpe_pipeline.pipelines import cache_latents, evaluate, train_decoder, train_encoder, train_flow
from gpe_pipeline.variants import STAGE_SECTIONS, variant_parameters

# What every variant reads from the shared, non-namespaced part of the run.
SHARED_INPUTS = ("train_data", "validation_data", "heldout_data", "dataset_metadata", "feature_classifier")
# A variant's merged parameter section: a memory dataset inside its namespace (e.g. compare.vae.train_encoder_params).
MERGED_SECTION = "{}_params"


def variant_pipeline(namespace: str) -> Pipeline:
    """The stages under `namespace`, parameterised by params:<namespace> (the overrides) and the shared sections."""
    merge = update_wrapper(partial(variant_parameters, namespace), variant_parameters)
    parameters = Node(
        merge,
        inputs={"overrides": "params:overrides", **{section: f"params:{section}" for section in STAGE_SECTIONS}},
        outputs=[MERGED_SECTION.format(section) for section in STAGE_SECTIONS],
        name="variant_parameters",
    )
    stages = [
        train_encoder.create_pipeline(MERGED_SECTION),
        cache_latents.create_pipeline(MERGED_SECTION),
        train_decoder.create_pipeline(MERGED_SECTION),
        train_flow.create_pipeline(MERGED_SECTION),
        evaluate.measurement_pipeline(MERGED_SECTION),
    ]
    return Pipeline(
        [Pipeline([parameters], tags=["variant_parameters"]), *stages],
        namespace=namespace,
        inputs=set(SHARED_INPUTS),
        parameters={"params:overrides": f"params:{namespace}", **{f"params:{s}": f"params:{s}" for s in STAGE_SECTIONS}},
    )
