"""train_flow: conditional flow matching in the normalised latent space y = C (T(x) - m)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
