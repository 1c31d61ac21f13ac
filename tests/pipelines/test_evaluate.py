"""The evaluate node's comparison design: which sets each distance compares, at which size, rounded how."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from gpe_pipeline.core import metrics as core_metrics
from gpe_pipeline.core.data import uint8_to_unit_range
from gpe_pipeline.core.metrics import frechet_distance, inception_features
from gpe_pipeline.core.models import NoModel
from gpe_pipeline.evaluation import (
    comparison_size,
    distance_features,
    distribution_distances,
    inception_extractor,
    real_comparison_sets,
)
from gpe_pipeline.pipelines.evaluate.nodes import compute_metrics

BASE = Path(__file__).parents[2] / "conf" / "base" / "parameters_evaluate.yml"


def evaluate_params(**changes) -> dict:
    params = yaml.safe_load(BASE.read_text())["evaluate"]
    params |= {"device": "cpu", "distortion_points": 10, "kid": {"subset_size": 100, "subsets": 5}}
    params["bootstrap"] = {**params["bootstrap"], "resamples": 10}
    return params | changes


def uint8_digits(count: int, seed: int) -> torch.Tensor:
    return torch.randint(256, (count, 1, 4, 4), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def run_compute_metrics(train: torch.Tensor, heldout: torch.Tensor, generated, reconstructions, params) -> dict:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        latents = encoder(uint8_to_unit_range(heldout))
    info = {"nfe": 4, "seconds": 0.1}
    return compute_metrics(encoder, {"x": train}, {"x": heldout}, latents, reconstructions, generated, info, NoModel(), params)


def test_comparison_size_is_the_smallest_of_the_limit_and_both_splits():
    assert comparison_size(10_000, 60_000, 10_000) == 10_000  # MNIST's test set against as many train images
    assert comparison_size(180, 1617, 1000) == 180
    assert comparison_size(180, 1617, 50) == 50
    with pytest.raises(ValueError, match="at least 2 held-out and 2 train examples"):
        comparison_size(1, 100, 1000)


def test_each_distance_is_its_floor_with_one_set_replaced_by_model_output():
    train, heldout = uint8_digits(60, 0), uint8_digits(30, 1)
    real = uint8_to_unit_range(heldout)
    # Generation that reproduces the held-out images to within a quarter of an 8-bit level, and reconstructions that
    # are exact: rounded to 8-bit levels like every image set, the first is the held-out set itself.
    generated = (real + 0.25 / 127.5).clamp(-1, 1)
    metrics = run_compute_metrics(train, heldout, generated, real.clone(), evaluate_params())
    assert metrics["frechet_points"] == 30  # every held-out image, and as many train and generated ones
    assert metrics["fd_pixel_gen"] == pytest.approx(0.0, abs=1e-9)  # G = H after rounding
    assert metrics["fd_pixel_recon"] == pytest.approx(metrics["fd_pixel_floor"], rel=1e-12)  # S(T H) = H against R
    assert metrics["kd_pixel_recon"] == pytest.approx(metrics["kd_pixel_floor"], rel=1e-12)
    assert metrics["fd_pixel_floor"] > 1.0
    for pair in ("floor", "gen", "recon"):
        key = f"fd_pixel_{pair}"
        assert metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"]
        assert metrics[f"kd_pixel_{pair}_std"] == 0  # 30 points against subsets of 100: every subset is the whole set


def test_the_floor_compares_a_seeded_train_subset_with_the_held_out_images():
    train, heldout = uint8_digits(60, 2), uint8_digits(30, 3)
    real = uint8_to_unit_range(heldout)
    params = evaluate_params(max_points=12, geometry_points=20)
    metrics = run_compute_metrics(train, heldout, real, real, params)
    assert metrics["frechet_points"] == 12 and metrics["geometry_points"] == 20
    train_rows = torch.randperm(60, generator=torch.Generator().manual_seed(1))[:12]  # evaluate.seed + 1
    heldout_rows = torch.randperm(30, generator=torch.Generator().manual_seed(0))[:12]  # evaluate.seed
    floor = frechet_distance(uint8_to_unit_range(train[train_rows]).flatten(1), real[heldout_rows].flatten(1))
    assert metrics["fd_pixel_floor"] == pytest.approx(floor, rel=1e-10)
    assert run_compute_metrics(train, heldout, real, real, params) == metrics  # seeded: the same numbers again


def test_features_wider_than_max_features_get_no_interval():
    train, heldout = uint8_digits(20, 4), uint8_digits(10, 5)
    real = uint8_to_unit_range(heldout)
    params = evaluate_params()
    params["bootstrap"] = {**params["bootstrap"], "max_features": 8}  # 16 pixels
    metrics = run_compute_metrics(train, heldout, real, real, params)
    assert "fd_pixel_gen" in metrics and "kd_pixel_gen" in metrics
    assert not [key for key in metrics if "_ci_" in key]


def test_chosen_comparisons_give_evaluates_numbers_and_fid_is_skipped_with_a_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no Inception weights there
    train, heldout = uint8_digits(60, 6), uint8_digits(30, 7)
    generated = torch.rand(30, 1, 4, 4, generator=torch.Generator().manual_seed(8)) * 2 - 1
    params = evaluate_params(max_points=20)
    metrics = run_compute_metrics(train, heldout, generated, uint8_to_unit_range(heldout), params)
    real, rows = real_comparison_sets({"x": train}, uint8_to_unit_range(heldout), params)
    assert len(rows) == 20 and set(real) == {"heldout", "train"}
    caplog.clear()
    features, status = distance_features(NoModel(), params, images=True)
    assert status.startswith("skipped: pt_inception") and set(features) == {"pixel"}
    assert "evaluate: FID skipped: the Inception weights" in caplog.text
    sample = {**real, "sample": generated[:20]}
    distances = distribution_distances(sample, features, params, {"sample": ("sample", "heldout")})
    assert distances == {key.replace("_gen", "_sample"): value for key, value in metrics.items() if "pixel_gen" in key}
    assert distance_features(NoModel(), params, images=False)[1] == "skipped: FID needs images, this dataset holds vectors"
    assert distance_features(NoModel(), params | {"fid": False}, images=True)[1] == "disabled by evaluate.fid"


def test_the_inception_extractor_builds_the_network_once_and_gives_core_inception_features(tmp_path, monkeypatch):
    # No real weights here: an empty file passes core's existence check and pytorch-fid's loading is stubbed, so the
    # network keeps its (seeded) random initialisation; the same seed gives core's function the same network.
    import pytorch_fid.inception
    import torchvision

    # The weights file core checks for: patched, not TORCH_HOME, which an earlier torch.hub.set_dir makes torch ignore
    # (an empty file in the real hub folder would break every later run that looks for FID weights).
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    weights.touch()
    monkeypatch.setattr(core_metrics, "inception_weights_path", lambda: weights)
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", lambda url, **kwargs: {})
    monkeypatch.setattr(torchvision.models.Inception3, "load_state_dict", lambda self, state_dict, *args, **kwargs: None)
    builds, build = [], pytorch_fid.inception.fid_inception_v3  # InceptionV3 builds its network with it

    def counted_build():
        builds.append(1)
        return build()

    monkeypatch.setattr(pytorch_fid.inception, "fid_inception_v3", counted_build)
    first, second = (torch.rand(count, 1, 8, 8, generator=torch.Generator().manual_seed(count)) * 2 - 1 for count in (2, 3))
    torch.manual_seed(0)
    extract = inception_extractor(batch_size=2, device="cpu")
    features = [extract(first), extract(second)]
    assert len(builds) == 1, "one network for every set"
    builds.clear()
    for images, extracted in zip((first, second), features, strict=True):
        torch.manual_seed(0)
        expected = inception_features(images, batch_size=2, device="cpu")
        assert extracted.dtype == torch.float64 and torch.equal(extracted, expected)
    assert len(builds) == 2, "core's inception_features builds its network on every call"
