"""The train_encoder pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_encoder


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_encoder,
                inputs=["train_data", "heldout_data", "dataset_metadata", "params:train_encoder"],
                outputs=["encoder", "encoder_history"],
                name="train_encoder",
            )
        ],
        tags=["train_encoder"],
    )
