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
                    "heldout_latents",
                    "train_data",
                    "heldout_data",
                    "dataset_metadata",
                    "params:train_decoder",
                ],
                outputs=["decoder", "decoder_history"],
                name="train_decoder",
            )
        ],
        tags=["train_decoder"],
    )
