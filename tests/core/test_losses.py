"""The encoder losses against brute-force double loops and their defining properties."""

import math

import pytest
import torch

from gpe_pipeline.core.losses import (
    full_float32,
    gme_loss,
    gme_residual,
    kl_divergence,
    mds1_loss,
    mds2_loss,
    mds_regulariser,
    pairwise_rows_loss,
    pairwise_squared_distances,
    reconstruction_loss,
    vae_family_loss,
)


def brute_force(latents, data, residual):
    """mean over all i, j of residual(latent pair, data pair)^2, with explicit loops in float64."""
    n = len(latents)
    total = 0.0
    for i in range(n):
        for j in range(n):
            total += (
                residual(latents[i].double(), latents[j].double(), data[i].double().flatten(), data[j].double().flatten()) ** 2
            )
    return total / n**2


def sq(a, b):
    return float(((a - b) ** 2).sum())


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(7, 1, 3, 3, generator=generator)  # image-shaped: losses flatten
    latents = torch.randn(7, 4, generator=generator, requires_grad=True)
    return latents, data


def test_gme_matches_double_loop(batch):
    latents, data = batch
    expected = brute_force(latents.detach(), data, lambda a, b, x, y: math.log1p(sq(a, b)) - math.log1p(sq(x, y)))
    assert gme_loss(latents, data).item() == pytest.approx(expected, rel=1e-5)


def test_mds1_matches_double_loop(batch):
    latents, data = batch
    expected = brute_force(latents.detach(), data, lambda a, b, x, y: sq(a, b) - sq(x, y))
    assert mds1_loss(latents, data).item() == pytest.approx(expected, rel=1e-5)


def test_mds2_matches_double_loop(batch):
    latents, data = batch
    expected = brute_force(latents.detach(), data, lambda a, b, x, y: sq(a, b) / 4 - sq(x, y) / 9)
    assert mds2_loss(latents, data).item() == pytest.approx(expected, rel=1e-5)


def test_gme_is_zero_for_a_distance_preserving_map():
    generator = torch.Generator().manual_seed(1)
    data = torch.randn(16, 5, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    embedded = torch.cat([data, torch.zeros(16, 3)], 1) @ rotation.T + torch.randn(8, generator=generator)  # rotate + shift
    assert gme_loss(embedded, data).item() == pytest.approx(0.0, abs=1e-10)
    assert gme_loss(2 * embedded, data).item() > 1e-2  # a scaled copy is not an isometry


def test_gme_is_invariant_to_permuting_the_batch(batch):
    latents, data = batch
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(3))
    assert gme_loss(latents[order], data[order]).item() == pytest.approx(gme_loss(latents, data).item(), rel=1e-6)


def test_gme_gradient_flows_and_is_finite(batch):
    latents, data = batch
    gme_loss(latents, data).backward()
    assert latents.grad is not None and torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0


def test_gme_rows_sum_over_row_blocks_is_the_full_loss(batch):
    latents, data = batch
    rows = [pairwise_rows_loss(gme_residual, latents[i : i + 3], data[i : i + 3], latents, data) for i in range(0, 7, 3)]
    blocks = sum(rows)
    assert (blocks / 49).item() == pytest.approx(gme_loss(latents, data).item(), rel=1e-6)


def test_distances_stay_float32_and_non_negative_under_half_inputs():
    x = torch.randn(5, 3).to(torch.bfloat16)
    distances = pairwise_squared_distances(x)
    assert distances.dtype == torch.float32 and (distances >= 0).all() and distances.diagonal().abs().max() < 1e-5


@pytest.mark.parametrize("loss", [gme_loss, mds1_loss, mds2_loss])
def test_pairwise_losses_reject_a_single_point(loss):
    with pytest.raises(ValueError, match="at least 2"):
        loss(torch.zeros(1, 2), torch.zeros(1, 3))


def test_pairwise_losses_reject_mismatched_batches():
    with pytest.raises(ValueError, match="same batch size"):
        gme_loss(torch.zeros(3, 2), torch.zeros(4, 3))


