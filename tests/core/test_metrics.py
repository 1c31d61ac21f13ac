"""Held-out measurements: geometry metrics, Frechet distances, the Inception path and the feature classifier."""

import math

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy import linalg
from torch import nn

from gpe_pipeline.core.data import uint8_to_unit_range
from gpe_pipeline.core.losses import classifier_loss
from gpe_pipeline.core.metrics import (
    INCEPTION_WEIGHTS_FILE,
    bilipschitz_p95,
    bootstrap_interval,
    fd_pixel,
    frechet_distance,
    gme_heldout,
    inception_available,
    inception_features,
    inception_network,
    inception_weights_path,
    kernel_distance,
    local_distortion,
    paired_bootstrap_difference,
    polynomial_kernel,
    polynomial_mmd2_unbiased,
    round_to_8bit,
    to_inception_input,
)
from gpe_pipeline.core.models import FeatureClassifier, build_model, model_from_spec
from gpe_pipeline.core.training import TrainConfig, train


def orthonormal_columns(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """A (rows, cols) matrix with orthonormal columns, rows >= cols: an isometry R^cols -> R^rows."""
    gaussian = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.linalg.qr(gaussian).Q.float()


class LinearEncoder(nn.Module):
    """T(x) = W flatten(x): the Jacobian is W everywhere."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=True)
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.normal_()  # a shift changes no distance

    def forward(self, x):
        return self.linear(x.flatten(1))


# ---------------------------------------------------------------- gme_heldout


def test_gme_heldout_matches_a_brute_force_double_loop():
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(13, 1, 2, 3, generator=generator)
    latents = torch.randn(13, 2, generator=generator)
    expected = 0.0
    for i in range(13):
        for j in range(13):
            latent_cost = math.log1p(float((latents[i] - latents[j]).square().sum()))
            data_cost = math.log1p(float((data[i] - data[j]).square().sum()))
            expected += (latent_cost - data_cost) ** 2
    expected /= 13**2
    assert gme_heldout(latents, data) == pytest.approx(expected, rel=1e-5)
    assert gme_heldout(latents, data, block_size=4) == pytest.approx(expected, rel=1e-5)  # streamed in ragged blocks


# ---------------------------------------------------------------- bilipschitz_p95


@pytest.mark.parametrize("latent_dim", [6, 10])
def test_bilipschitz_of_an_isometry_is_one(latent_dim):
    data = torch.randn(60, 6, generator=torch.Generator().manual_seed(1))
    latents = data @ orthonormal_columns(latent_dim, 6).T + 3.0
    assert bilipschitz_p95(latents, data) == pytest.approx(1.0, abs=1e-4)


def test_bilipschitz_of_a_scaling_is_the_factor_both_ways():
    data = torch.randn(40, 1, 3, 3, generator=torch.Generator().manual_seed(2))
    assert bilipschitz_p95(2.0 * data.flatten(1), data) == pytest.approx(2.0, abs=1e-4)
    assert bilipschitz_p95(0.5 * data.flatten(1), data) == pytest.approx(2.0, abs=1e-4)  # max(r, 1/r)


def test_bilipschitz_is_the_95th_percentile_of_the_pair_ratios():
    # Points x = 0, 1, 3 on a line mapped to 0, 2, 4.5: ratios 2/1, 4.5/3, 2.5/2 -> sorted [1.25, 1.5, 2];
    # the 95th percentile sits 0.9 of the way from 1.5 to 2 (linear interpolation, as torch.quantile).
    data = torch.tensor([[0.0], [1.0], [3.0]])
    latents = torch.tensor([[0.0], [2.0], [4.5]])
    assert bilipschitz_p95(latents, data) == pytest.approx(1.95)
    assert bilipschitz_p95(latents, data) == pytest.approx(torch.quantile(torch.tensor([2.0, 1.5, 1.25]), 0.95).item())


def test_bilipschitz_skips_duplicate_points_and_samples_pairs_when_there_are_many():
    data = torch.randn(50, 4, generator=torch.Generator().manual_seed(3))
    data = torch.cat([data, data[:5]])  # duplicates: zero data distance
    latents = 3.0 * data
    assert bilipschitz_p95(latents, data) == pytest.approx(3.0, abs=1e-4)
    assert bilipschitz_p95(latents, data, max_pairs=100, seed=7) == pytest.approx(3.0, abs=1e-4)
    # With a non-uniform map the subset estimate is close to, but not the same as, the all-pairs value.
    bent = data * torch.linspace(0.5, 2.0, 4)
    full = bilipschitz_p95(bent, data)
    sampled = bilipschitz_p95(bent, data, max_pairs=600, seed=0)
    assert sampled == pytest.approx(full, rel=0.1)
    assert bilipschitz_p95(bent, data, max_pairs=600, seed=0) == sampled  # seeded


@pytest.mark.parametrize("num_points, max_pairs", [(30, 300), (200, 150), (5, 10)])
def test_pair_subsets_are_distinct_upper_triangle_pairs(num_points, max_pairs):
    from gpe_pipeline.core.metrics import _upper_triangle_pairs

    rows, cols = _upper_triangle_pairs(num_points, max_pairs, seed=0)
    pairs = set(zip(rows.tolist(), cols.tolist(), strict=True))
    assert len(pairs) == len(rows) == min(max_pairs, num_points * (num_points - 1) // 2)
    assert all(0 <= i < j < num_points for i, j in pairs)


def test_bilipschitz_is_infinite_when_distinct_points_collapse():
    data = torch.tensor([[0.0], [1.0], [2.0]])
    assert bilipschitz_p95(torch.zeros(3, 2), data) == math.inf


# ---------------------------------------------------------------- local_distortion


def test_local_distortion_of_an_isometry_is_zero():
    data = torch.randn(80, 5, generator=torch.Generator().manual_seed(4))
    encoder = LinearEncoder(orthonormal_columns(9, 5))
    assert local_distortion(encoder, data, k=5) == pytest.approx(0.0, abs=1e-6)


def test_local_distortion_of_a_scaling_by_two_is_nine_on_images():
    data = torch.randn(40, 1, 3, 4, generator=torch.Generator().manual_seed(5))
    encoder = LinearEncoder(2.0 * torch.eye(12))  # |J u|^2 = 4 for every unit u: (4 - 1)^2 = 9
    assert local_distortion(encoder, data, k=3, max_points=25, batch_size=7) == pytest.approx(9.0, abs=1e-5)


def test_local_distortion_uses_the_directions_to_the_nearest_neighbours():
    # Eight points on the x axis, 1 apart, and one far point (0, 50); T stretches only the second coordinate by 2.
    # With k = 2 the axis points see only axis neighbours (|J u|^2 = 1, no distortion); the far point's two nearest
    # neighbours are (0, 0) and (1, 0), directions (0, -1) and (1, -50) / sqrt(2501).
    data = torch.tensor([[float(i), 0.0] for i in range(8)] + [[0.0, 50.0]])
    encoder = LinearEncoder(torch.diag(torch.tensor([1.0, 2.0])))
    far_stretches = [4.0, (1.0 + 4.0 * 2500.0) / 2501.0]
    expected = sum((stretch - 1.0) ** 2 for stretch in far_stretches) / (9 * 2)
    assert local_distortion(encoder, data, k=2) == pytest.approx(expected, rel=1e-5)
    # On a vertical line the same map stretches every tangent: (4 - 1)^2 = 9.
    assert local_distortion(encoder, data[:8].flip(1), k=2) == pytest.approx(9.0, abs=1e-5)


def test_local_distortion_restores_training_mode_and_handles_batch_norm():
    encoder = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).train()
    data = torch.randn(30, 4, generator=torch.Generator().manual_seed(6))
    value = local_distortion(encoder, data, k=2)
    assert math.isfinite(value) and encoder.training


def test_local_distortion_counts_duplicate_rows_once():
    data = torch.randn(25, 1, 2, 3, generator=torch.Generator().manual_seed(13))
    encoder = LinearEncoder(torch.randn(4, 6, generator=torch.Generator().manual_seed(14)))
    single = local_distortion(encoder, data, k=3)
    # Every point twice: the same points and the same distinct neighbours, so the same mean.
    assert local_distortion(encoder, torch.cat([data, data]), k=3) == pytest.approx(single, rel=1e-6)
    # One point six times and one other: a single distinct neighbour each, where zero-length directions gave NaN.
    few = torch.cat([data[:1].repeat(6, 1, 1, 1), data[1:2]])
    direction = (data[1] - data[0]).flatten() / (data[1] - data[0]).norm()
    expected = ((encoder.linear.weight @ direction).square().sum().item() - 1.0) ** 2  # the same |J u| both ways
    assert local_distortion(encoder, few, k=3) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 distinct points"):
        local_distortion(encoder, data[:1].repeat(5, 1, 1, 1), k=3)


# ---------------------------------------------------------------- Frechet distances


def sample_statistics_closed_form(a: np.ndarray, b: np.ndarray) -> float:
    """Reference: the textbook formula with scipy's sqrtm on the sample means and covariances."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = torch.randn(200, 8, generator=torch.Generator().manual_seed(7)) * 3 + 1
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-9)
    wide = torch.randn(20, 50, generator=torch.Generator().manual_seed(8))  # N < F: the small-Gram path
    assert frechet_distance(wide, wide) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("num_a, num_b, features", [(300, 250, 6), (40, 30, 64)])
