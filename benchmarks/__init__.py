"""Benchmarks of the GPE pipeline's trainers: `.venv/bin/python -m benchmarks.run` (see run.py)."""