def test_reconstruction_loss_is_the_per_element_mean():
    target = torch.zeros(2, 1, 2, 2)
    reconstruction = torch.tensor([1.0, 0, 0, 0, 2, 0, 0, 0]).view(2, 1, 2, 2)
    assert reconstruction_loss(reconstruction, target).item() == pytest.approx(5 / 8)
    with pytest.raises(ValueError, match="shape"):
        reconstruction_loss(reconstruction, torch.zeros(2, 4))


def isometric_batch(size=100, data_dim=3072, latent_dim=100, seed=0):
    """Images in [-1, 1] lying in a latent_dim-dimensional affine subspace, and their exact isometric coordinates."""
    generator = torch.Generator().manual_seed(seed)
    latents = 0.3 * torch.randn(size, latent_dim, generator=generator)
    basis, _ = torch.linalg.qr(torch.randn(data_dim, latent_dim, generator=generator))
    offset = torch.rand(data_dim, generator=generator) * 2 - 1
    return latents, latents @ basis.T + offset


@pytest.mark.parametrize("loss", [gme_loss, mds1_loss])
def test_an_exact_isometry_scores_zero_under_bf16_autocast(loss):
    latents, data = isometric_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert loss(latents, data).item() < 1e-6
        # What the same Gram product gives when autocast is left on: the error the losses must not have.
        gram = torch.log1p((data @ data.T).float())
    assert gram.dtype == torch.float32 and (gram - torch.log1p(data @ data.T)).abs().max() > 1e-3


def test_full_float32_restores_autocast_and_precision_settings():
    before = torch.backends.cuda.matmul.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with full_float32():
            assert not torch.is_autocast_enabled("cpu")
            assert torch.backends.cuda.matmul.fp32_precision == "ieee"
        assert torch.is_autocast_enabled("cpu")
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision) == before


def test_distances_are_unchanged_by_a_shared_shift():
    generator = torch.Generator().manual_seed(4)
    a, b = torch.randn(6, 10, generator=generator), torch.randn(9, 10, generator=generator)
    expected = torch.cdist(a.double(), b.double()).square()
    assert torch.allclose(pairwise_squared_distances(a + 500.0, b + 500.0).double(), expected, atol=1e-3)


def test_mds_regulariser_matches_double_loop(batch):
    latents, data = batch
    expected = brute_force(latents.detach(), data, lambda a, b, x, y: sq(a, b) ** 0.5 / 2 - sq(x, y) ** 0.5 / 3)
    assert mds_regulariser(latents, data).item() == pytest.approx(expected, rel=1e-5)


def test_mds_regulariser_gradient_is_finite_on_the_diagonal_and_on_duplicates():
    means = torch.tensor([[0.0, 1.0], [0.0, 1.0], [2.0, 0.0]], requires_grad=True)  # two identical rows
    data = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    mds_regulariser(means, data).backward()
    assert torch.isfinite(means.grad).all() and means.grad.abs().sum() > 0


def test_kl_divergence_by_hand():
    mean = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]])
    # Second row: -1/2 [(1 + ln 4 - 1 - 4) + (1 + 0 - 4 - 1)] = -1/2 (ln 4 - 4 - 4) = 4 - ln 2.
    assert kl_divergence(mean, logvar).tolist() == pytest.approx([0.0, 4.0 - math.log(2.0)])


def test_vae_family_loss_has_the_spec_scaling():
    generator = torch.Generator().manual_seed(5)
    data = torch.rand(6, 1, 4, 4, generator=generator) * 2 - 1
    reconstruction = torch.rand(6, 1, 4, 4, generator=generator) * 2 - 1
    mean, logvar = torch.randn(6, 3, generator=generator), torch.randn(6, 3, generator=generator)
    terms = vae_family_loss(reconstruction, data, mean, logvar, beta=0.1, mds_weight=2.0)
    mse = (reconstruction - data).square().mean()
    kl = kl_divergence(mean, logvar).mean() / 3  # per-example KL over the latent size d
    assert terms["loss"].item() == pytest.approx((mse + 0.1 * kl + 2.0 * mds_regulariser(mean, data)).item(), rel=1e-6)
    autoencoder = vae_family_loss(reconstruction, data, mean, None, beta=0.0, mds_weight=0.0)
    assert autoencoder["loss"].item() == pytest.approx(mse.item(), rel=1e-6) and autoencoder["kl"].item() == 0