def test_frechet_distance_matches_the_closed_form_of_the_sample_statistics(num_a, num_b, features):
    generator = torch.Generator().manual_seed(9)
    mixing = torch.randn(features, features, generator=generator, dtype=torch.float64)
    a = torch.randn(num_a, features, generator=generator, dtype=torch.float64) @ mixing
    b = torch.randn(num_b, features, generator=generator, dtype=torch.float64) * 0.7 + 0.4
    expected = sample_statistics_closed_form(a.numpy(), b.numpy())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    try:
        pytorch_fid_value = calculate_frechet_distance(
            a.mean(0).numpy(), np.cov(a.numpy(), rowvar=False), b.mean(0).numpy(), np.cov(b.numpy(), rowvar=False)
        )
    except TypeError as err:  # pytorch-fid 0.3.0 passes disp= to scipy.linalg.sqrtm, which newer SciPy no longer takes
        pytest.skip(f"pytorch-fid's own Frechet distance does not run with this SciPy ({err})")
    assert frechet_distance(a, b) == pytest.approx(pytorch_fid_value, rel=1e-5)


def test_frechet_distance_of_large_gaussian_samples_is_near_the_population_value():
    # N(0, I) vs N(mu, s^2 I): |mu|^2 + F (1 - s)^2.
    generator = torch.Generator().manual_seed(10)
    features, spread, mean = 4, 2.0, torch.tensor([1.0, -1.0, 0.5, 0.0])
    a = torch.randn(40_000, features, generator=generator)
    b = torch.randn(40_000, features, generator=generator) * spread + mean
    population = float(mean.square().sum()) + features * (1 - spread) ** 2
    assert frechet_distance(a, b) == pytest.approx(population, abs=0.2)  # about 3 sampling standard deviations


