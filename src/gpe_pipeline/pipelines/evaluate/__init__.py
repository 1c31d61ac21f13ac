"""evaluate: reconstructions, generated samples, geometry metrics, Frechet distances and figures."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
