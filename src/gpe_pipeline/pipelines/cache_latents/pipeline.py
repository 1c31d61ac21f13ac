"""The cache_latents pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import cache_latents


def create_pipeline(parameters: str = "params:{}", **kwargs) -> Pipeline:
    """parameters: how a stage's parameter section is named as an input (a variant reads merged sections)."""
    return Pipeline(
        [
            Node(
                cache_latents,
                inputs=["encoder", "train_data", "validation_data", "heldout_data", parameters.format("cache_latents")],
                outputs=["train_latents", "validation_latents", "heldout_latents", "latent_stats"],
                name="cache_latents",
            )
        ],
        tags=["cache_latents"],
    )
