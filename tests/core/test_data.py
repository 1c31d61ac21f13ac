"""Tests of the dataset readers on small files written in each dataset's real on-disk format."""

from __future__ import annotations

import gzip
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets
from PIL import Image

from gpe_pipeline.core.data import (
    DATASETS,
    SETTINGS_READ_BY,
    DatasetFilesError,
    DatasetSettings,
    data_shape,
    load_dataset,
    read_idx,
)

MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# --- writers of the on-disk formats ---------------------------------------------------------------


def assert_load_fails_naming(named: Path, /, *args, match: str | None = None, **kwargs) -> DatasetFilesError:
    """load_dataset(DatasetSettings(*args, **kwargs)) raises DatasetFilesError naming the file or folder `named`."""
    with pytest.raises(DatasetFilesError, match=match) as info:
        load_dataset(DatasetSettings(*args, **kwargs))
    assert str(named) in str(info.value)
    return info.value


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """An unsigned-byte IDX file: magic 0x00 0x00 0x08 ndim, big-endian uint32 dims, then the bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def mnist_images(n: int, offset: int) -> np.ndarray:
    """n 28x28 images: pixel (0, 0) is 0, pixel (0, 1) is 255, pixel (5, 5) tells the image apart."""
    images = np.full((n, 28, 28), 100, dtype=np.uint8)
    images[:, 0, 0] = 0
    images[:, 0, 1] = 255
    images[:, 5, 5] = np.arange(offset, offset + n) * 10
    return images


def write_mnist(root: Path, n_train: int = 6, n_test: int = 4, gz: bool = False) -> dict[str, np.ndarray]:
    arrays = {
        "train-images-idx3-ubyte": mnist_images(n_train, 0),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": mnist_images(n_test, n_train),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) + 3) % 10,
    }
    for stem, array in arrays.items():
        write_idx(root / "MNIST" / "raw" / stem, array, gz=gz)
    return arrays


def write_cifar10(root: Path, per_batch: int = 2, n_test: int = 3) -> None:
    """Five train batches and a test batch as python pickles of {b"data": (N, 3072) uint8, b"labels": [int]}.

    Train image j of batch k (k = 1..5) has label k - 1 and red pixel (3, 5) = 10 * k + j; its green
    pixel (7, 1) is 200 and blue pixel (10, 20) is 255, everything else 0. Test images have label 9 and
    red pixel (3, 5) = 250 - j.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(n: int, red_values: list[int], label: int) -> dict[bytes, object]:
        data = np.zeros((n, 3072), dtype=np.uint8)
        data[:, 0 * 1024 + 3 * 32 + 5] = red_values
        data[:, 1 * 1024 + 7 * 32 + 1] = 200
        data[:, 2 * 1024 + 10 * 32 + 20] = 255
        return {b"batch_label": b"batch", b"data": data, b"labels": [label] * n}

    for k in range(1, 6):
        content = batch(per_batch, [10 * k + j for j in range(per_batch)], k - 1)
        (folder / f"data_batch_{k}").write_bytes(pickle.dumps(content, protocol=2))
    test = batch(n_test, [250 - j for j in range(n_test)], 9)
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=pickle.HIGHEST_PROTOCOL))


def write_image(path: Path, array: np.ndarray, **save_options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path, **save_options)
    return path


def solid(value, size=(10, 12), channels: int = 3) -> np.ndarray:
    """A constant image (height, width[, 3]) of one grey level or one RGB colour."""
    shape = (*size, channels) if channels == 3 else size
    return np.broadcast_to(np.asarray(value, dtype=np.uint8), shape).copy()