def test_fd_pixel_flattens_images():
    generator = torch.Generator().manual_seed(11)
    images_a = torch.rand(30, 1, 2, 2, generator=generator) * 2 - 1
    images_b = torch.rand(25, 1, 2, 2, generator=generator)
    assert fd_pixel(images_a, images_b) == pytest.approx(frechet_distance(images_a.flatten(1), images_b.flatten(1)))
    assert fd_pixel(images_a, images_b) > 0.1


def test_frechet_distance_refuses_mismatched_or_too_small_sets():
    with pytest.raises(ValueError, match="same F"):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))


def test_bootstrap_interval_is_seeded_and_centred_on_the_estimate():
    generator = torch.Generator().manual_seed(15)
    a = torch.randn(180, 16, generator=generator, dtype=torch.float64)
    b = torch.randn(180, 16, generator=generator, dtype=torch.float64) * 1.3 + 0.2
    estimate, low, high = bootstrap_interval(frechet_distance, a, b, resamples=100, confidence=0.9, seed=3)
    assert estimate == frechet_distance(a, b)
    assert low < estimate < high and bootstrap_interval(frechet_distance, a, b, 100, 0.9, seed=3) == (estimate, low, high)
    # The resamples' mean sits well above the estimate (repeated rows add small-sample bias): the plain percentile
    # interval would miss the estimate, the centred one is that interval moved down by the difference.
    resampled = [
        frechet_distance(a[torch.randint(180, (180,), generator=generator)], b[torch.randint(180, (180,), generator=generator)])
        for _ in range(50)
    ]
    assert min(resampled) > estimate
    narrower = bootstrap_interval(frechet_distance, a, b, resamples=100, confidence=0.5, seed=3)
    assert low < narrower[1] < narrower[2] < high
    _, more_low, more_high = bootstrap_interval(frechet_distance, torch.cat([a] * 4), torch.cat([b] * 4), 100, 0.9, seed=3)
    assert more_high - more_low < (high - low) / 1.5  # four times the points: about half the width


