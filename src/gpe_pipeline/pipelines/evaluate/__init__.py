"""evaluate: reconstructions, generated samples, geometry metrics, Frechet distances and figures."""

from .pipeline import classifier_pipeline, create_pipeline, measurement_pipeline

__all__ = ["classifier_pipeline", "create_pipeline", "measurement_pipeline"]
