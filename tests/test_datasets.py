"""The catalog's torch dataset types: models rebuilt from their saved spec, tensors, safe loading."""

import pickle
from pathlib import Path

import pytest
import torch
from kedro.io import DatasetError, Version

from gpe_pipeline.core.errors import UserError
from gpe_pipeline.core.models import build_model
from gpe_pipeline.datasets import TorchModelDataset, TorchTensorDataset
from gpe_pipeline.datasets.torch_datasets import UnreadableCatalogFileError


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


def damaged_copies(good: bytes) -> dict[str, bytes]:
    noise = torch.randint(0, 256, (len(good),), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return {"truncated": good[: len(good) // 2], "random bytes": bytes(noise.tolist()), "empty": b""}


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty"])
def test_an_unreadable_model_file_fails_in_one_line_naming_it_and_its_pipeline(tmp_path, damage):
    path = tmp_path / "decoder.pt"
    dataset = TorchModelDataset(filepath=str(path), rebuilt_by="train_decoder")
    dataset.save(build_model("decoder", "mlp", data_shape=[4], latent_dim=2, hidden=[8]))
    path.write_bytes(damaged_copies(path.read_bytes())[damage])
    with pytest.raises(UnreadableCatalogFileError) as info:
        dataset.load()
    message = str(info.value)
    assert message == (
        f"{path} cannot be read (truncated or not a model file): re-run `kedro run --pipeline=train_decoder` to rebuild it"
    )
    assert isinstance(info.value, UserError) and isinstance(info.value, DatasetError)
    assert "weights_only" not in message


@pytest.mark.parametrize("mmap", [False, True])
def test_an_unreadable_tensor_file_names_it(tmp_path, mmap):
    path = tmp_path / "latents.pt"
    TorchTensorDataset(filepath=str(path)).save(torch.randn(30, 4))
    path.write_bytes(damaged_copies(path.read_bytes())["truncated"])
    with pytest.raises(
        UnreadableCatalogFileError, match=r"latents.pt cannot be read \(truncated or not a tensor file\): re-run the"
    ):
        TorchTensorDataset(filepath=str(path), load_args={"mmap": mmap}).load()


def test_a_readable_file_that_is_not_a_model_is_refused_the_same_way(tmp_path):
    path = tmp_path / "encoder.pt"
    TorchTensorDataset(filepath=str(path)).save({"x": torch.zeros(3)})
    with pytest.raises(UnreadableCatalogFileError, match="not a model file"):
        TorchModelDataset(filepath=str(path), rebuilt_by="train_encoder").load()


def test_the_catalog_names_the_pipeline_that_rebuilds_each_file(tmp_path, monkeypatch):
    """Through the real catalog (kedro-mlflow's wrapper included): the message names the file as the catalog does."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    conf = Path(__file__).parents[1] / "conf"
    catalog = DataCatalog.from_config(OmegaConfigLoader(str(conf), base_env="base", default_run_env="base")["catalog"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "06_models").mkdir(parents=True)
    (tmp_path / "data" / "06_models" / "encoder.pt").write_bytes(b"not a model at all")
    with pytest.raises(DatasetError) as info:
        catalog.load("encoder")
    # Kedro's catalog wraps the error in a DatasetError "encoder: ..." whose __cause__ is ours
    error = info.value
    while error is not None and not isinstance(error, UserError):
        error = error.__cause__ or error.__context__
    assert str(error) == (
        "data/06_models/encoder.pt cannot be read (truncated or not a model file): "
        "re-run `kedro run --pipeline=train_encoder` to rebuild it"
    )
    expected = {
        "train_data": "ingest",
        "validation_latents": "cache_latents",
        "flow": "train_flow",
        "feature_classifier": "evaluate",
    }
    for name, pipeline in expected.items():
        assert f"--pipeline={pipeline}`" in str(_unreadable_error(catalog, name)), name


def _unreadable_error(catalog, name):
    dataset = catalog.get(name)
    inner = getattr(dataset, "_dataset", dataset)  # kedro-mlflow's MlflowArtifactDataset wraps the model entries
    return inner.unreadable("somewhere.pt")