def write_celeba(root: Path) -> list[int]:
    """10 aligned JPEGs 30 wide x 46 tall with partitions 0 x5, 1 x2, 2 x3; returns the partitions.

    The top and bottom 8 rows are red, the middle 30 x 30 square blue with green 6 * i in image i (1..10),
    which tells the images apart: the center crop keeps only the square.
    """
    base = root / "celeba"
    partitions = [0, 0, 0, 0, 0, 1, 1, 2, 2, 2]
    lines = []
    for i, part in enumerate(partitions, start=1):
        image = solid((0, 6 * i, 255), size=(46, 30))
        image[:8] = (255, 0, 0)
        image[38:] = (255, 0, 0)
        name = f"{i:06d}.jpg"
        write_image(base / "img_align_celeba" / name, image, quality=100, subsampling=0)
        lines.append(f"{name} {part}")
    (base / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return partitions


def forbid_downloads(monkeypatch) -> None:
    """Make any call to torchvision's dataset downloaders fail the test."""

    def no_download(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args} {kwargs}")

    for name in ("MNIST", "CIFAR10", "CelebA"):
        monkeypatch.setattr(torchvision.datasets, name, no_download)


def check_splits(splits, shape: list[int], num_train: int, num_validation: int, num_heldout: int) -> None:
    assert tuple(splits.train.shape) == (num_train, *shape)
    assert tuple(splits.validation.shape) == (num_validation, *shape)
    assert tuple(splits.heldout.shape) == (num_heldout, *shape)
    assert splits.train.dtype == splits.validation.dtype == splits.heldout.dtype == torch.float32
    assert splits.metadata["shape"] == shape
    assert splits.metadata["dim"] == int(np.prod(shape))
    assert splits.metadata["num_train"] == num_train
    assert splits.metadata["num_validation"] == num_validation
    assert splits.metadata["num_heldout"] == num_heldout
    assert splits.metadata["is_image"] is (len(shape) == 3)
    for part in (splits.train, splits.validation, splits.heldout):
        assert part.min() >= -1 and part.max() <= 1


def every_row(splits) -> torch.Tensor:
    """The three splits' rows together."""
    return torch.cat([splits.train, splits.validation, splits.heldout])


# --- MNIST ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_mnist_reads_idx_files(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    splits = load_dataset(DatasetSettings("mnist", root=tmp_path))

    # 10% of the 6 training images (rounded, at least 1) become the validation split
    check_splits(splits, [1, 28, 28], num_train=5, num_validation=1, num_heldout=4)
    assert data_shape("mnist") == [1, 28, 28]
    # 0 -> -1, 255 -> 1, v -> v / 127.5 - 1
    assert torch.all(splits.train[:, 0, 0, 0] == -1) and torch.all(splits.heldout[:, 0, 0, 0] == -1)
    assert torch.all(splits.train[:, 0, 0, 1] == 1) and torch.all(splits.heldout[:, 0, 0, 1] == 1)
    expected_train = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float().unsqueeze(1) / 127.5 - 1
    expected_test = torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float().unsqueeze(1) / 127.5 - 1
    # train label k belongs to train image k: train and validation are the six train images, each once, in order
    rows = torch.cat([splits.train_labels, splits.validation_labels])
    assert sorted(rows.tolist()) == [0, 1, 2, 3, 4, 5] and splits.train_labels.tolist() == sorted(splits.train_labels.tolist())
    torch.testing.assert_close(torch.cat([splits.train, splits.validation]), expected_train[rows])
    torch.testing.assert_close(splits.heldout, expected_test)  # the official test split is held out
    assert splits.heldout_labels.tolist() == [3, 4, 5, 6]
    assert splits.train_labels.dtype == torch.long
    assert splits.metadata["num_classes"] == 7
    assert splits.metadata["value_range"] == [-1.0, 1.0]


def test_mnist_resizes_to_image_size(tmp_path):
    write_mnist(tmp_path)
    splits = load_dataset(DatasetSettings("mnist", root=tmp_path, image_size=32))
    check_splits(splits, [1, 32, 32], num_train=5, num_validation=1, num_heldout=4)
    assert data_shape("mnist", image_size=32) == [1, 32, 32]
    # the constant background (100) stays 100 / 127.5 - 1 away from the marked pixels
    torch.testing.assert_close(splits.train[:, 0, 20, 20], torch.full((5,), 100 / 127.5 - 1))


def test_read_idx_shapes(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert read_idx(write_idx(tmp_path / "x-idx3-ubyte", images)).tolist() == images.tolist()
    labels = np.array([9, 0, 4])
    loaded = read_idx(write_idx(tmp_path / "y-idx1-ubyte", labels, gz=True))
    assert loaded.dtype == torch.uint8 and loaded.tolist() == [9, 0, 4]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_mnist_truncated_idx_file_names_the_file(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    stem = "t10k-images-idx3-ubyte"
    path = tmp_path / "MNIST" / "raw" / (stem + (".gz" if gz else ""))
    raw = path.read_bytes()
    if gz:  # a gzip stream cut short, as an interrupted download leaves it
        path.write_bytes(raw[: len(raw) // 2])
    else:
        path.write_bytes(raw[:-100])
    assert_load_fails_naming(path, "mnist", root=tmp_path, match=stem)


def test_mnist_truncated_header_gz_content(tmp_path):
    """A complete .gz whose IDX content is short is reported as truncated, naming the file."""
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    content = path.read_bytes()[:-2]
    path.unlink()
    (gz_path := path.with_name(path.name + ".gz")).write_bytes(gzip.compress(content))
    assert_load_fails_naming(gz_path, "mnist", root=tmp_path, match="truncated")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_mnist_bad_magic_names_the_file(tmp_path, gz):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw = bytearray(path.read_bytes())
    raw[2] = 0x0D  # float32 type code: not an unsigned-byte IDX file
    path.unlink()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(bytes(raw)))
    else:
        path.write_bytes(bytes(raw))
    assert_load_fails_naming(path, "mnist", root=tmp_path, match="magic")


def test_mnist_not_gzip_despite_suffix(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    path.unlink()
    (bad := path.with_name(path.name + ".gz")).write_bytes(b"this is not gzip data")
    assert_load_fails_naming(bad, "mnist", root=tmp_path)


def test_mnist_one_missing_file_is_named(tmp_path, monkeypatch):
    forbid_downloads(monkeypatch)
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    assert_load_fails_naming(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", "mnist", root=tmp_path)


def test_mnist_download_only_when_files_missing(tmp_path, monkeypatch):
    calls = []

    class FakeMNIST:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            write_mnist(Path(root), gz=True)

    # files present: download=True reads them without calling the downloader
    write_mnist(tmp_path / "present")
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    load_dataset(DatasetSettings("mnist", root=tmp_path / "present", download=True))
    assert calls == []
    # files missing: download=True asks torchvision for them under root
    splits = load_dataset(DatasetSettings("mnist", root=tmp_path / "absent", download=True))
    assert calls == [(str(tmp_path / "absent"), True, True)]
    check_splits(splits, [1, 28, 28], num_train=5, num_validation=1, num_heldout=4)


# --- CIFAR-10 -------------------------------------------------------------------------------------


def test_cifar10_reads_python_pickles(tmp_path):
    write_cifar10(tmp_path)
    splits = load_dataset(DatasetSettings("cifar10", root=tmp_path))

    check_splits(splits, [3, 32, 32], num_train=9, num_validation=1, num_heldout=3)
    assert data_shape("cifar10") == [3, 32, 32]
    # batches concatenated in order 1..5 (train and validation share them); channel-major bytes: red, green, blue planes
    training = torch.cat([splits.train, splits.validation])
    red = (training[:, 0, 3, 5] + 1) * 127.5
    order = red.argsort()
    torch.testing.assert_close(red[order], torch.tensor([10.0, 11, 20, 21, 30, 31, 40, 41, 50, 51]))
    torch.testing.assert_close(training[:, 1, 7, 1], torch.full((10,), 200 / 127.5 - 1))
    assert torch.all(training[:, 2, 10, 20] == 1)
    # the same positions in the other channels are 0 -> -1
    assert torch.all(training[:, 1:, 3, 5] == -1)
    assert torch.all(training[:, [0, 2], 7, 1] == -1)
    assert torch.all(training[:, :2, 10, 20] == -1)
    assert int((training > -1).sum()) == 10 * 3  # nothing else is lit
    labels = torch.cat([splits.train_labels, splits.validation_labels])
    assert labels[order].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # the official test batch is the held-out split
    torch.testing.assert_close((splits.heldout[:, 0, 3, 5] + 1) * 127.5, torch.tensor([250.0, 249, 248]))
    assert splits.heldout_labels.tolist() == [9, 9, 9]
    assert splits.metadata["num_classes"] == 10


def test_cifar10_resizes_to_image_size(tmp_path):
    write_cifar10(tmp_path)
    splits = load_dataset(DatasetSettings("cifar10", root=tmp_path, image_size=16))
    check_splits(splits, [3, 16, 16], num_train=9, num_validation=1, num_heldout=3)
    assert data_shape("cifar10", image_size=16) == [3, 16, 16]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda good: good[: len(good) // 2], id="truncated"),
        pytest.param(lambda good: pickle.dumps({"data": b"", "labels": []}, protocol=2), id="str-keys"),
        pytest.param(lambda good: pickle.dumps([1, 2, 3], protocol=2), id="not-a-dict"),
        pytest.param(
            lambda good: pickle.dumps({b"data": np.zeros((2, 1000), np.uint8), b"labels": [0, 1]}, protocol=2), id="bad-size"
        ),
        pytest.param(lambda good: bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)), id="garbage"),
    ],
)
def test_cifar10_unreadable_batch_names_the_file(tmp_path, content):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(content(path.read_bytes()))
    assert_load_fails_naming(path, "cifar10", root=tmp_path)


def test_cifar10_missing_test_batch_is_named(tmp_path, monkeypatch):
    forbid_downloads(monkeypatch)
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    assert_load_fails_naming(tmp_path / "cifar-10-batches-py" / "test_batch", "cifar10", root=tmp_path)


# --- image folders --------------------------------------------------------------------------------


def test_image_folder_flat_has_no_labels(tmp_path):
    folder = tmp_path / "flat"
    for i in range(3):
        write_image(folder / f"img{i}.png", solid((255, 0, 0)))
    for i in range(2):
        write_image(folder / f"photo{i}.jpg", solid((0, 0, 255)), quality=95)
    write_image(folder / "PHOTO.JPEG", solid((0, 0, 255)), quality=95)
    (folder / "notes.txt").write_text("not an image")

    splits = load_dataset(DatasetSettings("image_folder", path=folder, image_size=8, heldout_fraction=1 / 3))
    check_splits(splits, [3, 8, 8], num_train=3, num_validation=1, num_heldout=2)
    assert data_shape("image_folder", image_size=8) == [3, 8, 8]
    assert splits.train_labels is None and splits.validation_labels is None and splits.heldout_labels is None
    assert splits.metadata["num_classes"] == 0
    everything = every_row(splits)
    # three pure-red PNGs (lossless) and three blue JPEGs, whichever split they landed in
    red = everything[:, 0].mean(dim=(1, 2)) > 0
    assert int(red.sum()) == 3
    torch.testing.assert_close(everything[red][:, 0], torch.ones(3, 8, 8))
    torch.testing.assert_close(everything[red][:, 1:], -torch.ones(3, 2, 8, 8))
    assert torch.all(everything[~red][:, 2] > 0.9) and torch.all(everything[~red][:, 0] < -0.9)


def test_image_folder_default_size(tmp_path):
    folder = tmp_path / "flat"
    for i in range(4):
        write_image(folder / f"{i}.png", solid(i * 60, size=(20, 30), channels=1))
    splits = load_dataset(DatasetSettings("image_folder", path=folder, heldout_fraction=0.25))
    check_splits(splits, data_shape("image_folder"), num_train=2, num_validation=1, num_heldout=1)
    assert data_shape("image_folder") == [3, 64, 64]


def test_image_folder_class_subfolders_give_sorted_labels(tmp_path):
    folder = tmp_path / "classes"
    # written out of order: labels follow the sorted folder names (apple 0, banana 1, cherry 2)
    grey = {"cherry": 0, "apple": 255, "banana": 128}
    for name, value in grey.items():
        for i in range(3):
            suffix = ".jpg" if name == "banana" and i == 2 else ".png"
            write_image(folder / name / f"{i}{suffix}", solid(value, size=(6, 6), channels=1))
    (folder / "empty_class").mkdir()  # a folder without images is no class

    splits = load_dataset(DatasetSettings("image_folder", path=folder, image_size=6, channels=1, heldout_fraction=1 / 3, seed=3))
    check_splits(splits, [1, 6, 6], num_train=5, num_validation=1, num_heldout=3)
    assert data_shape("image_folder", image_size=6, channels=1) == [1, 6, 6]
    assert splits.metadata["num_classes"] == 3
    images = every_row(splits)
    labels = torch.cat([splits.train_labels, splits.validation_labels, splits.heldout_labels])
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    expected = {0: 255 / 127.5 - 1, 1: 128 / 127.5 - 1, 2: -1.0}
    for image, label in zip(images, labels.tolist(), strict=True):
        torch.testing.assert_close(image, torch.full((1, 6, 6), expected[label]), atol=0.02, rtol=0)


def test_image_folder_grey_and_rgb_conversion(tmp_path):
    folder = tmp_path / "mixed"
    for i in range(2):
        write_image(folder / f"grey{i}.png", solid(200, size=(7, 7), channels=1))
        write_image(folder / f"rgb{i}.png", solid((30, 60, 90), size=(7, 7)))

    rgb = load_dataset(DatasetSettings("image_folder", path=folder, image_size=7, channels=3, heldout_fraction=0.25))
    check_splits(rgb, [3, 7, 7], num_train=2, num_validation=1, num_heldout=1)
    everything = every_row(rgb)
    values = sorted(tuple(round(float(v), 4) for v in ((img[:, 3, 3] + 1) * 127.5)) for img in everything)
    assert values == [(30.0, 60.0, 90.0)] * 2 + [(200.0, 200.0, 200.0)] * 2  # grey is copied to all three channels

    grey = load_dataset(DatasetSettings("image_folder", path=folder, image_size=7, channels=1, heldout_fraction=0.25))
    check_splits(grey, [1, 7, 7], num_train=2, num_validation=1, num_heldout=1)
    luma = sorted(round(float((img[0, 3, 3] + 1) * 127.5)) for img in every_row(grey))
    # PIL's ITU-R 601-2 luma of (30, 60, 90): 30 * 0.299 + 60 * 0.587 + 90 * 0.114 = 54.3
    assert luma == [54, 54, 200, 200]


def test_image_folder_resizes_to_image_size(tmp_path):
    folder = tmp_path / "sizes"
    for i, size in enumerate([(5, 9), (40, 30), (16, 16), (12, 12)]):
        write_image(folder / f"{i}.png", solid((255, 255, 255), size=size))
    splits = load_dataset(DatasetSettings("image_folder", path=folder, image_size=12, heldout_fraction=0.25))
    check_splits(splits, [3, 12, 12], num_train=2, num_validation=1, num_heldout=1)
    torch.testing.assert_close(every_row(splits), torch.ones(4, 3, 12, 12))


@pytest.mark.parametrize("layout", ["flat", "classes"])
def test_image_folder_corrupt_image_names_the_file(tmp_path, layout):
    folder = tmp_path / "images"
    sub = folder / "a" if layout == "classes" else folder
    for i in range(3):
        write_image(sub / f"{i}.png", solid(10 * i, size=(6, 6), channels=1))
    broken = sub / "broken.png"
    broken.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8)))
    assert_load_fails_naming(broken, "image_folder", path=folder, image_size=6)


