"""The train_flow pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_flow


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_flow,
                inputs=["train_latents", "heldout_latents", "latent_stats", "params:train_flow"],
                outputs=["flow", "flow_history"],
                name="train_flow",
            )
        ],
        tags=["train_flow"],
    )
