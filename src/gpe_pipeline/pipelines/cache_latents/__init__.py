"""cache_latents: encode both splits once and compute the latent centring and scale."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
