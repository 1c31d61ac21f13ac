"""Architectures by name: shapes, the paper's building blocks and rebuilding from a spec."""

import copy

import pytest
import torch
from torch import nn

from gpe_pipeline.core.models import build_model, count_parameters, model_from_spec


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


# SPEC 6's parameter counts, read from the paper's reference implementation. Its CIFAR-10 encoder count (4.4 M) is
# that of the code's latent size 50; the paper (and conf/cifar10) use d = 100, which adds 512 * 4 * 50 + 50 weights.
PAPER_COUNTS = [
    ("paper_mnist", 1, 32, 30, 0.32e6, 0.83e6),
    ("paper_cifar10", 3, 32, 50, 4.4e6, 45.8e6),
    ("paper_celeba", 3, 64, 100, 4.6e6, 144.9e6),
    ("paper_celebahq", 3, 256, 100, 70.7e6, 154e6),
]


@pytest.mark.parametrize("architecture, channels, size, latent_dim, encoder_count, decoder_count", PAPER_COUNTS)
def test_paper_networks_have_the_reference_parameter_counts(
    architecture, channels, size, latent_dim, encoder_count, decoder_count
):
    with torch.device("meta"):  # no memory and no initialisation: the 154 M-weight decoder builds instantly
        shape = dict(data_shape=[channels, size, size], latent_dim=latent_dim)
        encoder = build_model("encoder", architecture, **shape)
        decoder = build_model("decoder", architecture, **shape)
    assert count_parameters(encoder) == pytest.approx(encoder_count, rel=0.02)
    assert count_parameters(decoder) == pytest.approx(decoder_count, rel=0.02)


def test_paper_cifar10_encoder_at_the_papers_latent_size_differs_only_by_its_head():
    with torch.device("meta"):
        counts = [
            count_parameters(build_model("encoder", "paper_cifar10", data_shape=[3, 32, 32], latent_dim=d)) for d in (50, 100)
        ]
    assert counts[1] - counts[0] == 512 * 2 * 2 * 50 + 50


@pytest.mark.parametrize(
    "architecture, channels, size", [("paper_mnist", 1, 32), ("paper_cifar10", 3, 32), ("paper_celeba", 3, 64)]
)
def test_paper_networks_map_images_to_latents_and_back(architecture, channels, size):
    torch.manual_seed(0)
    encoder = build_model("encoder", architecture, data_shape=[channels, size, size], latent_dim=7)
    decoder = build_model("decoder", architecture, data_shape=[channels, size, size], latent_dim=7)
    x = torch.rand(2, channels, size, size) * 2 - 1
    latents = encoder(x)
    output = decoder(latents)
    assert latents.shape == (2, 7) and output.shape == x.shape and output.abs().max() <= 1
    assert isinstance(list(decoder.modules())[-1], nn.Tanh)
    blocks = [m for m in encoder.features if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in blocks)
    # block(C) is Conv -> LeakyReLU(0.2) -> BatchNorm, and the second block has no batch norm.
    kinds = [type(m).__name__ for m in encoder.features]
    assert kinds[:5] == ["Conv2d", "LeakyReLU", "BatchNorm2d", "Conv2d", "LeakyReLU"] and kinds[5] == "Conv2d"
    rebuilt = model_from_spec(encoder.build_spec.as_dict(), encoder.state_dict()).eval()
    assert torch.equal(rebuilt(x), encoder.eval()(x))


def test_paper_celebahq_decoder_reaches_256_pixels():
    with torch.device("meta"):
        decoder = build_model("decoder", "paper_celebahq", data_shape=[3, 256, 256], latent_dim=100)
        assert decoder(torch.empty(2, 100)).shape == (2, 3, 256, 256)


def test_paper_networks_refuse_the_wrong_image_size():
    with pytest.raises(ValueError, match=r"needs images of shape \(C, 64, 64\)"):
        build_model("encoder", "paper_celeba", data_shape=[3, 32, 32], latent_dim=4)


def test_softplus_matches_log1p_of_exp_with_its_derivative_in_both_ad_modes():
    from gpe_pipeline.core.models import Softplus

    x = torch.cat([torch.linspace(-30, 30, 601), torch.tensor([0.0, 1e-8, -1e-8, 88.0, -88.0])])
    expected = torch.log1p(torch.exp(x.double()))  # float64: the reference
    got = Softplus()(x)
    assert got.dtype == torch.float32
    assert torch.allclose(got.double(), expected, rtol=3e-7, atol=1e-30)
    leaf = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(Softplus()(leaf).sum(), leaf)
    assert torch.allclose(gradient.double(), torch.sigmoid(x.double()), rtol=1e-6, atol=1e-12)
    tangent = torch.randn_like(x)
    _, pushed = torch.func.jvp(Softplus(), (x,), (tangent,))
    assert torch.allclose(pushed, tangent * torch.sigmoid(x), rtol=1e-6, atol=1e-12)
    assert torch.autograd.gradcheck(Softplus(), (torch.randn(12, dtype=torch.float64, requires_grad=True) * 5,))


def test_the_joint_vae_at_a_level_is_its_snapshot_there_and_its_end_otherwise():
    import pandas as pd

    from gpe_pipeline.level_study import joint_at_level

    encoder, decoder = nn.Linear(3, 2), nn.Linear(2, 3)
    joint = nn.ModuleDict({"encoder": copy.deepcopy(encoder), "decoder": copy.deepcopy(decoder)})
    for parameter in joint.parameters():
        nn.init.constant_(parameter, 0.5)
    history = pd.DataFrame({"step": [25, 50, 75], "validation_mse": [0.05, 0.02, 0.01]})
    snapshots = {0.022: {"step": 50, "value": 0.02, "weights": {k: v.clone() for k, v in joint.state_dict().items()}}}
    at_level, cut, joint_decoder = joint_at_level(encoder, decoder, history, snapshots, 0.022)
    assert torch.equal(at_level.weight, torch.full((2, 3), 0.5)) and torch.equal(joint_decoder.bias, torch.full((3,), 0.5))
    assert list(cut["step"]) == [25, 50] and not torch.equal(encoder.weight, at_level.weight)  # the inputs are untouched
    for level in (0.001, None):  # never reached, or no target: the end of the budget
        end, whole, end_decoder = joint_at_level(encoder, decoder, history, snapshots, level)
        assert end is encoder and end_decoder is decoder and len(whole) == 3