def test_bootstrap_interval_refuses_bad_settings():
    a = torch.randn(10, 2)
    with pytest.raises(ValueError, match="resamples >= 1"):
        bootstrap_interval(frechet_distance, a, a, resamples=0)
    with pytest.raises(ValueError, match=r"confidence in \(0, 1\)"):
        bootstrap_interval(frechet_distance, a, a, confidence=1.0)


def test_paired_bootstrap_difference_matches_a_hand_written_resample_loop():
    generator = torch.Generator().manual_seed(21)
    first, second = (torch.randn(60, 4, generator=generator, dtype=torch.float64) + shift for shift in (0.0, 1.0))
    reference = torch.randn(50, 4, generator=generator, dtype=torch.float64)
    estimate, low, high = paired_bootstrap_difference(frechet_distance, first, second, reference, 40, 0.8, seed=5)
    assert estimate == frechet_distance(first, reference) - frechet_distance(second, reference)
    draws = torch.Generator().manual_seed(5)
    values = []
    for _ in range(40):  # one index draw for the pair, then one for the reference, shared by both terms
        rows, reference_rows = torch.randint(60, (60,), generator=draws), torch.randint(50, (50,), generator=draws)
        values.append(
            frechet_distance(first[rows], reference[reference_rows]) - frechet_distance(second[rows], reference[reference_rows])
        )
    values = torch.tensor(values, dtype=torch.float64)
    shift = float(values.mean()) - estimate
    expected = [float(torch.quantile(values, q)) - shift for q in (0.1, 0.9)]
    assert (low, high) == pytest.approx(expected, rel=1e-12)
    assert high < 0, "second lies 1 further from the reference in every coordinate: its distance is larger"


def test_paired_bootstrap_difference_cancels_what_both_sets_share():
    generator = torch.Generator().manual_seed(22)
    first = torch.randn(80, 3, generator=generator, dtype=torch.float64)
    reference = torch.randn(80, 3, generator=generator, dtype=torch.float64)
    assert paired_bootstrap_difference(frechet_distance, first, first.clone(), reference, 30) == (0.0, 0.0, 0.0)
    # Two sets differing by a small shift: the paired interval is far narrower than either distance's own interval,
    # which moves with the reference rows drawn as much as with the sets.
    second = first + 0.05
    _, low, high = paired_bootstrap_difference(frechet_distance, first, second, reference, 100, 0.9, seed=1)
    _, own_low, own_high = bootstrap_interval(frechet_distance, first, reference, 100, 0.9, seed=1)
    assert high - low < (own_high - own_low) / 3


