"""Nodes of E1 (Fig. 3): how well 2-D latents keep the gmm's grid."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

from gpe_pipeline.verdicts import HELD, NOT_HELD, claim

CORRELATION_CRITERION = 0.95  # SPEC 4: GPE keeps the grid when its correlation exceeds this
MAX_POINTS = 1000  # held-out points whose pairs are compared (about half a million pairs)


def pairwise_distance_correlation(a: Tensor, b: Tensor) -> float:
    """Pearson correlation between the distances of all pairs i < j of the rows of a (N, p) and of b (N, q)."""
    if len(a) != len(b) or len(a) < 3:
        raise ValueError(f"pairwise_distance_correlation needs N >= 3 matching rows, got {len(a)} and {len(b)}")
    rows, cols = torch.triu_indices(len(a), len(a), offset=1)
    da = (a[rows].double() - a[cols].double()).norm(dim=1)
    db = (b[rows].double() - b[cols].double()).norm(dim=1)
    da, db = da - da.mean(), db - db.mean()
    return float((da * db).sum() / (da.norm() * db.norm()))


def summarise_gmm_latents(
    heldout_data: dict[str, Any], gpe_latents: Tensor, vae_latents: Tensor
) -> tuple[pd.DataFrame, Figure, dict]:
    """Correlation of latent pair distances with the data plane's (first two coordinates), a scatter figure, the claim."""
    plane = heldout_data["x"][:MAX_POINTS, :2].float()
    labels = heldout_data["labels"][:MAX_POINTS]
    latents = {"gpe": gpe_latents[:MAX_POINTS], "vae": vae_latents[:MAX_POINTS]}
    correlation = {method: pairwise_distance_correlation(points, plane) for method, points in latents.items()}
    table = pd.DataFrame(
        [
            {"method": m, "latent_dim": int(z.shape[1]), "points": len(z), "distance_correlation": correlation[m]}
            for m, z in latents.items()
        ]
    )
    held = correlation["gpe"] > CORRELATION_CRITERION and correlation["vae"] < correlation["gpe"]
    findings = {
        "experiment": "E1",
        "title": "GMM in R^500 to 2-D latents (Fig. 3)",
        "claims": [
            claim(
                "GPE keeps the GMM grid and the VAE distorts it (Fig. 3)",
                "Fig. 3: GPE's 2-D latents reproduce the grid of mixture means; the VAE's are warped towards N(0, I)",
                f"correlation of pairwise distances with the data plane over {len(plane)} held-out points: "
                f"GPE {correlation['gpe']:.3f}, VAE {correlation['vae']:.3f}",
                HELD if held else NOT_HELD,
                f"SPEC 4 criterion: GPE > {CORRELATION_CRITERION} and the VAE lower",
            )
        ],
    }
    return table, scatter_figure(plane, latents, labels, correlation), findings


def scatter_figure(plane: Tensor, latents: dict[str, Tensor], labels: Tensor, correlation: dict[str, float]) -> Figure:
    """The data's first two coordinates beside each method's 2-D latents, coloured by mixture component."""
    figure, axes = plt.subplots(1, 1 + len(latents), figsize=(4.2 * (1 + len(latents)), 4.2))
    panels = {
        "data: first two coordinates": plane,
        **{f"{m.upper()} latents (r = {correlation[m]:.3f})": z for m, z in latents.items()},
    }
    for axis, (title, points) in zip(axes, panels.items(), strict=True):
        axis.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab20", s=4)
        axis.set_title(title)
        axis.set_aspect("equal")
    figure.suptitle("E1: the gmm in R^500 encoded to 2-D (paper Fig. 3)")
    figure.tight_layout()
    return figure
