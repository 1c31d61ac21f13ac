"""exp_iterations_to_threshold (E4, the paper's Table 1): fresh decoders on frozen GPE and VAE encoders."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
