"""gpe_full: every stage in order, the project's main job."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
