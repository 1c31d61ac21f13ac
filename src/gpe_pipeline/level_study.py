"""The GME-level study E3 and E4 share: one GPE encoder per seed, read at each level it crossed (variants.LEVELS).

Plain Python and PyTorch; nothing here imports Kedro.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
from torch import nn

from gpe_pipeline.core.models import NoModel
from gpe_pipeline.variants import DECODER_VS_GME, ITERATIONS, level_values


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
    at_level = copy.deepcopy(encoder)
    at_level.load_state_dict(snapshot["weights"])
    return at_level.eval(), history[history["step"] <= snapshot["step"]].reset_index(drop=True), NoModel()
