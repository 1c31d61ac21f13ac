"""The cache_latents pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import cache_latents


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                cache_latents,
                inputs=["encoder", "train_data", "heldout_data", "params:cache_latents"],
                outputs=["train_latents", "heldout_latents", "latent_stats"],
                name="cache_latents",
            )
        ],
        tags=["cache_latents"],
    )
