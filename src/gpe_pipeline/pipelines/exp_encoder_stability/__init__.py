"""exp_encoder_stability (E2, the paper's Figs. 4 and 5): GME, MDS1 and MDS2 encoders at three learning rates."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
