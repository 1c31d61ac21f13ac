"""The reconstruction figure puts each reconstruction right under its original, at a size a browser shows whole."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from gpe_pipeline.plotting import reconstruction_figure

matplotlib.use("Agg")
DPI = 120  # conf/base/catalog.yml evaluation_figures save_args


def render(figure) -> np.ndarray:
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=DPI)
    return np.asarray(Image.open(buffer).convert("RGB")).astype(int)


def coloured_pairs(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is one flat colour: red level i + 1 of count + 1, blue for an original, green for its reconstruction."""
    red = torch.arange(1, count + 1) / (count + 1) * 2 - 1
    originals = torch.stack([red, -torch.ones(count), torch.ones(count)], 1)[:, :, None, None].expand(count, 3, 8, 8)
    reconstructions = torch.stack([red, torch.ones(count), -torch.ones(count)], 1)[:, :, None, None].expand(count, 3, 8, 8)
    return originals, reconstructions


def displayed_colours(images: torch.Tensor) -> np.ndarray:
    """The 0-255 RGB colour each flat image is drawn in."""
    return np.round((images[:, :, 0, 0].numpy() + 1) / 2 * 255)


def block(pixels: np.ndarray, colour: np.ndarray) -> tuple[float, float, int]:
    """Centre (row, column) and height in pixels of the area drawn in `colour`."""
    rows, cols = np.nonzero(np.abs(pixels - colour).max(-1) <= 3)
    assert len(rows) > 100, f"colour {colour} not drawn"
    return rows.mean(), cols.mean(), rows.max() - rows.min() + 1


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 64, 64)])
def test_sixty_four_pairs_fit_a_browser_window(shape):
    images = torch.zeros(64, *shape)
    width, height = reconstruction_figure(images, images).get_size_inches() * DPI
    assert width <= 1200 and height <= 700, (width, height)


def test_each_reconstruction_sits_right_under_its_original():
    count = 20  # a full pair of rows of 16 and a padded one of 4
    originals, reconstructions = coloured_pairs(count)
    pixels = render(reconstruction_figure(originals, reconstructions))
    pairs = zip(displayed_colours(originals), displayed_colours(reconstructions), strict=True)
    centres = [(block(pixels, original), block(pixels, reconstruction)) for original, reconstruction in pairs]
    for index, ((row, column, height), (below_row, below_column, _)) in enumerate(centres):
        assert abs(below_column - column) < 1, index
        assert height < below_row - row < 1.3 * height, f"reconstruction {index} is not in the row right under its original"
    columns = {round(c[0][1]) for c in centres}
    assert len(columns) == 16, "16 pairs per row"
    assert centres[16][0][0] > centres[0][1][0], "the second pair of rows starts under the first pair's reconstructions"
