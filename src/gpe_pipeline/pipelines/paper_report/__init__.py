"""paper_report: every experiment (E1-E6), then one report of which of the paper's claims held on this run."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
