"""The ingest pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import ingest_dataset


def create_pipeline(parameters: str = "params:{}", **kwargs) -> Pipeline:
    """parameters: how the ingest section is named as an input (an experiment's own dataset reads a merged one)."""
    return Pipeline(
        [
            Node(
                ingest_dataset,
                inputs=parameters.format("ingest"),
                outputs=["train_data", "validation_data", "heldout_data", "dataset_metadata"],
                name="ingest_dataset",
            )
        ],
        tags=["ingest"],
    )
