"""exp_decoder_vs_gme (E3, the paper's Fig. 6): decoder convergence on GPE encoders stopped at three GME levels."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
