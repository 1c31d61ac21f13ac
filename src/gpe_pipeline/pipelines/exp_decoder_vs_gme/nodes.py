"""Nodes of E3 (paper 8.3, Fig. 6): decoders trained on GPE encoders stopped at three GME levels."""

from __future__ import annotations

from itertools import pairwise

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from gpe_pipeline.plotting import iterations_against_thresholds_axis, threshold_curves_axis
from gpe_pipeline.readings import (
    bounds_at,
    encoder_stop,
    evaluations,
    iterations_to_thresholds,
    last_step,
    last_value,
    threshold_column,
    threshold_iterations,
)
from gpe_pipeline.variants import DECODER_LEVEL_SLOTS as LEVEL_SLOTS
from gpe_pipeline.variants import DECODER_VS_GME as EXPERIMENT
from gpe_pipeline.variants import decoder_level_name as variant_name
from gpe_pipeline.variants import decoder_levels as gme_levels
from gpe_pipeline.variants import decoder_thresholds as loss_thresholds
from gpe_pipeline.verdicts import (
    RANGE_RULE,
    at_most,
    below,
    claim,
    every,
    format_ratio,
    format_steps,
    range_tally,
    ratio_bounds,
    verdict_over_range,
)

GME, MSE = "validation_gme", "validation_mse"


def summarise_decoder_vs_gme(
    level_grid: dict[str, float], thresholds: dict[str, float], **histories: pd.DataFrame
) -> tuple[pd.DataFrame, Figure, dict]:
    """The table (one row per level), the encoder and decoder curves, and the Fig. 6 claim with its verdict.

    thresholds: exp_decoder_vs_gme.thresholds (the range's ends and its number of points); histories:
    "<variant>__encoder" and "<variant>__decoder" histories of every level's variant.
    """
    levels, thresholds = gme_levels(level_grid), loss_thresholds(thresholds)
    rows = []
    for slot in LEVEL_SLOTS:
        encoder, decoder = histories[f"{variant_name(slot)}__encoder"], histories[f"{variant_name(slot)}__decoder"]
        stop = encoder_stop(encoder)
        rows.append(
            {
                "variant": variant_name(slot),
                "gme_level": levels[slot],
                "encoder_steps": stop["steps"],
                "gme_reached": stop["gme"],
                "level_reached": bool(stop["gme"] <= levels[slot]),
                "decoder_steps": last_step(decoder),
                "decoder_eval_every": _spacing(evaluations(decoder, MSE)),
                **iterations_to_thresholds(decoder, MSE, thresholds),
                "final_validation_mse": last_value(decoder, MSE),
            }
        )
    table = pd.DataFrame(rows)
    for threshold in thresholds:
        table[threshold_column(threshold)] = table[threshold_column(threshold)].astype("Int64")
    findings = {
        "experiment": "E3",
        "title": "Decoder convergence on GPE encoders stopped at three GME levels (Fig. 6)",
        "claims": [convergence_claim(table, thresholds)],
        "thresholds": thresholds,
        "gme_levels": levels,
        "notes": [
            "Each level's encoder is a GPE encoder trained from the same seed until its validation GME is at or below "
            "the level (or its budget ends); each decoder is fresh, with the same seed and settings, and stops at "
            "the range's lowest threshold (or its budget).",
            f"The thresholds are {EXPERIMENT}.thresholds: validation MSEs log-spaced from Table 1's first threshold "
            "(0.1) down to the dataset's second one, fixed before the runs. The GME levels on the digits were chosen "
            "from an exploratory run as levels the default encoder reaches within its budget (the YAML says so).",
            "Iterations are read at the decoder's evaluations (decoder_eval_every apart).",
        ],
    }
    decoder_curves = {
        f"GME {r.gme_reached:.3g} (level {r.gme_level:g})": evaluations(histories[f"{r.variant}__decoder"], MSE)
        for r in table.itertuples()
    }
    figure = convergence_figure(
        {f"level {levels[s]:g}": evaluations(histories[f"{variant_name(s)}__encoder"], GME) for s in LEVEL_SLOTS},
        decoder_curves,
        table,
        list(levels.values()),
        thresholds,
    )
    return table, figure, findings


