"""train_decoder: fit the decoder on cached (latent, image) pairs."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
