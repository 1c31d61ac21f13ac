"""exp_gmm_latents (E1, the paper's Fig. 3): the gmm in R^500 to 2-D latents, GPE against a VAE."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
