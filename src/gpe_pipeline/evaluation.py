"""How evaluate measures generated and reconstructed sets against the held-out split, shared by evaluate's nodes
and E6's summary (which measures its flows' earlier snapshots exactly as evaluate measures the final flow).

Every distribution metric compares sets of the same size N (`comparison_size`):
N held-out images H, N train images R (a seeded subset), N generated images G
and the reconstructions S(T H) of the held-out ones. The real-vs-real floor is
R against H; generation is G against H (G takes R's place); reconstruction is
S(T H) against R (the reconstructions take H's place). So each model figure
differs from its floor by one set, at the same N, and generation is measured
against images no model of the run trained on.

Plain PyTorch on the core's formulas, configured by the evaluate section (params); nothing here imports Kedro.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gpe_pipeline.core.data import to_model_scale
from gpe_pipeline.core.metrics import (
    bootstrap_interval,
    frechet_distance,
    inception_available,
    inception_features,
    inception_network,
    inception_weights_path,
    kernel_distance,
    round_to_8bit,
)
from gpe_pipeline.core.models import NoModel
from gpe_pipeline.core.sampling import sample_images
from gpe_pipeline.core.training import resolve_device

logger = logging.getLogger(__name__)


# Each comparison: (the set that takes the real set's place, the real set it is compared with); floor is real vs real.
COMPARISONS = {"floor": ("train", "heldout"), "gen": ("gen", "heldout"), "recon": ("recon", "train")}


def comparison_size(num_heldout: int, num_train: int, limit: int) -> int:
    """N, the size of every set a Frechet or kernel distance compares: at most `limit`, and no more than either split holds."""
    size = min(num_heldout, num_train, limit)
    if size < 2:
        raise ValueError(
            f"evaluate needs at least 2 held-out and 2 train examples, got {num_heldout} and {num_train}: "
            "change ingest.heldout_fraction or ingest.max_heldout"
        )
    return size


def _subset(count: int, size: int, seed: int) -> Tensor:
    """Row indices of a seeded subset of `size` rows out of `count`, in increasing order; all rows when size == count."""
    if size >= count:
        return torch.arange(count)
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def real_comparison_sets(train_data: dict[str, Any], heldout: Tensor, params: dict[str, Any]) -> tuple[dict[str, Tensor], Tensor]:
    """The real sides of every comparison: N held-out rows and N train rows (seeded subsets), in model scale.

    heldout: the whole held-out split in model scale. Returns {"heldout": (N, ...), "train": (N, ...)} and the
    held-out rows taken (a reconstruction set takes the same rows, so it stands where those images stood).
    """
    seed = params.get("seed", 0)
    size = comparison_size(len(heldout), len(train_data["x"]), params["max_points"])
    heldout_rows = _subset(len(heldout), size, seed)
    train = to_model_scale(train_data["x"][_subset(len(train_data["x"]), size, seed + 1)])
    return {"heldout": heldout[heldout_rows], "train": train}, heldout_rows


def generate_samples(
    flow: nn.Module, decoder: nn.Module, latent_stats: dict[str, Tensor], metadata: dict[str, Any], params: dict[str, Any]
) -> tuple[Tensor, dict[str, Any]]:
    """N generated examples (comparison_size), or more for the figures: integrate the flow ODE from N(0, I) and decode."""
    sampling = params["sampling"]
    size = comparison_size(metadata["num_heldout"], metadata["num_train"], params["max_points"])
    count = max(size, params.get("num_figure_samples", 64))
    device = resolve_device(params["device"])
    start = time.perf_counter()
    images, nfe = sample_images(
        flow.to(device),
        decoder.to(device),
        latent_stats["mean"],
        latent_stats["scale"],
        count,
        batch_size=params["batch_size"],
        solver=sampling["solver"],
        steps=sampling["steps"],
        rtol=sampling.get("rtol", 1e-5),
        atol=sampling.get("atol", 1e-5),
        generator=torch.Generator().manual_seed(sampling.get("seed", 0)),
    )
    info = {
        "solver": sampling["solver"],
        "steps": sampling["steps"],
        "nfe": nfe,
        "num_samples": count,
        "seconds": time.perf_counter() - start,
    }
    return images, info


def distance_features(
    feature_classifier: nn.Module, params: dict[str, Any], images: bool
) -> tuple[dict[str, Callable[[Tensor], Tensor]], str]:
    """The features the distances are computed on, by name, and fid_status (a log line says why FID is skipped).

    pixel always; classifier with a trained classifier (not NoModel); inception for images when evaluate.fid is on
    and the weights file is on disk. images: whether the data are images (N, C, H, W) rather than vectors.
    """
    features: dict[str, Callable[[Tensor], Tensor]] = {"pixel": lambda x: x.reshape(len(x), -1)}
    if not isinstance(feature_classifier, NoModel):
        features["classifier"] = feature_classifier.eval().features
    if not params.get("fid", True):
        return features, "disabled by evaluate.fid"
    if not images:
        return features, "skipped: FID needs images, this dataset holds vectors"
    if not inception_available():
        weights = inception_weights_path()
        logger.warning(
            "evaluate: FID skipped: the Inception weights %s are not in %s (put the file there to enable FID)",
            weights.name,
            weights.parent,
        )
        return features, f"skipped: {weights.name} not in {weights.parent}"
    return features | {"inception": inception_extractor()}, "computed"


def inception_extractor(batch_size: int = 200, device: str = "auto") -> Callable[[Tensor], Tensor]:
    """pytorch-fid's Inception pool3 features, as core.metrics.inception_features gives them, with the network built
    (and its weights file read) once, on the first set, and kept for every later set: (N, C, H, W) -> (N, 2048)."""
    network: nn.Module | None = None

    def extract(images: Tensor) -> Tensor:
        nonlocal network
        if network is None:
            network = inception_network(device)
        return inception_features(images, batch_size, network=network)

    return extract


def extract_features(
    sets: dict[str, Tensor], features: dict[str, Callable[[Tensor], Tensor]], params: dict[str, Any]
) -> dict[str, dict[str, Tensor]]:
    """Each set's features of each kind, extracted once: {name: {label: (N, F) on evaluate's device}}.

    sets: labelled sets (N rows each, model scale); images are first rounded to the 8-bit levels a PNG holds (real
    images from uint8 files are unchanged). features: distance_features' extractors by name.
    """
    sets = {label: round_to_8bit(images) if images.ndim == 4 else images for label, images in sets.items()}
    device = resolve_device(params["device"])
    with torch.no_grad():
        return {name: {label: extract(images).to(device) for label, images in sets.items()} for name, extract in features.items()}


def distances_from_features(
    name: str, extracted: dict[str, Tensor], params: dict[str, Any], comparisons: dict[str, tuple[str, str]]
) -> dict[str, float]:
    """The Frechet distance (with its bootstrap interval) and kernel distance of each comparison, on one kind of features.

    name: `pixel`, `classifier` or `inception`; extracted: label -> that kind's features (N, F) of the set. Keys:
    fd_<name>_<pair> (fid_<pair> for Inception), its _ci_low and _ci_high, and kd_<name>_<pair> (kid_<pair>) with its
    _std, for each pair of `comparisons` (COMPARISONS: floor, gen, recon).
    """
    frechet_key, kernel_key = ("fid", "kid") if name == "inception" else (f"fd_{name}", f"kd_{name}")
    bootstrap, kid = params["bootstrap"], params["kid"]
    width = next(iter(extracted.values())).shape[1]
    wide = width > bootstrap["max_features"]
    if wide:
        logger.info(
            "evaluate: no bootstrap interval for %s: %d features > evaluate.bootstrap.max_features = %d",
            frechet_key,
            width,
            bootstrap["max_features"],
        )
    seed = params.get("seed", 0)
    results: dict[str, float] = {}
    for pair, (first, second) in comparisons.items():
        a, b = extracted[first], extracted[second]
        if wide:
            results[f"{frechet_key}_{pair}"] = frechet_distance(a, b)
        else:
            estimate, low, high = bootstrap_interval(
                frechet_distance, a, b, bootstrap["resamples"], bootstrap["confidence"], seed=seed
            )
            # A Frechet distance is never negative, even where the centred interval reaches below 0.
            results |= {f"{frechet_key}_{pair}": estimate, f"{frechet_key}_{pair}_ci_low": max(low, 0.0)}
            results[f"{frechet_key}_{pair}_ci_high"] = high
        mean, std = kernel_distance(a, b, kid["subset_size"], kid["subsets"], seed=seed)
        results |= {f"{kernel_key}_{pair}": mean, f"{kernel_key}_{pair}_std": std}
    return results


def distribution_distances(
    sets: dict[str, Tensor],
    features: dict[str, Callable[[Tensor], Tensor]],
    params: dict[str, Any],
    comparisons: dict[str, tuple[str, str]] = COMPARISONS,
    extracted: dict[str, dict[str, Tensor]] | None = None,
) -> dict[str, float]:
    """The Frechet and kernel distances of each comparison on each kind of features (distance_features).

    sets: the labelled sets the comparisons name (N rows each, model scale), e.g. heldout, train, gen, recon.
    extracted: sets whose features are already extracted (extract_features), e.g. the held-out set every snapshot
    of E6 is compared with. Keys as in distances_from_features.
    """
    fresh = extract_features(sets, features, params)
    distances: dict[str, float] = {}
    for name in features:
        distances.update(distances_from_features(name, {**(extracted or {}).get(name, {}), **fresh[name]}, params, comparisons))
    return distances
