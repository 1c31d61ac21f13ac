"""Section 7: how a batch of 256x256 images reaches the model: indexing a tensor in memory, indexing a memory-mapped file, or decoding JPEG files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from benchmarks.timing import interleaved, median, table, time_steps
from gpe_pipeline.core.data import read_image

IMAGE_SIZE = 256
BATCH = 100
PAPER_CELEBAHQ_ENCODER_S = 0.124  # the paper's Table 2, V100 seconds per encoder iteration on CelebA-HQ


def photo_like_images(count: int, seed: int = 0) -> np.ndarray:
    """uint8 (count, 256, 256, 3): smooth random colour fields plus mild noise, so JPEG sizes resemble photographs."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)
        noise = rng.normal(0, 6, (IMAGE_SIZE, IMAGE_SIZE, 3))
        images[i] = np.clip(np.asarray(coarse, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return images


class JpegFiles(Dataset):
    """The DataLoader alternative: one JPEG decode (PIL) per item, as a torchvision ImageFolder pipeline does."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return read_image(self.paths[index], IMAGE_SIZE, 3)


def endless(loader: DataLoader):
    while True:
        yield from loader


def section_data_path(quick: bool) -> str:
    """7. ms per batch of 100 images at 256x256 for each way of holding a set that is too large to read twice."""
    count = 300 if quick else 1000
    steps = 5 if quick else 20
    repeats = 1 if quick else 3
    workers = os.cpu_count() or 1
    cpu = torch.device("cpu")
    images = photo_like_images(count)
    with tempfile.TemporaryDirectory() as tmp:
        in_memory = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        tensor_file = Path(tmp) / "train_data.pt"
        torch.save({"images": in_memory}, tensor_file)
        mapped = torch.load(tensor_file, mmap=True, weights_only=True)["images"]
        paths = []
        for i, image in enumerate(images):
            paths.append(Path(tmp) / f"{i:05d}.jpg")
            Image.fromarray(image).save(paths[-1], quality=95)
        jpeg_kib = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        generator = torch.Generator().manual_seed(0)

        def index_batch(source: torch.Tensor):
            return lambda: source[torch.randint(count, (BATCH,), generator=generator)]

        loaders = {
            "DataLoader, JPEG decode, 0 workers": DataLoader(JpegFiles(paths), batch_size=BATCH, shuffle=True),
            f"DataLoader, JPEG decode, {workers} workers": DataLoader(
                JpegFiles(paths), batch_size=BATCH, shuffle=True, num_workers=workers, persistent_workers=True
            ),
        }
        batches = {name: endless(loader) for name, loader in loaders.items()}
        measures = {
            "one uint8 tensor in memory, indexed": index_batch(in_memory),
            "memory-mapped uint8 file (page cache warm), indexed": index_batch(mapped),
            **{name: (lambda it=it: next(it)) for name, it in batches.items()},
        }
        samples = interleaved(repeats, *(lambda fn=fn: time_steps(fn, cpu, 2, steps) for fn in measures.values()))
        del batches, loaders  # stop the worker processes before the files go
    rows = []
    for name, sample in zip(measures, samples, strict=True):
        ms = median(sample)
        rows.append([name, f"{ms:.1f}", f"{1000 * PAPER_CELEBAHQ_ENCODER_S / ms:.1f}"])
    decode_ms = median(samples[2]) / BATCH  # one core, no workers: the decode cost per image
    header = ["source of a uint8 batch (100 x 3 x 256 x 256)", "ms/batch (CPU)", "batches per paper V100 step"]
    note = (
        f"{count} synthetic photo-like images (smooth colour fields plus noise; JPEG quality 95, {jpeg_kib:.0f} KiB each), "
        f"random batches of {BATCH} as uint8 (the trainer maps a batch to [-1, 1] on the device), {steps} timed batches "
        f"after 2 warm-up, median of {repeats} interleaved repeat(s); {workers} workers = this machine's cores. The last "
        f"column is how many batches each source delivers in the {PAPER_CELEBAHQ_ENCODER_S * 1000:.0f} ms of one CelebA-HQ "
        f"encoder step on the paper's V100 (below 1 the data path starves the GPU). Decoding costs {decode_ms:.2f} ms of one "
        f"core per image here, so a decoding DataLoader needs about {decode_ms * BATCH / (PAPER_CELEBAHQ_ENCODER_S * 1000):.1f} "
        "busy cores per GPU only to keep pace with a V100 step, more on a faster GPU or with larger real JPEGs, while "
        "indexing a tensor costs a copy of the batch and nothing when the tensor is on the GPU. Hence the design: ingest "
        "decodes every image once; CelebA-HQ (30,000 x 3 x 256 x 256 uint8 = 5.9 GB) stays one tensor file that later "
        "stages memory-map (`conf/celebahq/catalog.yml`) and the trainer copies to the GPU when it fits in half the free "
        "memory (a mapped file's pages are read from disk once, then served from the page cache)."
    )
    return "## 7. Data path for images that are large on disk\n\n" + table(header, rows) + "\n\n" + note
