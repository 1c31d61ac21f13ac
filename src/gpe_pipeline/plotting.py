"""Figures of the evaluate stage (matplotlib; no Kedro, no file I/O: callers save the figures)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import Tensor

from gpe_pipeline.core.training import VALIDATION_PREFIX
from gpe_pipeline.readings import first_crossing


def _as_grid(images: Tensor, columns: int) -> Tensor:
    """(N, C, H, W) in [-1, 1] -> one (H', W', C) array in [0, 1] with a 1-pixel gap."""
    count, channels, height, width = images.shape
    rows = math.ceil(count / columns)
    grid = torch.ones(channels, rows * (height + 1) + 1, columns * (width + 1) + 1)
    for index, image in enumerate(images.clamp(-1, 1)):
        r, c = divmod(index, columns)
        grid[:, 1 + r * (height + 1) : 1 + r * (height + 1) + height, 1 + c * (width + 1) : 1 + c * (width + 1) + width] = (
            image + 1
        ) / 2
    return grid.permute(1, 2, 0)


def _show(axis, images: Tensor, columns: int, title: str) -> None:
    grid = _as_grid(images, columns)
    axis.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray" if grid.shape[-1] == 1 else None, vmin=0, vmax=1)
    axis.set_title(title)
    axis.axis("off")


def image_grid_figure(images: Tensor, title: str, columns: int = 8) -> plt.Figure:
    """A grid of images (N, C, H, W) in [-1, 1]."""
    rows = math.ceil(len(images) / columns)
    figure, axis = plt.subplots(figsize=(columns * 0.9 + 0.5, rows * 0.9 + 0.6))
    _show(axis, images, columns, title)
    figure.tight_layout()
    return figure


def interleave_rows(originals: Tensor, reconstructions: Tensor, columns: int) -> Tensor:
    """Rows of `columns` originals, each followed by the row of their reconstructions (the last pair padded white).

    (N, C, H, W) twice -> (2 * rows * columns, C, H, W), for _as_grid with the same `columns`.
    """
    rows = math.ceil(len(originals) / columns)
    blank = torch.ones(rows * columns - len(originals), *originals.shape[1:])
    padded = [torch.cat([images, blank]).reshape(rows, columns, *images.shape[1:]) for images in (originals, reconstructions)]
    return torch.stack(padded, dim=1).flatten(0, 2)


def reconstruction_figure(originals: Tensor, reconstructions: Tensor, columns: int = 16, cell_inches: float = 0.5) -> plt.Figure:
    """Each row of held-out originals with the row of their reconstructions directly below it.

    64 images at 16 columns and the catalog's 120 dpi give 1116 x 564 pixels: the whole
    figure fits a browser window (MLflow's artifact viewer) without scrolling.
    """
    columns = min(columns, len(originals))
    rows = 2 * math.ceil(len(originals) / columns)
    figure, axis = plt.subplots(figsize=(columns * cell_inches + 1.3, rows * cell_inches + 0.7))
    _show(
        axis,
        interleave_rows(originals, reconstructions, columns),
        columns,
        "held-out originals x, each above its reconstruction S(T x)",
    )
    cell = originals.shape[-2] + 1  # grid pixels per row, with the 1-pixel gap
    axis.axis("on")  # for the row labels; the frame and x ticks stay hidden
    axis.set_xticks([])
    axis.set_yticks([1 + cell * row + cell / 2 - 1 for row in range(rows)], ["original", "reconstruction"] * (rows // 2))
    axis.tick_params(left=False, labelsize=9)
    for spine in axis.spines.values():
        spine.set_visible(False)
    for pair in range(1, rows // 2):  # a rule between pairs of rows, so each reconstruction row reads with the row above
        axis.axhline(cell * 2 * pair, color="0.5", linewidth=1)
    figure.tight_layout()
    return figure


def vector_samples_axis(
    axis, real: Tensor, generated: Tensor, title: str, size: float = 4, alpha: float = 0.5, legend_fontsize: float | None = None
) -> None:
    """For vector data, on one axis: the first two coordinates of real and generated points."""
    axis.scatter(real[:, 0], real[:, 1], s=size, alpha=alpha, label="held-out data")
    axis.scatter(generated[:, 0], generated[:, 1], s=size, alpha=alpha, label="generated")
    axis.set_title(title)
    axis.legend(fontsize=legend_fontsize)


def vector_samples_figure(real: Tensor, generated: Tensor, title: str) -> plt.Figure:
    """For vector data: the first two coordinates of real and generated points."""
    figure, axis = plt.subplots(figsize=(5, 5))
    vector_samples_axis(axis, real, generated, title)
    figure.tight_layout()
    return figure


def latent_scatter_axis(
    axis,
    normalised_latents: Tensor,
    gaussian: Tensor,
    title: str,
    size: float = 4,
    gaussian_alpha: float = 0.4,
    label: str = "normalised latents",
    legend_fontsize: float | None = None,
) -> None:
    """On one axis, at equal scales: the first two coordinates of normalised latents over N(0, I) samples."""
    axis.scatter(gaussian[:, 0], gaussian[:, 1], s=size, alpha=gaussian_alpha, label="N(0, I)")
    axis.scatter(normalised_latents[:, 0], normalised_latents[:, 1], s=size, alpha=0.6, label=label)
    axis.set_aspect("equal")
    axis.set_title(title)
    axis.legend(fontsize=legend_fontsize)


def latent_scatter_figure(normalised_latents: Tensor, gaussian: Tensor) -> plt.Figure:
    """First two coordinates of the normalised latents y = C (T(x) - m) against N(0, I) samples."""
    figure, axis = plt.subplots(figsize=(5, 5))
    latent_scatter_axis(axis, normalised_latents, gaussian, "latent space: data vs Gaussian")
    axis.set_xlabel("y[0]")
    axis.set_ylabel("y[1]")
    figure.tight_layout()
    return figure


def loss_curves_figure(histories: dict[str, pd.DataFrame]) -> plt.Figure:
    """Training loss and validation metric of every trainer against its step, log scale."""
    figure, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.4), squeeze=False)
    for axis, (name, history) in zip(axes[0], histories.items(), strict=True):
        axis.plot(history["step"], history["train_loss"], label="train loss")
        for column in history.columns:
            if column.startswith(VALIDATION_PREFIX):
                measured = history[["step", column]].dropna()
                axis.plot(measured["step"], measured[column], marker="o", markersize=3, label=column)
        axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_title(name)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_curves_against_seconds(axis, curves: dict[str, pd.DataFrame]) -> None:
    """One line per variant of a metric (column `value`) against training seconds (column `seconds`), log scale."""
    for name, curve in curves.items():
        axis.plot(curve["seconds"], curve["value"], marker="o", markersize=2.5, label=name)
    axis.set_yscale("log")
    axis.set_xlabel("training seconds (evaluation excluded)")


def curves_against_seconds_figure(curves: dict[str, pd.DataFrame], ylabel: str, title: str) -> plt.Figure:
    """plot_curves_against_seconds on a figure of its own, with its labels and a legend."""
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    plot_curves_against_seconds(axis, curves)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _panels(count: int, size: float) -> tuple[plt.Figure, list]:
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size), squeeze=False)
    for axis in axes.flat[count:]:
        axis.axis("off")
    return figure, list(axes.flat[:count])


def samples_by_variant_figure(samples: dict[str, Tensor], reference: Tensor | None, count: int = 16) -> plt.Figure:
    """Generated samples of every variant side by side: image grids, or the first two coordinates of vectors over the
    reference points (needed for vectors only)."""
    figure, axes = _panels(len(samples), 3.2)
    for axis, (name, images) in zip(axes, samples.items(), strict=True):
        if images.ndim == 4:
            _show(axis, images[:count], int(math.sqrt(count)) or 1, name)
        else:
            vector_samples_axis(axis, reference, images, name, size=3, alpha=0.4, legend_fontsize=7)
    figure.tight_layout()
    return figure


def latents_by_variant_figure(normalised: dict[str, Tensor]) -> plt.Figure:
    """Each variant's normalised held-out latents (first two coordinates) over N(0, I) samples."""
    figure, axes = _panels(len(normalised), 3.2)
    gaussian = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    for axis, (name, latents) in zip(axes, normalised.items(), strict=True):
        latent_scatter_axis(axis, latents, gaussian, name, size=3, gaussian_alpha=0.3, label="latents", legend_fontsize=7)
    figure.tight_layout()
    return figure


def threshold_curves_axis(axis, curves: dict[str, pd.DataFrame], column: str, thresholds: list[float]) -> None:
    """Each curve's `column` against step (log scale), the thresholds as dashed lines, each first crossing marked.

    curves: {label: DataFrame with step and column}, e.g. validation MSE against decoder steps (the paper's Figs. 6, 7).
    """
    for index, (label, curve) in enumerate(curves.items()):
        colour = f"C{index}"
        axis.plot(curve["step"], curve[column], color=colour, marker="o", markersize=2, label=label)
        for threshold in thresholds:
            crossing = first_crossing(curve, column, threshold)
            if crossing is not None:
                axis.plot(crossing["step"], crossing[column], "o", color=colour, markersize=8, fillstyle="none")
    for threshold in thresholds:
        axis.axhline(threshold, color="grey", linestyle="--", linewidth=1)
        axis.annotate(f"{threshold:g}", (1.0, threshold), xycoords=("axes fraction", "data"), fontsize=8, ha="right", va="bottom")
    axis.set_yscale("log")
    axis.legend(fontsize=8)


def overlay_seeds(figures: list[plt.Figure]) -> plt.Figure:
    """The first seed's figure with every other seed's lines drawn faintly on the same axes (the spread over seeds).

    figures: one per seed, drawn by the same function (same axes in the same order). Lines (curves, markers,
    threshold lines) are copied with their colour and style; scatter clouds and bands stay the first seed's only.
    """
    base = figures[0]
    for other in figures[1:]:
        for axis, other_axis in zip(base.axes, other.axes, strict=False):
            for line in other_axis.get_lines():
                axis.plot(
                    line.get_xdata(),
                    line.get_ydata(),
                    color=line.get_color(),
                    linestyle=line.get_linestyle(),
                    linewidth=line.get_linewidth(),
                    marker=line.get_marker(),
                    markersize=line.get_markersize(),
                    fillstyle=line.get_fillstyle(),
                    alpha=0.35,
                    label="_nolegend_",
                )
            axis.relim()
            axis.autoscale_view()
        plt.close(other)
    if len(figures) > 1:
        title = base._suptitle.get_text() if base._suptitle is not None else ""
        others = "seed 1" if len(figures) == 2 else f"seeds 1-{len(figures) - 1}"
        base.suptitle(f"{title}\nseed 0 in full; {others} as faint lines ({len(figures)} seeds)")
        base.tight_layout()
    return base


def iterations_against_thresholds_axis(
    axis, counts: dict[str, list[int | None]], budgets: dict[str, int], thresholds: list[float]
) -> None:
    """Iterations to each threshold of a range (log-log, lower thresholds to the right), one line per run.

    counts: {label: iterations per threshold, None where the run did not get there}; budgets: {label: the steps it
    ran}, where an unreached threshold is drawn as an open triangle: more than that many iterations.
    """
    for index, (label, iterations) in enumerate(counts.items()):
        colour = f"C{index}"
        reached = [(t, n) for t, n in zip(thresholds, iterations, strict=True) if n is not None]
        axis.plot([t for t, _ in reached], [n for _, n in reached], color=colour, marker="o", markersize=4, label=label)
        # Side by side (2% apart on the log axis) where several runs missed the same threshold within one budget.
        nudge = 1.02 ** (index - (len(counts) - 1) / 2)
        unreached = [t * nudge for t, n in zip(thresholds, iterations, strict=True) if n is None]
        axis.plot(unreached, [budgets[label]] * len(unreached), "^", color=colour, markersize=8, fillstyle="none")
    axis.plot([], [], "^", color="k", fillstyle="none", linestyle="none", label="not within the budget (more than)")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.invert_xaxis()
    axis.set_xticks(thresholds, [f"{t:g}" for t in thresholds], minor=False)
    axis.minorticks_off()
    axis.set_xlabel("validation MSE threshold (the range fixed in advance)")
    axis.set_ylabel("iterations to the threshold")
    axis.legend(fontsize=8)
