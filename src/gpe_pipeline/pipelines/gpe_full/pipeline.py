"""The gpe_full pipeline: the sum of the stage pipelines.

It is a package of its own because `kedro run --pipeline=NAME` loads
`pipelines/NAME`; a sum made only inside the registry is not found.
"""

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines import cache_latents, evaluate, ingest, train_decoder, train_encoder, train_flow

STAGES = (ingest, train_encoder, cache_latents, train_decoder, train_flow, evaluate)


def create_pipeline(**kwargs) -> Pipeline:
    return sum((stage.create_pipeline() for stage in STAGES), Pipeline([]))
