"""The train_decoder node refuses a decoder whose outputs cannot reach the ingested data, before it trains."""

import pytest
import torch

from gpe_pipeline.core.models import NoModel
from gpe_pipeline.params import ParameterError
from gpe_pipeline.pipelines.train_decoder.nodes import train_decoder


def decoder_params(output_activation):
    return {
        "architecture": "mlp",
        "model_options": {"mlp": {"hidden": [8], "output_activation": output_activation}},
        "training": {"max_steps": 2, "batch_size": 4, "lr": 1e-3, "log_every": 1, "eval_every": 1, "device": "cpu"},
    }


def test_the_decoder_node_checks_the_ingested_value_range_before_training():
    points = torch.randn(12, 5) * 3
    split = {"x": points, "labels": None}
    latents = torch.randn(12, 2)
    metadata = {"dataset": "gmm", "shape": [5], "value_range": [float(points.min()), float(points.max())]}
    with pytest.raises(ParameterError, match=r"output_activation is tanh, whose outputs lie in \[-1, 1\], but the ingested"):
        train_decoder(latents, latents, split, split, metadata, NoModel(), None, decoder_params("tanh"))
    decoder, history = train_decoder(latents, latents, split, split, metadata, NoModel(), None, decoder_params("none"))
    assert history["step"].tolist() == [1, 2]
    images = {"dataset": "digits", "shape": [5], "value_range": [-1.0, 1.0]}
    train_decoder(
        latents, latents, {"x": points.clamp(-1, 1), "labels": None}, split, images, NoModel(), None, decoder_params("tanh")
    )