def _spacing(curve: pd.DataFrame) -> int | None:
    """The step between the first two evaluations of a curve (its eval_every), None with fewer than two."""
    return int(curve["step"].iloc[1] - curve["step"].iloc[0]) if len(curve) > 1 else None


def falling_at(rows: list[pd.Series], threshold: float) -> bool | None:
    """Whether, from the highest level to the lowest, the iterations to one threshold never rise and the lowest
    level's are fewer than the highest's; None when the bounds of unreached counts cannot tell."""
    bounds = [bounds_at(row, threshold) for row in rows]
    never_rise = [at_most(later, earlier) for earlier, later in pairwise(bounds)]
    return every([*never_rise, below(bounds[-1], bounds[0])])


def convergence_claim(table: pd.DataFrame, thresholds: list[float]) -> dict[str, str]:
    """Fig. 6: the iterations to each threshold of the range fall as the encoder's GME level falls."""
    rows = [row for _, row in table.iterrows()]
    levels = " / ".join(f"{row['gme_level']:g}" for row in rows)
    encoders = " / ".join(f"{row['gme_reached']:.3g}" for row in rows)
    steps = " / ".join(f"{row['encoder_steps']:,}" for row in rows)
    per_threshold = "; ".join(
        f"{t:g}: "
        + " / ".join(format_steps(threshold_iterations(row, t), int(row["decoder_steps"])) for row in rows)
        + f" (highest level / lowest {format_ratio(ratio_bounds(bounds_at(rows[0], t), bounds_at(rows[-1], t)))})"
        for t in thresholds
    )
    levels_reached = bool(table["level_reached"].all())
    decisions = [falling_at(rows, t) if levels_reached else None for t in thresholds]
    tally = range_tally(decisions, thresholds) + ("" if levels_reached else "; an encoder did not reach its level")
    return claim(
        "A lower GME level gives faster decoder convergence (Fig. 6)",
        "Fig. 6: on CIFAR-10, the decoder's loss falls faster the lower the GME at which its encoder stopped",
        f"decoder iterations to each validation MSE of the range, levels {levels} (GME reached {encoders} in {steps} "
        f"encoder steps): {per_threshold}; {tally}",
        verdict_over_range(decisions),
        f"at each threshold of {EXPERIMENT}.thresholds ({len(thresholds)} validation MSEs log-spaced from "
        f"{thresholds[0]:g} to {thresholds[-1]:g}, fixed before the runs): held when, from the highest level to the "
        "lowest, the iterations never rise and the lowest level's are fewer than the highest's, a decoder that did "
        f"not reach the threshold within its budget B counting as needing more than B; {RANGE_RULE}; not measurable "
        "when an encoder did not reach its level",
    )


def convergence_figure(
    encoder_curves: dict[str, pd.DataFrame],
    decoder_curves: dict[str, pd.DataFrame],
    table: pd.DataFrame,
    levels: list[float],
    thresholds: list[float],
) -> Figure:
    """Left: each encoder's validation GME with the levels; middle (Fig. 6): the decoders' validation MSE on one plot,
    with the thresholds; right: each decoder's iterations against the threshold."""
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(18, 4.8))
    threshold_curves_axis(left, encoder_curves, GME, levels)
    left.set_xlabel("encoder step")
    left.set_ylabel("validation GME")
    left.set_title("GPE encoders stopped at three GME levels\n(one seed: the curves coincide until each stops)")
    threshold_curves_axis(middle, decoder_curves, MSE, thresholds)
    middle.set_xlabel("decoder step")
    middle.set_ylabel("validation MSE")
    middle.set_title(
        "fresh decoders on the frozen encoders (paper Fig. 6)\ncircles: the first evaluation at or below each threshold"
    )
    rows = [row for _, row in table.iterrows()]
    labels = list(decoder_curves)
    iterations_against_thresholds_axis(
        right,
        {label: [threshold_iterations(row, t) for t in thresholds] for label, row in zip(labels, rows, strict=True)},
        {label: int(row["decoder_steps"]) for label, row in zip(labels, rows, strict=True)},
        thresholds,
    )
    right.set_title("decoder iterations to each threshold of the range")
    figure.suptitle("E3: decoder convergence against the encoder's GME level")
    figure.tight_layout()
    return figure
