"""The train_encoder node's baseline path trains with the decoder stage's settings, and its errors say so."""

import pytest
import torch

from gpe_pipeline.pipelines.train_encoder.nodes import train_encoder


def section(**training):
    return {
        "architecture": "mlp",
        "model_options": {"mlp": {"hidden": [8]}},
        "training": {"max_steps": 2, "batch_size": 4, "lr": 1e-3, "log_every": 1, "eval_every": 1, "device": "cpu", **training},
    }


def test_a_baselines_training_error_names_the_decoder_settings_it_trains_with():
    split = {"x": torch.rand(12, 5) * 2 - 1, "labels": None}
    metadata = {"shape": [5]}
    encoder = {**section(lr=-1.0), "method": "vae", "latent_dim": 2, "beta": 0.1}  # its own lr is not used
    encoder_model, history, decoder, snapshots = train_encoder(split, split, metadata, encoder, section())
    assert snapshots == {} and history["step"].tolist() == [1, 2] and decoder(encoder_model(split["x"])).shape == (12, 5)
    with pytest.raises(ValueError, match=r"train_decoder\.training\.lr must be a positive number"):
        train_encoder(split, split, metadata, {**encoder, "training": section()["training"]}, section(lr=-1.0))
