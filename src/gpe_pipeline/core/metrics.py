"""Held-out measurements of SPEC section 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from .data import to_model_scale
from .errors import UnreadableFileError
from .losses import gme_residual, pairwise_squared_distances
from .training import resolve_device


@torch.no_grad()
def gme_heldout(latents: Tensor, data: Tensor, block_size: int = 1024) -> float:
    """L_GME over all N x N pairs of a held-out set, streamed in row blocks.

    latents: (N, d) = T(x); data: (N, ...). Memory is O(block_size * N), so N of
    several thousand fits. Returns a float.
    """
    if len(latents) != len(data) or len(latents) < 2:
        raise ValueError(f"gme_heldout needs N >= 2 matching rows, got {len(latents)} latents and {len(data)} points")
    total = torch.zeros((), dtype=torch.float64, device=latents.device)
    for start in range(0, len(latents), block_size):
        stop = start + block_size
        latent_sq = pairwise_squared_distances(latents[start:stop], latents)
        residual = gme_residual(latent_sq, pairwise_squared_distances(data[start:stop], data), 0, 0)
        total += residual.square().sum(dtype=torch.float64)
    return float(total / len(latents) ** 2)


@torch.no_grad()
def reconstruction_mse(decoder: torch.nn.Module, latents: Tensor, data: Tensor, batch_size: int = 1024) -> float:
    """Held-out mean |x - S(y)|^2 per element, decoding cached latents in batches."""
    total = torch.zeros((), dtype=torch.float64)
    device = next(decoder.parameters()).device
    for start in range(0, len(latents), batch_size):
        reconstruction = decoder(latents[start : start + batch_size].to(device)).float()
        target = to_model_scale(data[start : start + batch_size].to(device))
        total += (reconstruction - target).square().sum(dtype=torch.float64).cpu()
    return float(total / data.numel())


def _quantile(values: Tensor, fraction: float) -> float:
    """Linear-interpolation quantile (torch.quantile's rule) without its 16M-element limit; inf stays inf."""
    ordered = values.double().sort().values
    position = fraction * (len(ordered) - 1)
    lower_index = int(position)
    lower = float(ordered[lower_index])
    weight = position - lower_index
    if weight == 0.0 or lower_index + 1 == len(ordered):
        return lower
    upper = float(ordered[lower_index + 1])
    return lower if upper == lower else lower + weight * (upper - lower)  # inf - inf would give nan


def _upper_triangle_pairs(num_points: int, max_pairs: int, seed: int) -> tuple[Tensor, Tensor]:
    """Index pairs i < j: all of them when there are at most max_pairs, else max_pairs distinct ones drawn with a seed."""
    total = num_points * (num_points - 1) // 2
    if total <= max_pairs:
        rows, cols = torch.triu_indices(num_points, num_points, offset=1)
        return rows, cols
    generator = torch.Generator().manual_seed(seed)
    if total <= 2 * max_pairs:  # a permutation is small enough here, and drawing with replacement would stall
        chosen = torch.randperm(total, generator=generator)[:max_pairs]
    else:  # at least half of every draw is new, so the shortfall halves each round
        chosen = torch.empty(0, dtype=torch.long)
        while len(chosen) < max_pairs:
            drawn = torch.randint(total, (max_pairs - len(chosen),), generator=generator)
            chosen = torch.cat([chosen, drawn]).unique()

    # Linear index k of the upper triangle, row by row -> (i, j). Row i starts at i (2N - i - 1) / 2; inverting that
    # quadratic in float64 is exact far beyond any N used here, up to an off-by-one that the two corrections fix.
    def row_start(rows: Tensor) -> Tensor:
        return rows * (2 * num_points - rows - 1) // 2

    rows = torch.floor((2 * num_points - 1 - torch.sqrt((2 * num_points - 1) ** 2 - 8 * chosen.double())) / 2).long()
    rows -= (chosen < row_start(rows)).long()
    rows += (chosen >= row_start(rows + 1)).long()
    cols = chosen - row_start(rows) + rows + 1
    return rows, cols


def _pair_distances(points: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """|p_i - p_j| in float64 from direct differences (no |a|^2 + |b|^2 - 2ab cancellation), in chunks."""
    flat = points.reshape(len(points), -1)
    chunk = max(1, 2**24 // flat.shape[1])  # about 128 MB of float64 differences at a time
    return torch.cat(
        [
            (flat[rows[start : start + chunk]].double() - flat[cols[start : start + chunk]].double()).norm(dim=1)
            for start in range(0, len(rows), chunk)
        ]
    )


@torch.no_grad()
def bilipschitz_p95(latents: Tensor, data: Tensor, max_pairs: int = 1_000_000, seed: int = 0) -> float:
    """95th percentile over held-out pairs of max(r, 1/r), r = |T x_i - T x_j| / |x_i - x_j| (SPEC 2).

    latents: (N, d) = T(x); data: (N, ...). All pairs i < j when there are at
    most max_pairs, else a seeded random subset. Pairs of identical points are
    skipped. 1 for an isometry; inf when the encoder maps distinct points together.
    """
    if len(latents) != len(data) or len(latents) < 2:
        raise ValueError(f"bilipschitz_p95 needs N >= 2 matching rows, got {len(latents)} latents and {len(data)} points")
    if max_pairs < 1:
        raise ValueError(f"bilipschitz_p95 needs max_pairs >= 1, got {max_pairs}")
    rows, cols = _upper_triangle_pairs(len(data), max_pairs, seed)
    data_distance = _pair_distances(data.cpu(), rows, cols)
    latent_distance = _pair_distances(latents.cpu(), rows, cols)
    distinct = data_distance > 0
    if not distinct.any():
        raise ValueError("bilipschitz_p95: all held-out points are identical, so no distance ratio exists")
    ratio = latent_distance[distinct] / data_distance[distinct]
    return _quantile(torch.maximum(ratio, 1.0 / ratio), 0.95)


def _nearest_distinct_neighbours(data: Tensor, points: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Neighbours among the distinct rows of data (N, D) of the rows indexed by points (P,).

    Returns the distinct rows (M, D), each point's own index among them (P,) and the indices (P, min(k, M - 1)) of its
    nearest other distinct rows. Merging exact duplicates first means that no point has itself or a copy of itself as
    a neighbour, so every direction to a neighbour has a non-zero length, whatever the rounding of the distances.
    """
    distinct, row_of = torch.unique(data, dim=0, return_inverse=True)
    own = row_of[points]
    squared = pairwise_squared_distances(distinct[own], distinct)
    squared[torch.arange(len(own)), own] = float("inf")
    return distinct, own, squared.topk(min(k, len(distinct) - 1), dim=1, largest=False).indices


def local_distortion(
    encoder: torch.nn.Module, data: Tensor, k: int = 5, max_points: int = 500, seed: int = 0, batch_size: int = 256
) -> float:
    """Mean over held-out x and unit tangent directions u of (|J_T(x) u|^2 - 1)^2 (SPEC 2, Theorem 9).

    data: (N, ...) held-out inputs; at most max_points of them (a seeded subset)
    are the points x, and u runs over the unit vectors from x to its k nearest
    distinct neighbours in data (duplicate rows count once; k is lowered to the
    number of other distinct points when there are fewer). J_T(x) u comes from a
    forward-mode Jacobian-vector product with the encoder in eval mode,
    batch_size (point, direction) rows at a time.
    """
    if k < 1:
        raise ValueError(f"local_distortion needs k >= 1, got {k}")
    parameter = next(encoder.parameters(), None)
    device = parameter.device if parameter is not None else data.device
    input_shape = data.shape[1:]
    flat = data.reshape(len(data), -1).float().cpu()
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(data), generator=generator)[:max_points] if len(data) > max_points else torch.arange(len(data))
    distinct, own, neighbours = _nearest_distinct_neighbours(flat, chosen, k)
    if neighbours.shape[1] == 0:
        raise ValueError(f"local_distortion needs at least 2 distinct points, got {len(data)} identical ones")
    k = neighbours.shape[1]

    was_training = encoder.training
    encoder.eval()  # batch norm in eval mode acts row by row, so a batched JVP gives each row its own J_T(x) u
    total = torch.zeros((), dtype=torch.float64)
    points_per_batch = max(1, batch_size // k)
    for start in range(0, len(own), points_per_batch):
        points = distinct[own[start : start + points_per_batch]]  # (p, D)
        differences = distinct[neighbours[start : start + points_per_batch]] - points[:, None, :]  # (p, k, D), non-zero
        directions = differences / differences.norm(dim=2, keepdim=True)
        # One JVP row per (point, direction): each point repeated k times, one direction as its tangent.
        x = points.repeat_interleave(k, dim=0).reshape(-1, *input_shape).to(device)
        u = directions.reshape(-1, *input_shape).to(device)
        with torch.no_grad():  # forward-mode AD ignores no_grad; this only stops a backward graph being built
            _, pushed = torch.func.jvp(encoder, (x,), (u,))
        stretch = pushed.reshape(len(pushed), -1).double().square().sum(1)  # |J_T(x) u|^2
        total += (stretch - 1.0).square().sum().cpu()
    encoder.train(was_training)
    return float(total / (len(own) * k))


def _psd_sqrt(matrix: Tensor) -> Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues clipped)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets, in float64 on features_a's device.

    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}), S the unbiased covariance.
    features_a: (N_a, F), features_b: (N_b, F).
    """
    _check_feature_sets("frechet_distance", features_a, features_b)
    if len(features_a) < 2 or len(features_b) < 2:
        raise ValueError("frechet_distance needs at least 2 samples in each set to estimate a covariance")
    a, b = features_a.double(), features_b.double().to(features_a.device)
    mean_a, mean_b = a.mean(0), b.mean(0)
    # S = X^T X with X the centred rows / sqrt(N - 1); Tr S = |X|_F^2.
    centred_a = (a - mean_a) / (len(a) - 1) ** 0.5
    centred_b = (b - mean_b) / (len(b) - 1) ** 0.5
    # Tr (S_a S_b)^{1/2} is the sum of the square roots of the eigenvalues of S_a S_b. They are those of the symmetric
    # S_a^{1/2} S_b S_a^{1/2} (F x F), and the squared singular values of X_a X_b^T (N_a x N_b): use the smaller matrix.
    # This avoids scipy's sqrtm of a non-symmetric product and never forms F x F when N < F.
    if features_a.shape[1] <= min(len(a), len(b)):
        sqrt_a = _psd_sqrt(centred_a.T @ centred_a)
        product = sqrt_a @ (centred_b.T @ centred_b) @ sqrt_a
        trace_sqrt_product = torch.linalg.eigvalsh((product + product.T) / 2).clamp_min(0).sqrt().sum()
    else:
        trace_sqrt_product = torch.linalg.matrix_norm(centred_a @ centred_b.T, ord="nuc")
    distance = (mean_a - mean_b).square().sum() + centred_a.square().sum() + centred_b.square().sum() - 2 * trace_sqrt_product
    # A squared distance: of two equal sets the difference of traces leaves only rounding (about -1e-15), not a value.
    return max(float(distance), 0.0)


def _check_feature_sets(name: str, features_a: Tensor, features_b: Tensor) -> None:
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"{name} needs two (N, F) sets with the same F, got {tuple(features_a.shape)} and {tuple(features_b.shape)}"
        )


def fd_pixel(images_a: Tensor, images_b: Tensor) -> float:
    """Frechet distance on raw flattened pixels: (N_a, ...) and (N_b, ...) in the same scale."""
    return frechet_distance(images_a.reshape(len(images_a), -1), images_b.reshape(len(images_b), -1))


def polynomial_kernel(features_a: Tensor, features_b: Tensor) -> Tensor:
    """k(x, y) = (x.y / F + 1)^3 for every pair of rows: (N_a, F), (N_b, F) -> (N_a, N_b) float64."""
    return (features_a.double() @ features_b.double().T / features_a.shape[1] + 1.0) ** 3


def polynomial_mmd2_unbiased(features_a: Tensor, features_b: Tensor) -> float:
    """Unbiased MMD^2 with the polynomial kernel (Binkowski et al. 2018); can be slightly negative.

    mean_{i != j} k(a_i, a_j) + mean_{i != j} k(b_i, b_j) - 2 mean_{i, j} k(a_i, b_j), the first two means
    over the off-diagonal pairs. features_a: (m, F), features_b: (n, F), m, n >= 2.
    """
    _check_feature_sets("polynomial_mmd2_unbiased", features_a, features_b)
    m, n = len(features_a), len(features_b)
    if m < 2 or n < 2:
        raise ValueError(f"polynomial_mmd2_unbiased needs at least 2 rows in each set, got {m} and {n}")
    features_b = features_b.to(features_a.device)
    within_a, within_b = polynomial_kernel(features_a, features_a), polynomial_kernel(features_b, features_b)
    off_diagonal_a = (within_a.sum() - within_a.diagonal().sum()) / (m * (m - 1))
    off_diagonal_b = (within_b.sum() - within_b.diagonal().sum()) / (n * (n - 1))
    return float(off_diagonal_a + off_diagonal_b - 2.0 * polynomial_kernel(features_a, features_b).mean())


def kernel_distance(
    features_a: Tensor, features_b: Tensor, subset_size: int = 100, subsets: int = 100, seed: int = 0
) -> tuple[float, float]:
    """The Kernel Inception Distance on any features: mean and standard deviation of polynomial_mmd2_unbiased over subsets.

    Each of `subsets` draws subset_size rows of each set without replacement (a
    seeded generator); subset_size is clipped to the smaller set, and when it
    equals it every subset is the whole set and the deviation is 0. The deviation
    is that of one subset's value (numpy's std, as in Binkowski et al. and
    torchmetrics), not the standard error of the mean.
    """
    _check_feature_sets("kernel_distance", features_a, features_b)
    if subset_size < 2 or subsets < 1:
        raise ValueError(f"kernel_distance needs subset_size >= 2 and subsets >= 1, got {subset_size} and {subsets}")
    size = min(subset_size, len(features_a), len(features_b))
    if size == len(features_a) == len(features_b):
        return polynomial_mmd2_unbiased(features_a, features_b), 0.0
    generator = torch.Generator().manual_seed(seed)
    values = torch.tensor(
        [
            polynomial_mmd2_unbiased(
                features_a[torch.randperm(len(features_a), generator=generator)[:size].to(features_a.device)],
                features_b[torch.randperm(len(features_b), generator=generator)[:size].to(features_b.device)],
            )
            for _ in range(subsets)
        ],
        dtype=torch.float64,
    )
    return float(values.mean()), float(values.std(correction=0))


def _check_bootstrap(name: str, resamples: int, confidence: float) -> None:
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError(f"{name} needs resamples >= 1 and confidence in (0, 1), got {resamples} and {confidence}")


def _resampled(features: Tensor, rows: Tensor) -> Tensor:
    """The rows of a resample (indices drawn on the CPU generator) on the features' device."""
    return features[rows.to(features.device)]


def _centred_interval(values: Tensor, estimate: float, confidence: float) -> tuple[float, float]:
    """The (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of resampled values, shifted by their mean's
    distance from the estimate (bootstrap_interval says why)."""
    shift = float(values.mean()) - estimate
    low, high = (_quantile(values, fraction) - shift for fraction in ((1 - confidence) / 2, (1 + confidence) / 2))
    return low, high


def bootstrap_interval(
    statistic: Callable[[Tensor, Tensor], float],
    features_a: Tensor,
    features_b: Tensor,
    resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """A two-sample statistic and its bootstrap interval, centred on the estimate: (estimate, low, high).

    Each resample draws N_a rows of features_a and N_b rows of features_b with
    replacement (a seeded generator) and recomputes the statistic. The interval is
    the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of those values,
    shifted by their mean's distance from the estimate: a resample repeats about a
    third of its rows, which adds its own small-sample bias (for a Frechet distance,
    often more than the spread), so the plain percentile interval can lie wholly
    above the estimate. The interval measures how much the statistic moves with the
    points drawn at this sample size, not its distance from the N -> infinity value.
    """
    _check_bootstrap("bootstrap_interval", resamples, confidence)
    estimate = statistic(features_a, features_b)
    generator = torch.Generator().manual_seed(seed)
    values = torch.tensor(
        [
            statistic(
                _resampled(features_a, torch.randint(len(features_a), (len(features_a),), generator=generator)),
                _resampled(features_b, torch.randint(len(features_b), (len(features_b),), generator=generator)),
            )
            for _ in range(resamples)
        ],
        dtype=torch.float64,
    )
    return (estimate, *_centred_interval(values, estimate, confidence))


def paired_bootstrap_difference(
    statistic: Callable[[Tensor, Tensor], float],
    first: Tensor,
    second: Tensor,
    reference: Tensor,
    resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """statistic(first, reference) - statistic(second, reference) and its paired bootstrap interval: (estimate, low, high).

    first, second: (N, F) sets whose row i is one pair (e.g. two models' samples from the same starting noise);
    reference: (M, F), the set both are compared with. Each resample draws N row indices with replacement, used for
    both first and second, and M rows of reference, shared by both terms (a seeded generator), so the difference
    moves only with what differs between the two sets, not with which reference rows were drawn. The interval is
    bootstrap_interval's: the quantiles of the resampled differences, centred on the estimate.
    """
    _check_bootstrap("paired_bootstrap_difference", resamples, confidence)
    if len(first) != len(second):
        raise ValueError(
            f"paired_bootstrap_difference needs two sets of the same N (row i a pair), got {len(first)} and {len(second)}"
        )

    def difference(pair_rows: Tensor | None, reference_rows: Tensor | None) -> float:
        a, b = (x if pair_rows is None else _resampled(x, pair_rows) for x in (first, second))
        ref = reference if reference_rows is None else _resampled(reference, reference_rows)
        return statistic(a, ref) - statistic(b, ref)

    estimate = difference(None, None)
    generator = torch.Generator().manual_seed(seed)
    values = torch.tensor(
        [
            difference(
                torch.randint(len(first), (len(first),), generator=generator),
                torch.randint(len(reference), (len(reference),), generator=generator),
            )
            for _ in range(resamples)
        ],
        dtype=torch.float64,
    )
    return (estimate, *_centred_interval(values, estimate, confidence))


def round_to_8bit(images: Tensor) -> Tensor:
    """Images in [-1, 1] rounded to the 256 levels an 8-bit PNG holds, as float32 in [-1, 1].

    What pytorch-fid sees when the images are written as PNG files first:
    round(255 u) / 255 with u = (x + 1) / 2 clipped to [0, 1] (halves round up, as
    torchvision's save_image does). Images read from uint8 files come back unchanged.
    """
    levels = ((images.float() + 1.0) * 127.5).clamp(0.0, 255.0)
    return torch.floor(levels + 0.5) / 127.5 - 1.0


INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # the file name in pytorch_fid.inception.FID_WEIGHTS_URL


def inception_weights_path() -> Path:
    """Where pytorch-fid's InceptionV3 looks for its weights: <torch hub dir>/checkpoints/pt_inception-2015-12-05-6726825d.pth."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_FILE


def inception_available() -> bool:
    """True when the FID Inception weights are on disk (they are never downloaded here)."""
    return inception_weights_path().is_file()


def to_inception_input(images: Tensor) -> Tensor:
    """Images in [-1, 1] (N, C, H, W), C in {1, 3} -> float32 (N, 3, H, W) in [0, 1]; grey repeated to 3 channels."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"Inception features need images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    images = ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def inception_network(device: str = "auto") -> torch.nn.Module:
    """pytorch-fid's InceptionV3 up to pool3, in eval mode on `device`, with the weights of inception_weights_path().

    Raises FileNotFoundError naming the weights file and its folder when the weights are absent (this never
    downloads them), and UnreadableFileError naming it when it cannot be read (a truncated download).
    """
    weights = inception_weights_path()
    if not weights.is_file():
        raise FileNotFoundError(
            f"the FID Inception weights {weights.name} are not in {weights.parent}: download them from "
            f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{weights.name} into that folder "
            "(or set TORCH_HOME to a folder whose hub/checkpoints holds them)"
        )
    from pytorch_fid.inception import InceptionV3  # imported here: torchvision loads only when FID is asked for

    try:
        network = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]])  # pool3; reads the weights file
    except Exception as err:  # torch's "Ran out of input" and the like say nothing of which file
        raise UnreadableFileError(
            f"the FID Inception weights {weights} cannot be read ({type(err).__name__}: {err}): delete the file and "
            "download it again"
        ) from err
    return network.eval().to(resolve_device(device))


@torch.no_grad()
def inception_features(
    images: Tensor, batch_size: int = 200, device: str = "auto", network: torch.nn.Module | None = None
) -> Tensor:
    """pytorch-fid Inception pool3 features of images in [-1, 1]: (N, C, H, W) -> (N, 2048) float64 on the CPU.

    network: an inception_network to reuse across sets (default: built here, on `device`).
    """
    network = inception_network(device) if network is None else network
    target = next(network.parameters()).device
    batches = images.split(batch_size)
    return torch.cat([network(to_inception_input(batch).to(target))[0].flatten(1).double().cpu() for batch in batches])