def test_image_folder_truncated_image_names_the_file(tmp_path):
    folder = tmp_path / "images"
    for i in range(3):
        write_image(folder / f"{i}.png", np.random.default_rng(i).integers(0, 256, (32, 32, 3)))
    raw = (folder / "1.png").read_bytes()
    (folder / "1.png").write_bytes(raw[: len(raw) // 2])
    assert_load_fails_naming(folder / "1.png", "image_folder", path=folder, image_size=8)


def test_image_folder_needs_a_path(tmp_path):
    with pytest.raises(ValueError, match="ingest.path"):
        load_dataset(DatasetSettings("image_folder", root=tmp_path))


# --- CelebA and CelebA-HQ -------------------------------------------------------------------------


def celeba_image_numbers(images: torch.Tensor) -> list[int]:
    """Which of write_celeba's images these are (1..10), read from the green level 6 * i of their centre."""
    return [round(float((green + 1) * 127.5) / 6) for green in images[:, 1, 32, 32]]


def test_celeba_uses_partition_file(tmp_path):
    write_celeba(tmp_path)
    splits = load_dataset(DatasetSettings("celeba", root=tmp_path, validation_fraction=0.5))

    # partition 0 is train, partition 1 (valid) the validation split whatever validation_fraction says, 2 (test) held out
    check_splits(splits, [3, 64, 64], num_train=5, num_validation=2, num_heldout=3)
    assert celeba_image_numbers(splits.train) == [1, 2, 3, 4, 5]
    assert celeba_image_numbers(splits.validation) == [6, 7]
    assert celeba_image_numbers(splits.heldout) == [8, 9, 10]
    assert splits.metadata["validation_source"] == "partition 1 of list_eval_partition.txt"
    assert data_shape("celeba") == [3, 64, 64]
    assert splits.train_labels is None and splits.metadata["num_classes"] == 0
    # the 30 x 30 centre crop drops the red bands at the top and bottom: blue, with a little green
    for part in (splits.train, splits.validation, splits.heldout):
        assert part[:, 0].max() < -0.7 and part[:, 1].max() < -0.5 and part[:, 2].min() > 0.7


def test_celeba_image_size(tmp_path):
    write_celeba(tmp_path)
    splits = load_dataset(DatasetSettings("celeba", root=tmp_path, image_size=32))
    check_splits(splits, [3, 32, 32], num_train=5, num_validation=2, num_heldout=3)
    assert data_shape("celeba", image_size=32) == [3, 32, 32]


def test_celeba_missing_listed_image_is_named(tmp_path):
    write_celeba(tmp_path)
    missing = tmp_path / "celeba" / "img_align_celeba" / "000009.jpg"
    missing.unlink()
    assert_load_fails_naming(missing, "celeba", root=tmp_path)


def test_celeba_missing_partition_file_is_named(tmp_path, monkeypatch):
    forbid_downloads(monkeypatch)
    write_celeba(tmp_path)
    partition_file = tmp_path / "celeba" / "list_eval_partition.txt"
    partition_file.unlink()
    assert_load_fails_naming(partition_file, "celeba", root=tmp_path)


def test_celebahq_random_split(tmp_path):
    folder = tmp_path / "celebahq"
    for i in range(6):
        sub = folder / "part2" if i >= 4 else folder  # flat or nested
        write_image(sub / f"{i:05d}.png", solid((i * 40, 0, 255 - i * 40), size=(20, 20)))
    splits = load_dataset(DatasetSettings("celebahq", root=tmp_path, image_size=16, heldout_fraction=1 / 3, seed=1))
    check_splits(splits, [3, 16, 16], num_train=3, num_validation=1, num_heldout=2)
    assert data_shape("celebahq", image_size=16) == [3, 16, 16]
    assert splits.train_labels is None and splits.metadata["num_classes"] == 0
    red = sorted(round(float((img[0, 8, 8] + 1) * 127.5)) for img in every_row(splits))
    assert red == [0, 40, 80, 120, 160, 200]  # every image exactly once across the three splits
    again = load_dataset(DatasetSettings("celebahq", root=tmp_path, image_size=16, heldout_fraction=1 / 3, seed=1))
    assert torch.equal(again.heldout, splits.heldout)

    default = load_dataset(DatasetSettings("celebahq", root=tmp_path, heldout_fraction=1 / 3))
    check_splits(default, data_shape("celebahq"), num_train=3, num_validation=1, num_heldout=2)
    assert data_shape("celebahq") == [3, 256, 256]


# --- digits and gmm -------------------------------------------------------------------------------


def test_digits_split_is_seeded():
    splits = load_dataset(DatasetSettings("digits", heldout_fraction=0.1, seed=0))
    check_splits(splits, [1, 8, 8], num_train=1455, num_validation=162, num_heldout=180)
    assert data_shape("digits") == [1, 8, 8]
    assert splits.metadata["value_range"] == [-1.0, 1.0]
    labels = torch.cat([splits.train_labels, splits.validation_labels, splits.heldout_labels])
    assert sorted(labels.unique().tolist()) == list(range(10))
    assert splits.metadata["num_classes"] == 10

    same = load_dataset(DatasetSettings("digits", heldout_fraction=0.1, seed=0))
    assert torch.equal(same.train, splits.train) and torch.equal(same.heldout_labels, splits.heldout_labels)
    other = load_dataset(DatasetSettings("digits", heldout_fraction=0.1, seed=1))
    assert not torch.equal(other.heldout, splits.heldout)
    # a split of the same 1797 images either way
    total = every_row(other).sum(dim=(1, 2, 3)).sort().values
    torch.testing.assert_close(total, every_row(splits).sum(dim=(1, 2, 3)).sort().values)

    quarter = load_dataset(DatasetSettings("digits", heldout_fraction=0.25, seed=0))
    check_splits(quarter, [1, 8, 8], num_train=1797 - 449 - 135, num_validation=135, num_heldout=449)


def test_digits_image_size(tmp_path):
    splits = load_dataset(DatasetSettings("digits", image_size=16, max_train=10, max_heldout=5))
    check_splits(splits, [1, 16, 16], num_train=10, num_validation=162, num_heldout=5)
    assert data_shape("digits", image_size=16) == [1, 16, 16]


def test_gmm_means_on_grid():
    rows, cols, spacing, std_on, std_off, dim = 2, 3, 2.0, 0.2, 0.05, 12
    params = {"n_samples": 6000, "dim": dim, "grid": [rows, cols], "spacing": spacing}
    params |= {"std_on_plane": std_on, "std_off_plane": std_off}
    splits = load_dataset(DatasetSettings("gmm", gmm=params, heldout_fraction=0.2, seed=5))
    assert list(splits.train.shape) == [4320, dim] and list(splits.validation.shape) == [480, dim]
    assert list(splits.heldout.shape) == [1200, dim]
    assert splits.metadata["shape"] == [dim] and splits.metadata["dim"] == dim
    assert splits.metadata["num_train"] == 4320 and splits.metadata["num_validation"] == 480
    assert splits.metadata["num_heldout"] == 1200
    assert splits.metadata["is_image"] is False
    assert data_shape("gmm", gmm_dim=dim) == [dim]
    assert splits.metadata["num_classes"] == rows * cols

    points = every_row(splits)
    labels = torch.cat([splits.train_labels, splits.validation_labels, splits.heldout_labels])
    xs = [(c - (cols - 1) / 2) * spacing for c in range(cols)]  # -2, 0, 2
    ys = [(r - (rows - 1) / 2) * spacing for r in range(rows)]  # -1, 1
    grid = {(x, y) for x in xs for y in ys}
    found = set()
    for k in range(rows * cols):
        members = points[labels == k]
        assert len(members) > 500
        mean = members[:, :2].mean(dim=0)
        centre = (round(float(mean[0])), round(float(mean[1])))
        assert centre in grid
        assert abs(float(mean[0]) - centre[0]) < 0.05 and abs(float(mean[1]) - centre[1]) < 0.05
        assert float(members[:, :2].std(dim=0).mean()) == pytest.approx(std_on, rel=0.1)
        found.add(centre)
    assert found == grid  # one component per grid point
    assert float(points[:, 2:].std()) == pytest.approx(std_off, rel=0.05)
    assert float(points[:, 2:].mean().abs()) < 0.01


def test_gmm_default_dim_matches_data_shape():
    splits = load_dataset(DatasetSettings("gmm", gmm={"n_samples": 50}, max_train=20))
    assert list(splits.train.shape[1:]) == data_shape("gmm") == [500]
    assert splits.metadata["num_train"] == 20 and splits.metadata["num_heldout"] == 5


# --- missing files, names, splits and subsampling -------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py/data_batch_1"),
        ("celeba", "celeba/img_align_celeba"),
        ("celebahq", "celebahq"),
        ("image_folder", "images"),
    ],
)
def test_missing_files_name_the_expected_path(tmp_path, monkeypatch, dataset, expected):
    forbid_downloads(monkeypatch)
    root = tmp_path / "root"
    root.mkdir()
    path = None
    if dataset == "image_folder":
        path = root / "images"
        path.mkdir()
    error = assert_load_fails_naming(root / expected, dataset, root=root, path=path, download=False)
    assert isinstance(error, FileNotFoundError)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == (["images"] if path else [])  # nothing written


