"""The train_flow pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_flow


def create_pipeline(parameters: str = "params:{}", **kwargs) -> Pipeline:
    """parameters: how a stage's parameter section is named as an input (a variant reads merged sections)."""
    return Pipeline(
        [
            Node(
                train_flow,
                inputs=["train_latents", "validation_latents", "latent_stats", parameters.format("train_flow")],
                outputs=["flow", "flow_history", "flow_snapshots"],
                name="train_flow",
            )
        ],
        tags=["train_flow"],
    )
