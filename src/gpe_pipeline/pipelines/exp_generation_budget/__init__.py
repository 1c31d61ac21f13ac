"""exp_generation_budget (E6, the paper's Fig. 11): generation quality against flow iterations, GPE against a VAE."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
