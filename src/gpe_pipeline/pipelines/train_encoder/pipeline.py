"""The train_encoder pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_encoder


def create_pipeline(parameters: str = "params:{}", **kwargs) -> Pipeline:
    """parameters: how a stage's parameter section is named as an input (a variant reads merged sections)."""
    return Pipeline(
        [
            Node(
                train_encoder,
                inputs=[
                    "train_data",
                    "validation_data",
                    "dataset_metadata",
                    parameters.format("train_encoder"),
                    parameters.format("train_decoder"),
                ],
                outputs=["encoder", "encoder_history", "joint_decoder", "encoder_snapshots"],
                name="train_encoder",
            )
        ],
        tags=["train_encoder"],
    )
