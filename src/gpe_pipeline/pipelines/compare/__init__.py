"""compare: GPE and the VAE family (VAE, beta-VAE, AE, VAE+MDS, AE+MDS) through the same stages, side by side."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
