"""Dataset readers: every dataset by name -> normalised tensors with train, validation and held-out splits.

Images come out as float32 in [-1, 1] with shape (N, C, H, W); vector data as
(N, D). On-disk datasets are read from torchvision's layouts under `root`
(MNIST IDX files, the CIFAR-10 python pickles, CelebA's aligned JPEGs with its
partition file) or from an image folder; nothing is downloaded unless
`download=True`. The validation split (early stopping, model selection) is
CelebA's own partition 1, or else carved at random from the training data, so
the held-out split that evaluate reports is never what a stopping rule saw.
"""

from __future__ import annotations

import gzip
import math
import pickle
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from .errors import UserError

DATASETS = ("digits", "gmm", "mnist", "cifar10", "celeba", "celebahq", "image_folder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGE_DTYPES = ("float32", "uint8")
VALIDATION_SEED_OFFSET = 2  # the validation split's random stream differs from the held-out split's (seed) and subsampling's
DEFAULT_IMAGE_SIZE = {"mnist": 28, "cifar10": 32, "celeba": 64, "celebahq": 256, "image_folder": 64}


class DatasetFilesError(UserError, FileNotFoundError):
    """A dataset's files are missing or unreadable; the message says where they belong."""


@dataclass
class DataSplits:
    """A dataset split into train, validation and held-out parts; labels are None for unlabelled data."""

    train: Tensor
    validation: Tensor
    heldout: Tensor
    train_labels: Tensor | None = None
    validation_labels: Tensor | None = None
    heldout_labels: Tensor | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def data_shape(name: str, image_size: int | None = None, gmm_dim: int = 500, channels: int = 3) -> list[int]:
    """The per-example shape a dataset will have after ingest, known before reading any file."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}': set ingest.dataset to one of {list(DATASETS)}")
    if name == "digits":
        size = int(image_size or 8)  # load_dataset resizes the 8x8 digits when image_size is set
        return [1, size, size]
    if name == "gmm":
        return [int(gmm_dim)]
    size = int(image_size or DEFAULT_IMAGE_SIZE[name])
    return [{"mnist": 1, "cifar10": 3, "celeba": 3, "celebahq": 3}.get(name, channels), size, size]


def data_value_range(name: str) -> tuple[float, float]:
    """The values a dataset's examples take in the models' scale, known before reading any file.

    Images are normalised to [-1, 1]; the gmm mixture's Gaussian coordinates are unbounded.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}': set ingest.dataset to one of {list(DATASETS)}")
    return (-math.inf, math.inf) if name == "gmm" else (-1.0, 1.0)


def format_range(value_range) -> str:
    """[-1, 1] or (-inf, inf), for messages."""
    low, high = value_range
    return "(-inf, inf)" if math.isinf(low) and math.isinf(high) else f"[{low:g}, {high:g}]"


def uint8_to_unit_range(images: Tensor) -> Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_model_scale(x: Tensor) -> Tensor:
    """A batch in the models' input scale: uint8 pixels -> float32 in [-1, 1]; float data unchanged."""
    return uint8_to_unit_range(x) if x.dtype == torch.uint8 else x


def augment_images(images: Tensor, hflip: bool = False, crop_scale: float = 1.0) -> Tensor:
    """Mild augmentations on a batch of images (B, C, H, W) on its own device, no PIL.

    hflip: flip each image left-right with probability 1/2. crop_scale < 1:
    a random square crop keeping between crop_scale and all of the side,
    resized back to H x W (bilinear). Randomness comes from torch's global RNG.
    """
    if not 0 < crop_scale <= 1:
        raise ValueError(f"crop_scale must be in (0, 1], got {crop_scale}")
    if hflip:
        flip = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < 0.5
        images = torch.where(flip, images.flip(-1), images)
    if crop_scale < 1:
        count = images.shape[0]
        keep = crop_scale + (1 - crop_scale) * torch.rand(count, device=images.device)  # fraction of the side kept
        shift = (1 - keep) * (2 * torch.rand(2, count, device=images.device) - 1)  # crop centre, inside the image
        theta = torch.zeros(count, 2, 3, device=images.device)
        theta[:, 0, 0] = theta[:, 1, 1] = keep
        theta[:, 0, 2], theta[:, 1, 2] = shift[0], shift[1]
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return images


def _resize_uint8(images: Tensor, size: int | None) -> Tensor:
    """Resize uint8 (N, C, H, W) images, rounding back to uint8."""
    if size is None or (images.shape[-1] == size and images.shape[-2] == size):
        return images
    resized = _resize(uint8_to_unit_range(images), size)
    return ((resized + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def _resize(images: Tensor, size: int) -> Tensor:
    """Resize (N, C, H, W) float images to size x size (antialiased bilinear)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(-1, 1)


def check_fraction(key: str, fraction: Any) -> None:
    """A split's share of the rows: a number strictly between 0 and 1 (ValueError naming `key` otherwise)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"{key} must be a number in (0, 1), got {fraction!r}")


def _random_split(n: int, fraction: float, seed: int, key: str = "ingest.heldout_fraction") -> tuple[Tensor, Tensor]:
    """Indices (rest, part) of a seeded random split of n rows; part holds round(n * fraction) rows, at least 1."""
    check_fraction(key, fraction)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_part = max(1, int(round(n * fraction)))
    return order[n_part:], order[:n_part]


def carve_validation(
    train: Tensor, labels: Tensor | None, fraction: float, seed: int
) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
    """Split the training rows into (train, train_labels, validation, validation_labels) at random, seeded.

    Both parts keep the rows' original order; the same seed and row count give the same split.
    """
    rest, part = _random_split(len(train), fraction, seed + VALIDATION_SEED_OFFSET, "ingest.validation_fraction")
    rest, part = rest.sort().values, part.sort().values
    if labels is None:
        return train[rest], None, train[part], None
    return train[rest], labels[rest], train[part], labels[part]


# --- digits and gmm: generated or bundled, no files --------------------------------------------


def load_digits_images() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 digits: (1797, 1, 8, 8) in [-1, 1] and labels (1797,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32)).unsqueeze(1) / 8.0 - 1.0  # pixel values are 0..16
    return images, torch.from_numpy(digits.target.astype(np.int64))


def make_gmm(
    n_samples: int = 4000,
    dim: int = 500,
    grid: tuple[int, int] = (4, 4),
    spacing: float = 2.0,
    std_on_plane: float = 0.3,
    std_off_plane: float = 0.01,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """The paper's mixture in R^dim (section 8.1): means on a grid in the first two coordinates.

    Returns points (n_samples, dim) and component labels (n_samples,).
    """
    if dim < 2:
        raise ValueError(f"ingest.gmm.dim must be >= 2, got {dim}")
    generator = torch.Generator().manual_seed(seed)
    rows, cols = (int(g) for g in grid)
    gx = (torch.arange(cols, dtype=torch.float32) - (cols - 1) / 2) * spacing
    gy = (torch.arange(rows, dtype=torch.float32) - (rows - 1) / 2) * spacing
    centres = torch.cartesian_prod(gy, gx).flip(1)  # (rows*cols, 2) as (x, y)
    labels = torch.randint(len(centres), (n_samples,), generator=generator)
    points = torch.randn(n_samples, dim, generator=generator) * std_off_plane
    points[:, :2] = centres[labels] + torch.randn(n_samples, 2, generator=generator) * std_on_plane
    return points, labels


# --- MNIST: IDX files ------------------------------------------------------------------------------


def read_idx(path: Path) -> Tensor:
    """Read an IDX file (MNIST's format; plain or .gz) into a uint8 tensor of its stored shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # EOFError: a .gz cut short
        raise DatasetFilesError(f"cannot read IDX file {path}: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetFilesError(
            f"{path} is not an unsigned-byte IDX file (bad magic number): replace it with the original MNIST file"
        )
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != math.prod(dims):
        raise DatasetFilesError(f"{path} is truncated: header says {dims}, file holds {len(raw) - offset} bytes")
    return torch.frombuffer(bytearray(raw[offset:]), dtype=torch.uint8).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _missing(what: str, expected: Path, how: str) -> DatasetFilesError:
    return DatasetFilesError(f"{what} not found: expected {expected}. {how}")


def load_mnist(root: Path, download: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MNIST from <root>/MNIST/raw (torchvision layout): uint8 (N, 1, 28, 28) images and labels, train and test."""
    raw = root / "MNIST" / "raw"
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if download and any(_find(raw, s) is None for s in stems):
        from torchvision.datasets import MNIST

        MNIST(str(root), train=True, download=True)
    paths = []
    for stem in stems:
        path = _find(raw, stem)
        if path is None:
            raise _missing(
                "MNIST file",
                raw / stem,
                "Copy the four MNIST IDX files there (plain or .gz), or run with --params ingest.download=true on a machine with internet.",
            )
        paths.append(path)
    train_x, train_y, test_x, test_y = (read_idx(p) for p in paths)
    return train_x.unsqueeze(1), train_y.long(), test_x.unsqueeze(1), test_y.long()


# --- CIFAR-10: python pickles ------------------------------------------------------------------------


def _read_cifar_batch(path: Path) -> tuple[Tensor, Tensor]:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as err:
        raise DatasetFilesError(f"cannot read CIFAR-10 batch {path}: {err}; replace it with the original file") from err
    return torch.from_numpy(data.copy()), torch.from_numpy(labels)


def load_cifar10(root: Path, download: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """CIFAR-10 from <root>/cifar-10-batches-py (torchvision layout): uint8 (N, 3, 32, 32) and labels, train and test."""
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if download and any(not (folder / n).exists() for n in names):
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root), train=True, download=True)
    for n in names:
        if not (folder / n).exists():
            raise _missing(
                "CIFAR-10 batch",
                folder / n,
                "Unpack cifar-10-python.tar.gz into that folder's parent, or run with --params ingest.download=true on a machine with internet.",
            )
    parts = [_read_cifar_batch(folder / n) for n in names]
    train_x = torch.cat([p[0] for p in parts[:5]])
    train_y = torch.cat([p[1] for p in parts[:5]])
    return train_x, train_y, parts[5][0], parts[5][1]


# --- image files -------------------------------------------------------------------------------------


def read_image(path: Path, image_size: int, channels: int, center_crop: int | None = None) -> Tensor:
    """One image file -> uint8 (C, image_size, image_size); center-cropped first when asked."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if center_crop is not None:
                w, h = img.size
                c = min(center_crop, w, h)
                left, top = (w - c) // 2, (h - c) // 2
                img = img.crop((left, top, left + c, top + c))
            if img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.Resampling.BICUBIC)
            array = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DatasetFilesError(f"cannot read image {path}: {err}; delete or replace the file") from err
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def read_images(paths: list[Path], image_size: int, channels: int, center_crop: int | None = None, workers: int = 8) -> Tensor:
    """Many image files -> uint8 (N, C, S, S), decoded by a thread pool (PIL releases the GIL while decoding).

    Each image is written straight into one pre-allocated tensor, so the peak memory is the set once, not twice.
    """
    images = torch.empty(len(paths), channels, image_size, image_size, dtype=torch.uint8)

    def read_into(index: int) -> None:
        images[index] = read_image(paths[index], image_size, channels, center_crop)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(read_into, range(len(paths))):  # iterating re-raises a reader's error
            pass
    return images


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(folder: Path, image_size: int, channels: int = 3) -> tuple[Tensor, Tensor | None]:
    """Images under `folder`: class sub-folders (torchvision ImageFolder layout) give labels; a flat folder gives none."""
    if not folder.is_dir():
        raise _missing("image folder", folder, "Set ingest.path to a folder of images (optionally one sub-folder per class).")
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and list_images(d))
    flat = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if class_dirs and not flat:
        paths, labels = [], []
        for label, d in enumerate(class_dirs):
            found = list_images(d)
            paths += found
            labels += [label] * len(found)
        label_tensor: Tensor | None = torch.tensor(labels, dtype=torch.long)
    else:
        paths, label_tensor = list_images(folder), None
    if len(paths) < 2:
        raise _missing("images", folder, f"Put at least 2 image files ({', '.join(IMAGE_SUFFIXES)}) there.")
    return read_images(paths, image_size, channels), label_tensor


def load_celeba(root: Path, image_size: int, download: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """CelebA aligned faces from <root>/celeba (torchvision layout), center-cropped to 148 and resized.

    Returns uint8 train images (partition 0), validation images (partition 1) and held-out images
    (partition 2, the test split).
    """
    base = root / "celeba"
    images_dir = base / "img_align_celeba"
    partition_file = base / "list_eval_partition.txt"
    if download and not (images_dir.is_dir() and partition_file.exists()):
        from torchvision.datasets import CelebA

        CelebA(str(root), split="all", download=True)
    if not images_dir.is_dir():
        raise _missing(
            "CelebA images",
            images_dir,
            "Unzip img_align_celeba.zip from the CelebA site there (with list_eval_partition.txt beside the folder).",
        )
    if not partition_file.exists():
        raise _missing("CelebA partition file", partition_file, "Copy list_eval_partition.txt from the CelebA site there.")
    partitions: dict[str, list[Path]] = {"0": [], "1": [], "2": []}
    for line in partition_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in partitions:
            partitions[parts[1]].append(images_dir / parts[0])
    missing = [p for paths in partitions.values() for p in paths if not p.exists()]
    if missing:
        raise _missing(
            "CelebA image",
            missing[0],
            f"{len(missing)} files listed in {partition_file.name} are absent: unzip the whole archive.",
        )
    train, validation, heldout = (read_images(partitions[k], image_size, 3, center_crop=148) for k in ("0", "1", "2"))
    return train, validation, heldout


def load_celebahq(root: Path, image_size: int) -> Tensor:
    """CelebA-HQ images (any size, resized) from <root>/celebahq, flat or nested."""
    folder = root / "celebahq"
    paths = list_images(folder) if folder.is_dir() else []
    if len(paths) < 2:
        raise _missing(
            "CelebA-HQ images",
            folder,
            "Put the CelebA-HQ images there (for example the 30,000 images of the 256x256 release); any size is resized to ingest.image_size.",
        )
    return read_images(paths, image_size, 3)


# --- the one entry point ------------------------------------------------------------------------------


def _subsample(x: Tensor, labels: Tensor | None, limit: int | None, seed: int) -> tuple[Tensor, Tensor | None]:
    if limit is None or len(x) <= limit:
        return x, labels
    keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    return x[keep], None if labels is None else labels[keep]


# Datasets read from torchvision's layouts under ingest.root.
ROOT_DATASETS = frozenset({"mnist", "cifar10", "celeba", "celebahq"})
IMAGE_FILE_DATASETS = ROOT_DATASETS | {"image_folder"}


def _read_by(default: Any, datasets: Iterable[str]) -> Any:
    """A setting that only these datasets read (load_dataset ignores it for the others)."""
    return field(default=default, metadata={"read_by": frozenset(datasets)})


@dataclass(frozen=True)
class DatasetSettings:
    """What load_dataset reads: the `ingest` parameter section, one field per key (DatasetSettings(**section)).

    A field made with _read_by is read only by the datasets it names; every other field by all of them.
    """

    dataset: str
    root: str | Path = _read_by("data/01_raw", ROOT_DATASETS)
    image_size: int | None = _read_by(None, {"digits", *IMAGE_FILE_DATASETS})
    heldout_fraction: float = 0.1
    validation_fraction: float = 0.1
    seed: int = 0
    max_train: int | None = None
    max_validation: int | None = None
    max_heldout: int | None = None
    download: bool = _read_by(False, {"mnist", "cifar10", "celeba"})  # torchvision has no CelebA-HQ
    path: str | Path | None = _read_by(None, {"image_folder"})
    channels: int = _read_by(3, {"image_folder"})
    gmm: dict[str, Any] | None = _read_by(None, {"gmm"})
    image_dtype: str = _read_by("float32", IMAGE_FILE_DATASETS)


# ingest keys that only some datasets read, with those datasets; every other ingest key is read by all of them.
SETTINGS_READ_BY: dict[str, frozenset[str]] = {
    f.name: f.metadata["read_by"] for f in fields(DatasetSettings) if "read_by" in f.metadata
}


def load_dataset(settings: DatasetSettings) -> DataSplits:
    """Load a dataset by name into normalised train, validation and held-out tensors with metadata.

    Datasets with an official test split (mnist, cifar10, celeba) hold it out;
    the others are split at random with `heldout_fraction` and `seed`. The
    validation split is CelebA's partition 1; for every other dataset it is
    `validation_fraction` of the training data, drawn with `seed` before
    `max_train` subsamples what remains (so max_train never changes it).
    image_dtype "uint8" keeps image files' pixels as uint8 in [0, 255] (4x less
    memory; `to_model_scale` maps a batch to [-1, 1]); digits and gmm are float32 always.
    """
    name, seed, image_dtype = settings.dataset, settings.seed, settings.image_dtype
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}': set ingest.dataset to one of {list(DATASETS)}")
    root = Path(settings.root)
    size = int(settings.image_size or DEFAULT_IMAGE_SIZE.get(name, 0)) or None
    train_labels = heldout_labels = validation_labels = None
    validation: Tensor | None = None
    if image_dtype not in IMAGE_DTYPES:
        raise ValueError(f"ingest.image_dtype must be one of {list(IMAGE_DTYPES)}, got {image_dtype!r}")
    if name in ("digits", "gmm", "celebahq", "image_folder"):
        if name == "digits":
            x, labels = load_digits_images()
            if size not in (None, 8):
                x = _resize(x, size)
        elif name == "gmm":
            x, labels = make_gmm(**{"seed": seed, **(settings.gmm or {})})
        elif name == "celebahq":
            x, labels = load_celebahq(root, size), None
        else:
            if settings.path is None:
                raise ValueError("ingest.path must name the image folder when ingest.dataset is image_folder")
            x, labels = load_image_folder(Path(settings.path), size, settings.channels)
        train_idx, heldout_idx = _random_split(len(x), settings.heldout_fraction, seed)
        train, heldout = x[train_idx], x[heldout_idx]
        if labels is not None:
            train_labels, heldout_labels = labels[train_idx], labels[heldout_idx]
    elif name in ("mnist", "cifar10"):
        loader = load_mnist if name == "mnist" else load_cifar10
        train, train_labels, heldout, heldout_labels = loader(root, settings.download)
        train, heldout = _resize_uint8(train, size), _resize_uint8(heldout, size)
    else:  # celeba
        train, validation, heldout = load_celeba(root, size, settings.download)
    if validation is None:
        validation_source = f"{settings.validation_fraction:g} of the training data (ingest.validation_fraction, seed {seed})"
        train, train_labels, validation, validation_labels = carve_validation(
            train, train_labels, settings.validation_fraction, seed
        )
    else:
        validation_source = "partition 1 of list_eval_partition.txt"  # CelebA's own validation split
    if train.dtype == torch.uint8 and image_dtype == "float32":
        train, validation, heldout = uint8_to_unit_range(train), uint8_to_unit_range(validation), uint8_to_unit_range(heldout)

    train, train_labels = _subsample(train, train_labels, settings.max_train, seed)
    heldout, heldout_labels = _subsample(heldout, heldout_labels, settings.max_heldout, seed + 1)
    validation, validation_labels = _subsample(
        validation, validation_labels, settings.max_validation, seed + VALIDATION_SEED_OFFSET
    )
    if len(train) < 2 or len(validation) < 1 or len(heldout) < 1:
        raise ValueError(
            f"dataset '{name}' gives {len(train)} train, {len(validation)} validation and {len(heldout)} held-out examples: "
            "need at least 2, 1 and 1"
        )
    shape = list(train.shape[1:])
    labels = [t for t in (train_labels, validation_labels, heldout_labels) if t is not None]
    metadata = {
        "dataset": name,
        "shape": shape,
        "dim": int(math.prod(shape)),
        "num_train": len(train),
        "num_validation": len(validation),
        "num_heldout": len(heldout),
        "validation_source": validation_source,
        "num_classes": int(torch.cat(labels).max()) + 1 if labels else 0,
        "is_image": len(shape) == 3,
        "dtype": str(train.dtype).removeprefix("torch."),
        "value_range": [float(to_model_scale(train[:1000]).min()), float(to_model_scale(train[:1000]).max())],
        "seed": seed,
    }
    return DataSplits(
        train.contiguous(),
        validation.contiguous(),
        heldout.contiguous(),
        train_labels,
        validation_labels,
        heldout_labels,
        metadata,
    )
