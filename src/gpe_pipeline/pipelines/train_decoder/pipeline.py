"""The train_decoder pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import train_decoder


def create_pipeline(**kwargs) -> Pipeline:
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
                    "params:train_decoder",
                ],
                outputs=["decoder", "decoder_history"],
                name="train_decoder",
            )
        ]
    )