def test_image_folder_nonexistent_path(tmp_path):
    assert_load_fails_naming(tmp_path / "nowhere", "image_folder", path=tmp_path / "nowhere")


def test_image_folder_needs_two_images(tmp_path):
    write_image(tmp_path / "one" / "only.png", solid(0, size=(4, 4), channels=1))
    assert_load_fails_naming(tmp_path / "one", "image_folder", path=tmp_path / "one")


def test_unknown_dataset_lists_valid_names():
    for call in (lambda: load_dataset(DatasetSettings("imagenet")), lambda: data_shape("imagenet")):
        with pytest.raises(ValueError, match="imagenet") as info:
            call()
        for name in DATASETS:
            assert name in str(info.value)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_heldout_fraction_out_of_range(fraction):
    with pytest.raises(ValueError, match="heldout_fraction"):
        load_dataset(DatasetSettings("digits", heldout_fraction=fraction))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_validation_fraction_out_of_range(fraction):
    with pytest.raises(ValueError, match="ingest.validation_fraction"):
        load_dataset(DatasetSettings("digits", validation_fraction=fraction))


@pytest.mark.parametrize("dataset", ["digits", "gmm"])
def test_a_setting_only_other_datasets_read_leaves_the_splits_unchanged(dataset, tmp_path):
    # SETTINGS_READ_BY decides which ingest keys a run logs to MLflow: a key it leaves out must change nothing.
    base = DatasetSettings(dataset, gmm={"n_samples": 60, "dim": 3}, max_train=20, max_heldout=5)
    other_values = {
        "root": tmp_path / "nowhere",
        "path": tmp_path,
        "channels": 1,
        "download": True,
        "image_size": 4,
        "image_dtype": "uint8",
        "gmm": {"n_samples": 30, "dim": 2},
    }
    assert set(other_values) == set(SETTINGS_READ_BY) and all(names <= set(DATASETS) for names in SETTINGS_READ_BY.values())
    unread = [key for key, names in SETTINGS_READ_BY.items() if dataset not in names]
    assert unread, "each of these datasets ignores some settings"
    reference = load_dataset(base)
    for key in unread:
        changed = load_dataset(replace(base, **{key: other_values[key]}))
        for part in ("train", "validation", "heldout", "train_labels", "validation_labels", "heldout_labels"):
            assert torch.equal(getattr(changed, part), getattr(reference, part)), (key, part)
        assert changed.metadata == reference.metadata, key


