"""Latent centring and scale (SPEC 1, eq. 27) and the batched encode/decode every stage shares."""

import pytest
import torch
from torch import nn

from gpe_pipeline.core.latents import decode, denormalise_latents, encode, latent_scale, normalise_latents


def test_latent_scale_by_hand():
    # Corners of a square of side 4 centred at (1, 1): every |T x - m|^2 = 8, so C = sqrt(d / 8) = 1/2.
    latents = torch.tensor([[-1.0, -1.0], [3.0, -1.0], [-1.0, 3.0], [3.0, 3.0]])
    mean, scale = latent_scale(latents)
    assert torch.equal(mean, torch.tensor([1.0, 1.0]))
    assert float(scale) == pytest.approx(0.5)
    normalised = normalise_latents(latents, mean, scale)
    assert float(normalised.square().sum(1).mean()) == pytest.approx(2.0)  # total variance d
    assert torch.allclose(denormalise_latents(normalised, mean, scale), latents)


@pytest.mark.parametrize(
    ("latents", "message"),
    [(torch.ones(5, 3), "collapsed"), (torch.randn(1, 3), "N >= 2"), (torch.randn(4), "N >= 2")],
)
def test_latent_scale_refuses_unusable_latents(latents, message):
    with pytest.raises(ValueError, match=message):
        latent_scale(latents)


def test_encode_scales_uint8_and_does_not_depend_on_the_batch_size():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3)).train()
    images = torch.randint(0, 256, (7, 1, 2, 2), dtype=torch.uint8)
    latents = encode(encoder, images, batch_size=3, device="cpu")
    encoder.eval()
    with torch.no_grad():
        expected = encoder(images.float() / 127.5 - 1.0)
    assert torch.allclose(latents, expected, atol=1e-6)
    assert torch.allclose(encode(encoder, images, batch_size=7, device="cpu"), latents, atol=1e-6)


def test_decode_restores_the_caller_mode_and_refuses_a_bad_batch_size():
    decoder = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5), nn.Unflatten(1, (1, 2, 2))).train()
    latents = torch.randn(5, 2)
    images = decode(decoder, latents, batch_size=2, device="cpu")
    assert images.shape == (5, 1, 2, 2) and decoder.training  # eval inside (no dropout), train again after
    # Equal up to rounding: a CPU matmul kernel may sum in another order for another batch size.
    assert torch.allclose(images, decode(decoder, latents, batch_size=5, device="cpu"), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        decode(decoder, latents, batch_size=0, device="cpu")
