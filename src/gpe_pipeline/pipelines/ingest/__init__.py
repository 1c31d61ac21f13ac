"""ingest: read a dataset by name into normalised train and held-out tensors."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