def rows_of(points: torch.Tensor) -> set[tuple[float, ...]]:
    """Each gmm point as a hashable row (its continuous coordinates make every row distinct)."""
    return {tuple(row) for row in points[:, :4].tolist()}


def test_validation_split_is_disjoint_seeded_and_independent_of_max_train():
    gmm = {"n_samples": 400, "dim": 6}
    splits = load_dataset(DatasetSettings("gmm", gmm=gmm, heldout_fraction=0.2, validation_fraction=0.25, seed=3))
    train, validation, heldout = rows_of(splits.train), rows_of(splits.validation), rows_of(splits.heldout)
    assert (len(train), len(validation), len(heldout)) == (240, 80, 80)
    assert not train & validation and not validation & heldout and not train & heldout
    assert splits.metadata["validation_source"] == "0.25 of the training data (ingest.validation_fraction, seed 3)"

    again = load_dataset(DatasetSettings("gmm", gmm=gmm, heldout_fraction=0.2, validation_fraction=0.25, seed=3))
    assert torch.equal(again.validation, splits.validation) and torch.equal(again.train, splits.train)
    assert torch.equal(again.validation_labels, splits.validation_labels)
    # the held-out split does not depend on the validation fraction: reported numbers stay comparable
    other_fraction = load_dataset(DatasetSettings("gmm", gmm=gmm, heldout_fraction=0.2, validation_fraction=0.1, seed=3))
    assert torch.equal(other_fraction.heldout, splits.heldout)
    assert rows_of(other_fraction.validation) < validation | train
    # max_train subsamples what remains after the validation split is drawn
    small = load_dataset(DatasetSettings("gmm", gmm=gmm, heldout_fraction=0.2, validation_fraction=0.25, seed=3, max_train=50))
    assert torch.equal(small.validation, splits.validation) and rows_of(small.train) < train
    capped = load_dataset(
        DatasetSettings("gmm", gmm=gmm, heldout_fraction=0.2, validation_fraction=0.25, seed=3, max_validation=10)
    )
    assert len(capped.validation) == 10 and rows_of(capped.validation) < validation
    # the same points (the mixture's own seed fixed) split with another seed: another validation split
    reseeded = load_dataset(
        DatasetSettings("gmm", gmm={**gmm, "seed": 3}, heldout_fraction=0.2, validation_fraction=0.25, seed=4)
    )
    assert rows_of(every_row(reseeded)) == train | validation | heldout and rows_of(reseeded.validation) != validation


