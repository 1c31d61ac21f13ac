"""Architectures by name: shapes, the paper's building blocks and rebuilding from a spec."""

import pytest
import torch
from torch import nn

from gpe_pipeline.core.models import build_model, model_from_spec


@pytest.mark.parametrize("architecture, size, channels", [("conv32", 32, 1), ("conv64", 64, 3), ("conv256", 256, 3)])
def test_conv_pairs_round_trip_shapes(architecture, size, channels):
    encoder = build_model("encoder", architecture, data_shape=[channels, size, size], latent_dim=12, width=8)
    decoder = build_model("decoder", architecture, data_shape=[channels, size, size], latent_dim=12, width=8)
    x = torch.rand(2, channels, size, size) * 2 - 1
    latents = encoder(x)
    assert latents.shape == (2, 12)
    output = decoder(latents)
    assert output.shape == x.shape and output.abs().max() <= 1  # tanh output
    convolutions = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convolutions)
    assert any(isinstance(m, nn.BatchNorm2d) for m in encoder.modules())
    assert all(m.negative_slope == 0.2 for m in encoder.modules() if isinstance(m, nn.LeakyReLU))
    assert any(isinstance(m, nn.ConvTranspose2d) for m in decoder.modules())
    assert isinstance(list(decoder.modules())[-1], nn.Tanh)


def test_mlp_pair_for_vectors_and_digits():
    encoder = build_model("encoder", "mlp", data_shape=[1, 8, 8], latent_dim=3, hidden=[16, 16])
    decoder = build_model("decoder", "mlp", data_shape=[500], latent_dim=3, hidden=[16], output_activation="none")
    assert encoder(torch.zeros(4, 1, 8, 8)).shape == (4, 3)
    assert decoder(torch.zeros(4, 3)).shape == (4, 500)


def test_rebuild_from_spec_gives_identical_outputs():
    original = build_model("encoder", "conv32", data_shape=[3, 32, 32], latent_dim=5, width=4)
    rebuilt = model_from_spec(original.build_spec.as_dict(), original.state_dict()).eval()
    x = torch.randn(3, 3, 32, 32)
    assert torch.equal(original.eval()(x), rebuilt(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"role": "encoder", "architecture": "resnet"}, "unknown architecture 'resnet'"),
        ({"role": "critic", "architecture": "mlp"}, "unknown model role"),
        ({"role": "encoder", "architecture": "mlp", "latent_dim": 0}, "latent_dim must be an integer >= 1"),
        ({"role": "encoder", "architecture": "conv32", "data_shape": [1, 8, 8]}, r"needs images of shape \(C, 32, 32\)"),
        ({"role": "encoder", "architecture": "mlp", "activation": "gelu2"}, "unknown activation"),
    ],
)
def test_bad_model_settings_say_what_to_change(kwargs, message):
    options = {"data_shape": [1, 8, 8], "latent_dim": 4, **kwargs}
    role, architecture = options.pop("role"), options.pop("architecture")
    with pytest.raises(ValueError, match=message):
        build_model(role, architecture, **options)
