"""gpe-pipeline: the Geometry-Preserving Encoder/Decoder method as a Kedro project."""

__version__ = "0.1.0"