def test_paired_bootstrap_difference_needs_pairs_and_good_settings():
    a = torch.randn(10, 2)
    with pytest.raises(ValueError, match="the same N"):
        paired_bootstrap_difference(frechet_distance, a, a[:9], a)
    with pytest.raises(ValueError, match="resamples >= 1"):
        paired_bootstrap_difference(frechet_distance, a, a, a, resamples=0)


# ---------------------------------------------------------------- kernel (Inception) distance


def test_polynomial_mmd2_unbiased_matches_a_brute_force_double_loop():
    generator = torch.Generator().manual_seed(16)
    a = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    b = torch.randn(5, 3, generator=generator, dtype=torch.float64) + 0.5

    def kernel(x, y):
        return (float(x @ y) / 3 + 1) ** 3

    within_a = sum(kernel(a[i], a[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    within_b = sum(kernel(b[i], b[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    across = sum(kernel(a[i], b[j]) for i in range(7) for j in range(5)) / (7 * 5)
    assert polynomial_mmd2_unbiased(a, b) == pytest.approx(within_a + within_b - 2 * across, rel=1e-12)
    assert polynomial_kernel(a, b)[2, 4].item() == pytest.approx(kernel(a[2], b[4]), rel=1e-12)
    assert polynomial_mmd2_unbiased(a, b) == pytest.approx(polynomial_mmd2_unbiased(b, a), rel=1e-12)


def test_kernel_distance_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    generator = torch.Generator().manual_seed(17)
    same = []
    for _ in range(8):
        a, b = torch.randn(300, 10, generator=generator), torch.randn(300, 10, generator=generator)
        same.append(kernel_distance(a, b, subset_size=100, subsets=50, seed=0))
    means = [mean for mean, _ in same]
    assert min(means) < 0 < max(means), "unbiased: two samples of one distribution give both signs"
    assert all(abs(mean) < std for mean, std in same)  # zero is within one subset's spread
    shifted, spread = kernel_distance(torch.randn(300, 10, generator=generator), torch.randn(300, 10, generator=generator) + 0.5)
    assert shifted > 0.1 and shifted > 5 * spread and shifted > 20 * max(abs(mean) for mean in means)


def test_kernel_distance_clips_the_subset_size_and_is_seeded():
    generator = torch.Generator().manual_seed(18)
    a, b = torch.randn(40, 4, generator=generator), torch.randn(30, 4, generator=generator)
    assert kernel_distance(a[:30], b, subset_size=1000) == (polynomial_mmd2_unbiased(a[:30], b), 0.0)  # whole sets
    mean, std = kernel_distance(a, b, subset_size=1000, subsets=20, seed=1)  # 30 of the 40 rows of a each time
    assert std > 0 and kernel_distance(a, b, subset_size=1000, subsets=20, seed=1) == (mean, std)
    assert kernel_distance(a, b, subset_size=1000, subsets=20, seed=2) != (mean, std)
    with pytest.raises(ValueError, match="subset_size >= 2 and subsets >= 1"):
        kernel_distance(a, b, subset_size=1)
    with pytest.raises(ValueError, match="same F"):
        kernel_distance(a, torch.zeros(5, 3))


# ---------------------------------------------------------------- 8-bit rounding


def test_round_to_8bit_keeps_uint8_images_and_rounds_others_to_png_levels():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    real = uint8_to_unit_range(pixels)
    assert torch.equal(round_to_8bit(real), real)
    generated = torch.rand(3, 3, 5, 5, generator=torch.Generator().manual_seed(19)) * 2.4 - 1.2  # beyond [-1, 1] too
    rounded = round_to_8bit(generated)
    levels = (rounded + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-4) and levels.min() >= 0 and levels.max() <= 255
    inside = generated.abs() <= 1
    assert (rounded - generated)[inside].abs().max() <= 1 / 255 + 1e-6  # half a level
    assert rounded[generated > 1].eq(1).all() and rounded[generated < -1].eq(-1).all()
    assert round_to_8bit(torch.tensor([1 / 255 - 1])).item() == pytest.approx(2 / 255 - 1)  # u = 0.5 / 255 rounds up


# ---------------------------------------------------------------- FID path


class StandInInception(nn.Module):
    """Answers like pytorch-fid's InceptionV3 (a list holding (N, F, 1, 1) features), from a fixed projection."""

    def __init__(self, in_features: int, out_features: int = 5):
        super().__init__()
        self.projection = nn.Linear(in_features, out_features)
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        return [self.projection(images.flatten(1))[:, :, None, None]]


def test_fid_is_the_frechet_distance_of_the_features_of_one_reused_network(empty_hub_dir):
    # What evaluate computes: frechet_distance over inception_features of each set, the network built once and passed
    # in. No weights file exists here, so a network built inside inception_features would raise.
    torch.manual_seed(12)
    network = StandInInception(3 * 4 * 4)
    generator = torch.Generator().manual_seed(12)
    images_a = torch.rand(50, 1, 4, 4, generator=generator) * 2 - 1
    images_b = torch.rand(40, 1, 4, 4, generator=generator) * 2 - 1
    features_a = inception_features(images_a, batch_size=16, network=network)
    features_b = inception_features(images_b, batch_size=16, network=network)
    assert network.calls == 4 + 3, "every batch of both sets goes through the one network"
    with torch.no_grad():
        expected_a = network.projection(to_inception_input(images_a).flatten(1)).double()
    assert features_a.dtype == torch.float64 and torch.allclose(features_a, expected_a)
    assert frechet_distance(features_a, features_b) > 0


@pytest.fixture
def empty_hub_dir(tmp_path, monkeypatch):
    # torch.hub.set_dir stores the folder in torch.hub._hub_dir; restoring that (None by default) keeps TORCH_HOME in
    # charge afterwards, where set_dir(previous) would pin the default folder for every later test.
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_inception_weights_path_is_where_pytorch_fid_looks(empty_hub_dir):
    from pytorch_fid.inception import FID_WEIGHTS_URL

    assert FID_WEIGHTS_URL.endswith("/" + INCEPTION_WEIGHTS_FILE)
    assert inception_weights_path() == empty_hub_dir / "checkpoints" / INCEPTION_WEIGHTS_FILE
    assert not inception_available()


def test_inception_features_without_weights_names_the_file_and_never_downloads(empty_hub_dir):
    with pytest.raises(FileNotFoundError) as error:
        inception_features(torch.zeros(2, 1, 8, 8))
    assert INCEPTION_WEIGHTS_FILE in str(error.value)
    assert str(empty_hub_dir / "checkpoints") in str(error.value)
    assert not (empty_hub_dir / "checkpoints").exists()  # nothing was fetched
    with pytest.raises(FileNotFoundError, match=INCEPTION_WEIGHTS_FILE):
        inception_network("cpu")  # what evaluate's extractor builds once


def test_inception_input_repeats_grey_to_three_channels_in_unit_range():
    grey = torch.tensor([[-1.0, 0.0], [0.5, 1.0]]).reshape(1, 1, 2, 2)
    converted = to_inception_input(grey)
    assert converted.shape == (1, 3, 2, 2)
    expected = torch.tensor([[0.0, 0.5], [0.75, 1.0]])
    assert all(torch.equal(converted[0, channel], expected) for channel in range(3))
    colour = torch.rand(2, 3, 4, 4) * 2 - 1
    assert torch.allclose(to_inception_input(colour), (colour + 1) / 2)
    with pytest.raises(ValueError, match="1 or 3"):
        to_inception_input(torch.zeros(2, 64))


def test_an_unreadable_inception_weights_file_is_named(empty_hub_dir):
    from gpe_pipeline.core.errors import UnreadableFileError

    inception_weights_path().parent.mkdir(parents=True)
    inception_weights_path().write_bytes(b"")  # a download that stopped at once
    with pytest.raises(UnreadableFileError, match=f"the FID Inception weights {inception_weights_path()} cannot be read"):
        inception_network("cpu")


def test_inception_features_build_pool3_features_from_the_weights_file(empty_hub_dir, monkeypatch):
    # No real weights here: an empty file passes the existence check and pytorch-fid's loading is stubbed, so the
    # network keeps its random initialisation. What is checked is the plumbing: grey input, batching, shapes.
    import pytorch_fid.inception
    import torchvision

    inception_weights_path().parent.mkdir(parents=True)
    inception_weights_path().touch()
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", lambda url, **kwargs: {})
    monkeypatch.setattr(torchvision.models.Inception3, "load_state_dict", lambda self, state_dict, *args, **kwargs: None)
    grey = torch.rand(2, 1, 8, 8) * 2 - 1
    features = inception_features(grey, batch_size=1, device="cpu")
    assert features.shape == (2, 2048) and features.dtype == torch.float64 and torch.isfinite(features).all()
    # Each image its own row, across batches. A randomly initialised Inception gives features of about 1e-7, so
    # allclose's absolute tolerance (1e-8) cannot tell them apart: compare relative to their size.
    assert (features[0] - features[1]).abs().max() > 0.01 * features.abs().max()


@pytest.mark.skipif(not inception_available(), reason="the FID Inception weights are not in the torch hub cache")
def test_inception_features_are_2048_wide():
    features = inception_features(torch.rand(2, 1, 8, 8) * 2 - 1, device="cpu")
    assert features.shape == (2, 2048)


# ---------------------------------------------------------------- feature classifier


def two_blob_images(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: dark top half; class 1: dark bottom half; plus noise. (count, 1, 8, 8) and labels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, (count,), generator=generator)
    images = torch.randn(count, 1, 8, 8, generator=generator) * 0.8
    images[labels == 0, :, :4] -= 0.5
    images[labels == 1, :, 4:] -= 0.5
    return images, labels


def test_feature_classifier_trains_with_the_one_training_loop():
    train_images, train_labels = two_blob_images(512, seed=13)
    test_images, test_labels = two_blob_images(512, seed=14)
    classifier = build_model("classifier", "mlp", data_shape=[1, 8, 8], num_classes=2, hidden=[32, 16])
    config = TrainConfig(max_steps=200, batch_size=64, lr=3e-3, log_every=100, eval_every=200, device="cpu", name="classifier")
    result = train(classifier, lambda model, batch: classifier_loss(model, *batch), [train_images, train_labels], config)
    with torch.no_grad():
        accuracy = (result.model(test_images).argmax(1) == test_labels).float().mean()
        features = result.model.features(test_images)
    assert accuracy > 0.9
    assert features.shape == (512, 16)
    assert torch.allclose(result.model.head(features), result.model(test_images))


def test_classifier_loss_is_cross_entropy():
    classifier = FeatureClassifier(data_shape=[3], num_classes=3, hidden=[4])
    images, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    expected = -torch.log_softmax(classifier(images), 1)[torch.arange(6), labels].mean()
    assert classifier_loss(classifier, images, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_classifier_rebuilds_from_its_spec_and_rejects_bad_settings():
    original = build_model("classifier", "mlp", data_shape=[1, 8, 8], num_classes=10, hidden=[8])
    rebuilt = model_from_spec(original.build_spec.as_dict(), original.state_dict())
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(original(x), rebuilt(x))
    with pytest.raises(ValueError, match="build_model needs data_shape and num_classes for role 'classifier'"):
        build_model("classifier", "mlp", data_shape=[1, 8, 8])
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        build_model("classifier", "mlp", data_shape=[1, 8, 8], num_classes=1)
    with pytest.raises(ValueError, match="unknown architecture 'conv32' for role 'classifier'"):
        build_model("classifier", "conv32", data_shape=[1, 32, 32], num_classes=10)
