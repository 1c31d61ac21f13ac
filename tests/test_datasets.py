"""The catalog's torch dataset types: models rebuilt from their saved spec, tensors, safe loading."""

import pickle
from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError, Version

from gpe_pipeline.core.models import build_model
from gpe_pipeline.datasets import TorchModelDataset, TorchTensorDataset


def test_model_round_trip_rebuilds_architecture_and_weights(tmp_path):
    model = build_model("decoder", "conv32", data_shape=[1, 32, 32], latent_dim=6, width=4).eval()
    dataset = TorchModelDataset(filepath=str(tmp_path / "models" / "decoder.pt"))
    assert not dataset.exists()
    dataset.save(model)
    assert dataset.exists()
    loaded = dataset.load()
    assert type(loaded) is type(model) and not loaded.training
    z = torch.randn(2, 6)
    assert torch.equal(loaded(z), model(z))
    assert loaded.build_spec == model.build_spec


def test_model_without_build_spec_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="build_model"):
        TorchModelDataset(filepath=str(tmp_path / "m.pt")).save(torch.nn.Linear(2, 2))


def test_tensor_dict_with_missing_labels_round_trips(tmp_path):
    split = {"x": torch.randn(5, 1, 8, 8), "labels": None}
    dataset = TorchTensorDataset(filepath=str(tmp_path / "split.pt"))
    dataset.save(split)
    loaded = dataset.load()
    assert torch.equal(loaded["x"], split["x"]) and loaded["labels"] is None


class NotATensor:
    pass


def test_loading_refuses_arbitrary_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": NotATensor()}, path)
    with pytest.raises((DatasetError, pickle.UnpicklingError)):
        TorchTensorDataset(filepath=str(path)).load()


def test_versioned_saves_keep_earlier_versions(tmp_path):
    path = str(tmp_path / "latents.pt")
    TorchTensorDataset(filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")).save(torch.zeros(2))
    TorchTensorDataset(filepath=path, version=Version(None, "2026-01-02T00.00.00.000Z")).save(torch.ones(2))
    assert torch.equal(TorchTensorDataset(filepath=path, version=Version(None, None)).load(), torch.ones(2))
    assert torch.equal(
        TorchTensorDataset(filepath=path, version=Version("2026-01-01T00.00.00.000Z", None)).load(), torch.zeros(2)
    )


def test_mmap_load_maps_the_file_instead_of_reading_it(tmp_path):
    images = torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8)
    path = tmp_path / "train_data.pt"
    TorchTensorDataset(filepath=str(path)).save({"x": images, "labels": None})
    loaded = TorchTensorDataset(filepath=str(path), load_args={"mmap": True}).load()
    assert torch.equal(loaded["x"], images) and loaded["labels"] is None
    maps = Path("/proc/self/maps")
    if maps.exists():  # Linux: the file itself is mapped into this process
        assert str(path) in maps.read_text()


@pytest.mark.parametrize(
    ("filepath", "load_args", "message"),
    [
        ("data.pt", {"mmap": True, "map_location": "cuda"}, "unknown load_args"),
        ("memory://data.pt", {"mmap": True}, "needs a local file"),
    ],
)
def test_bad_load_args_are_refused_when_the_catalog_is_built(tmp_path, filepath, load_args, message):
    path = filepath if "://" in filepath else str(tmp_path / filepath)
    with pytest.raises(DatasetError, match=message):
        TorchTensorDataset(filepath=path, load_args=load_args)