def test_carve_validation_keeps_row_order():
    from gpe_pipeline.core.data import carve_validation

    rows = torch.arange(20) * 10
    train, train_labels, validation, validation_labels = carve_validation(rows, torch.arange(20), 0.2, seed=0)
    assert len(validation) == 4 and len(train) == 16
    assert sorted(torch.cat([train, validation]).tolist()) == rows.tolist()
    assert train.tolist() == sorted(train.tolist()) and validation.tolist() == sorted(validation.tolist())
    assert torch.equal(train, train_labels * 10) and torch.equal(validation, validation_labels * 10)
    assert carve_validation(rows, None, 0.2, seed=0)[1] is None


def test_max_train_and_max_heldout_subsample(tmp_path):
    arrays = write_mnist(tmp_path)
    full = load_dataset(DatasetSettings("mnist", root=tmp_path))
    small = load_dataset(DatasetSettings("mnist", root=tmp_path, max_train=3, max_heldout=2))
    check_splits(small, [1, 28, 28], num_train=3, num_validation=1, num_heldout=2)

    # the kept rows are original rows, in their original order, with their own labels
    marks = [round(float((img[0, 5, 5] + 1) * 127.5)) for img in small.train]
    assert marks == sorted(marks) and len(set(marks)) == 3
    assert small.train_labels.tolist() == [m // 10 for m in marks]
    test_labels = dict(zip((arrays["t10k-images-idx3-ubyte"][:, 5, 5]).tolist(), full.heldout_labels.tolist(), strict=True))
    held_marks = [round(float((img[0, 5, 5] + 1) * 127.5)) for img in small.heldout]
    assert small.heldout_labels.tolist() == [test_labels[m] for m in held_marks]

    again = load_dataset(DatasetSettings("mnist", root=tmp_path, max_train=3, max_heldout=2))
    assert torch.equal(again.train, small.train) and torch.equal(again.heldout, small.heldout)
    roomy = load_dataset(DatasetSettings("mnist", root=tmp_path, max_train=100, max_heldout=100))
    assert torch.equal(roomy.train, full.train) and torch.equal(roomy.heldout, full.heldout)


def test_too_few_examples_after_subsampling(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(ValueError, match="need at least"):
        load_dataset(DatasetSettings("mnist", root=tmp_path, max_train=1))


def test_metadata_fields(tmp_path):
    write_cifar10(tmp_path)
    metadata = load_dataset(DatasetSettings("cifar10", root=tmp_path, seed=7)).metadata
    assert metadata == {
        "dataset": "cifar10",
        "shape": [3, 32, 32],
        "dim": 3 * 32 * 32,
        "num_train": 9,
        "num_validation": 1,
        "num_heldout": 3,
        "validation_source": "0.1 of the training data (ingest.validation_fraction, seed 7)",
        "num_classes": 10,
        "is_image": True,
        "dtype": "float32",
        "value_range": [-1.0, 1.0],
        "seed": 7,
    }


def test_images_can_stay_uint8_and_map_to_the_model_scale_per_batch(tmp_path):
    from gpe_pipeline.core.data import to_model_scale

    write_cifar10(tmp_path)
    as_float = load_dataset(DatasetSettings("cifar10", root=tmp_path, seed=7))
    as_uint8 = load_dataset(DatasetSettings("cifar10", root=tmp_path, seed=7, image_dtype="uint8"))
    assert as_uint8.train.dtype == torch.uint8 and as_uint8.metadata["dtype"] == "uint8"
    assert as_uint8.metadata["value_range"] == [-1.0, 1.0]
    assert torch.equal(to_model_scale(as_uint8.train), as_float.train)
    assert to_model_scale(as_float.train) is as_float.train
    digits = load_dataset(DatasetSettings("digits", image_dtype="uint8"))
    assert digits.train.dtype == torch.float32, "digits (0..16 pixel values) stay float"
    with pytest.raises(ValueError, match="image_dtype"):
        load_dataset(DatasetSettings("digits", image_dtype="float16"))


def test_augmentations_flip_and_crop_on_tensors():
    from gpe_pipeline.core.data import augment_images

    images = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    assert torch.equal(augment_images(images), images)
    torch.manual_seed(0)
    flipped = augment_images(images.repeat(50, 1, 1, 1), hflip=True)
    is_flipped = [torch.equal(f, i.flip(-1)) for f, i in zip(flipped, images.repeat(50, 1, 1, 1), strict=True)]
    is_same = [torch.equal(f, i) for f, i in zip(flipped, images.repeat(50, 1, 1, 1), strict=True)]
    assert all(a or b for a, b in zip(is_flipped, is_same, strict=True)) and 25 <= sum(is_flipped) <= 75
    cropped = augment_images(images, crop_scale=0.8)
    assert cropped.shape == images.shape and cropped.min() >= -1 and cropped.max() <= 1
    assert not torch.allclose(cropped, images)
    # keeping the whole side is the identity map (up to bilinear resampling error)
    assert torch.allclose(augment_images(images, crop_scale=1.0 - 1e-7), images, atol=1e-5)
    with pytest.raises(ValueError, match="crop_scale"):
        augment_images(images, crop_scale=0)
