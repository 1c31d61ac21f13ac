"""train_encoder: fit the geometry-preserving encoder by minimising the GME loss."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
