"""exp_wallclock (E5, the paper's Fig. 10 and Table 2): reconstruction loss against training seconds, GPE and four baselines."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
