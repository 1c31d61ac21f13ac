"""Nodes of E3 (paper 8.3, Fig. 6): decoders trained on GPE encoders stopped at three GME levels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from gpe_pipeline.plotting import threshold_curves_axis
from gpe_pipeline.readings import encoder_stop, evaluations, first_step_at_or_below, last_step, last_value
from gpe_pipeline.variants import DECODER_LEVEL_SLOTS as LEVEL_SLOTS
from gpe_pipeline.variants import decoder_level_name as variant_name
from gpe_pipeline.variants import decoder_levels as gme_levels
from gpe_pipeline.variants import decoder_threshold as loss_threshold
from gpe_pipeline.verdicts import HELD, NOT_HELD, NOT_MEASURABLE, claim, format_steps

GME, MSE = "validation_gme", "validation_mse"


def summarise_decoder_vs_gme(
    level_grid: dict[str, float], threshold: float, **histories: pd.DataFrame
) -> tuple[pd.DataFrame, Figure, dict]:
    """The table (one row per level), the encoder and decoder curves, and the Fig. 6 claim with its verdict.

    histories: "<variant>__encoder" and "<variant>__decoder" histories of every level's variant.
    """
    levels, threshold = gme_levels(level_grid), loss_threshold(threshold)
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
                "iterations_to_threshold": first_step_at_or_below(decoder, MSE, threshold),
                "final_validation_mse": last_value(decoder, MSE),
            }
        )
    table = pd.DataFrame(rows)
    table["iterations_to_threshold"] = table["iterations_to_threshold"].astype("Int64")
    findings = {
        "experiment": "E3",
        "title": "Decoder convergence on GPE encoders stopped at three GME levels (Fig. 6)",
        "claims": [convergence_claim(table, threshold)],
        "threshold": threshold,
        "gme_levels": levels,
        "notes": [
            "Each level's encoder is a GPE encoder trained from the same seed until its validation GME is at or below "
            "the level (or its budget ends); each decoder is fresh, with the same seed and settings, and stops at "
            "the threshold (or its budget).",
            "Iterations are read at the decoder's evaluations (decoder_eval_every apart).",
        ],
    }
    figure = convergence_figure(
        {f"level {levels[s]:g}": evaluations(histories[f"{variant_name(s)}__encoder"], GME) for s in LEVEL_SLOTS},
        {
            f"GME {r.gme_reached:.3g} (level {r.gme_level:g})": evaluations(histories[f"{r.variant}__decoder"], MSE)
            for r in table.itertuples()
        },
        list(levels.values()),
        threshold,
    )
    return table, figure, findings


def _spacing(curve: pd.DataFrame) -> int | None:
    """The step between the first two evaluations of a curve (its eval_every), None with fewer than two."""
    return int(curve["step"].iloc[1] - curve["step"].iloc[0]) if len(curve) > 1 else None


def convergence_claim(table: pd.DataFrame, threshold: float) -> dict[str, str]:
    """Fig. 6: the iterations to the threshold fall as the encoder's GME level falls."""
    measured = "; ".join(
        f"level {row.gme_level:g} (GME reached {row.gme_reached:.3g} in {row.encoder_steps:,} encoder steps): "
        f"{format_steps(None if pd.isna(row.iterations_to_threshold) else int(row.iterations_to_threshold), row.decoder_steps)}"
        " decoder iterations"
        for row in table.itertuples()
    )
    iterations = list(table["iterations_to_threshold"])
    if not table["level_reached"].all():
        verdict = NOT_MEASURABLE
    elif any(pd.isna(n) for n in iterations):
        verdict = NOT_MEASURABLE
    else:
        falling = all(later <= earlier for earlier, later in zip(iterations, iterations[1:], strict=False))
        verdict = HELD if falling and iterations[-1] < iterations[0] else NOT_HELD
    return claim(
        "A lower GME level gives faster decoder convergence (Fig. 6)",
        "Fig. 6: on CIFAR-10, the decoder's loss falls faster the lower the GME at which its encoder stopped",
        f"iterations to validation MSE {threshold:g}, {measured}",
        verdict,
        "held when, from the highest level to the lowest, the iterations never rise and the lowest level's are "
        "fewer than the highest's; not measurable when an encoder did not reach its level or a decoder did not "
        "reach the threshold within its budget",
    )


def convergence_figure(
    encoder_curves: dict[str, pd.DataFrame], decoder_curves: dict[str, pd.DataFrame], levels: list[float], threshold: float
) -> Figure:
    """Left: each encoder's validation GME with the levels; right (Fig. 6): the decoders' validation MSE on one plot."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    threshold_curves_axis(left, encoder_curves, GME, levels)
    left.set_xlabel("encoder step")
    left.set_ylabel("validation GME")
    left.set_title("GPE encoders stopped at three GME levels\n(one seed: the curves coincide until each stops)")
    threshold_curves_axis(right, decoder_curves, MSE, [threshold])
    right.set_xlabel("decoder step")
    right.set_ylabel("validation MSE")
    right.set_title(
        "fresh decoders on the frozen encoders (paper Fig. 6)\ncircles: the first evaluation at or below the threshold"
    )
    figure.suptitle("E3: decoder convergence against the encoder's GME level")
    figure.tight_layout()
    return figure
