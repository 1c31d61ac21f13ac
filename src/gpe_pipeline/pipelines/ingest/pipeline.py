"""The ingest pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import ingest_dataset


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                ingest_dataset,
                inputs="params:ingest",
                outputs=["train_data", "validation_data", "heldout_data", "dataset_metadata"],
                name="ingest_dataset",
            )
        ],
        tags=["ingest"],
    )
