"""The train_decoder pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_decoder


def create_pipeline(parameters: str = "params:{}", **kwargs) -> Pipeline:
    """parameters: how a stage's parameter section is named as an input (a variant reads merged sections)."""
    return Pipeline(
        [
            Node(
                train_decoder,
                inputs=[
                    "train_latents",
                    "validation_latents",
                    "train_data",
                    "validation_data",
                    "dataset_metadata",
                    "joint_decoder",
                    "encoder_history",
                    parameters.format("train_decoder"),
                ],
                outputs=["decoder", "decoder_history"],
                name="train_decoder",
            )
        ],
        tags=["train_decoder"],
    )
