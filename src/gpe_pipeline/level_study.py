"""The trainings E3, E4 and E6 share (variants.LEVELS): the GME-level study's GPE encoder, one per seed, read at each
level it crossed, and the joint VAE that E4's VAE row and E6's VAE read, each at its own level.

Plain Python and PyTorch; nothing here imports Kedro.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
from torch import nn

from gpe_pipeline.core.models import NoModel
from gpe_pipeline.variants import DECODER_VS_GME, ITERATIONS, iterations_thresholds, level_values


def encoder_at_level(
    encoder: nn.Module,
    history: pd.DataFrame,
    snapshots: dict[float, dict[str, Any]],
    decoder_vs_gme_levels: dict[str, float],
    iterations_levels: dict[str, float],
    index: int,
) -> tuple[nn.Module, pd.DataFrame, NoModel]:
    """The study's encoder as it was at the first evaluation at or below level `index` of variants.level_values, its
    history up to that step and its joint decoder (none: GPE's decoder stage trains one): what the encoder stage with
    that level as its target would have returned.

    snapshots: {level: {"step", "value", "weights"}} (training.snapshot_at). A level the run never reached gives the
    encoder at the end of its budget and the whole history (as a run that missed its target).
    """
    levels = level_values({DECODER_VS_GME: {"gme_levels": decoder_vs_gme_levels}, ITERATIONS: {"gme_levels": iterations_levels}})
    snapshot = snapshots.get(levels[index])
    if snapshot is None:
        return encoder, history, NoModel()
    (at_level,), cut = _at_snapshot(snapshot, history, {"": encoder})
    return at_level, cut, NoModel()


def _at_snapshot(
    snapshot: dict[str, Any], history: pd.DataFrame, models: dict[str, nn.Module]
) -> tuple[list[nn.Module], pd.DataFrame]:
    """Copies of `models` (in eval mode) holding a snapshot's weights, each those under its key's prefix ("": all of
    them), and the history up to the snapshot's step. The models passed in are left as they are."""
    copies = []
    for prefix, model in models.items():
        at_level = copy.deepcopy(model)
        at_level.load_state_dict({k.removeprefix(prefix): v for k, v in snapshot["weights"].items() if k.startswith(prefix)})
        copies.append(at_level.eval())
    return copies, history[history["step"] <= snapshot["step"]].reset_index(drop=True)


def joint_at_level(
    encoder: nn.Module,
    joint_decoder: nn.Module,
    history: pd.DataFrame,
    snapshots: dict[float, dict[str, Any]],
    level: float | None,
) -> tuple[nn.Module, pd.DataFrame, nn.Module]:
    """The study's joint VAE (variants.SHARED_VAE) as a joint training with target `level` would have returned it:
    its encoder, history up to the first evaluation at or below the level, and its jointly trained decoder.

    snapshots: {level: {"step", "value", "weights"}}, the JointAutoencoder's weights ("encoder.*", "decoder.*"). A
    level it never reached, or None (no target), gives the end of its budget and the whole history.
    """
    snapshot = snapshots.get(level) if level is not None else None
    if snapshot is None:
        return encoder, history, joint_decoder
    (encoder_at, decoder_at), cut = _at_snapshot(snapshot, history, {"encoder.": encoder, "decoder.": joint_decoder})
    return encoder_at, cut, decoder_at


def vae_at_lowest_threshold(encoder, joint_decoder, history, snapshots, thresholds) -> tuple[nn.Module, pd.DataFrame, nn.Module]:
    """E4's VAE row: the study's joint VAE at E4's lowest threshold (thresholds: exp_iterations_to_threshold's)."""
    return joint_at_level(encoder, joint_decoder, history, snapshots, iterations_thresholds(thresholds)[-1])


def vae_at_decoder_target(encoder, joint_decoder, history, snapshots, train_decoder) -> tuple[nn.Module, pd.DataFrame, nn.Module]:
    """E6's VAE: the study's joint VAE at the decoder stage's target (train_decoder: E6's VAE's own section)."""
    return joint_at_level(encoder, joint_decoder, history, snapshots, train_decoder["training"].get("target"))
