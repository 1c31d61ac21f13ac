"""Readings of a run's outputs that several pipelines' summaries take: training histories (last steps and values,
first crossings of a threshold, the evaluations, a divergence), stage costs and reconstruction curves of a variant,
a summary node's inputs by variant, and the markdown table they are printed in.

Plain Python and pandas; nothing here imports Kedro. A history is a training loop's DataFrame (a `step` column and
one column per recorded metric, NaN where a row did not measure it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from gpe_pipeline.verdicts import iteration_bounds


def by_variant(outputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"vae__flow_history": x, ...} (the node's keyword inputs) -> {"vae": {"flow_history": x, ...}, ...}."""
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in outputs.items():
        variant, _, entry = key.partition("__")
        grouped.setdefault(variant, {})[entry] = value
    return grouped


def last_step(history: pd.DataFrame | None) -> int:
    """The last recorded step of a training history; 0 for an empty one."""
    return int(history["step"].iloc[-1]) if history is not None and len(history) else 0


def last_value(history: pd.DataFrame, column: str) -> float:
    """The last recorded (non-missing) value of a history column; nan when there is none."""
    if column not in history:
        return math.nan
    values = history[column].dropna()
    return float(values.iloc[-1]) if len(values) else math.nan


def first_crossing(curve: pd.DataFrame, column: str, threshold: float) -> pd.Series | None:
    """The first row of a curve whose `column` is at or below threshold; None when the curve never gets there."""
    if column not in curve:
        return None
    reached = curve[curve[column] <= threshold]
    return reached.iloc[0] if len(reached) else None


def first_step_at_or_below(history: pd.DataFrame, column: str, threshold: float) -> int | None:
    """The first recorded step whose `column` is at or below threshold; None when the history never gets there."""
    row = first_crossing(history, column, threshold)
    return int(row["step"]) if row is not None else None


def threshold_column(threshold: float) -> str:
    """iterations_to_0.1: a table's column of the iterations to one threshold."""
    return f"iterations_to_{threshold:g}"


def iterations_to_thresholds(history: pd.DataFrame, column: str, thresholds: list[float]) -> dict[str, int | None]:
    """{threshold_column(t): the first recorded step whose `column` is at or below t, None where never} for each t."""
    return {threshold_column(t): first_step_at_or_below(history, column, t) for t in thresholds}


def threshold_iterations(row: Any, threshold: float) -> int | None:
    """A table row's iterations to one threshold (its threshold_column), None where the run did not get there."""
    value = row[threshold_column(threshold)]
    return None if pd.isna(value) else int(value)


def bounds_at(row: Any, threshold: float) -> tuple[float, float]:
    """What a table row's iterations to one threshold are known to be, given the steps its decoder ran
    (verdicts.iteration_bounds: exact when reached, above decoder_steps when not)."""
    return iteration_bounds(threshold_iterations(row, threshold), int(row["decoder_steps"]))


def evaluations(history: pd.DataFrame, *columns: str, before_step: int | None = None) -> pd.DataFrame:
    """The rows (step, *columns) where every column was measured and is finite; only steps < before_step when given."""
    if any(column not in history for column in columns):
        return pd.DataFrame({name: [] for name in ("step", *columns)})
    rows = history[["step", *columns]].replace([np.inf, -np.inf], np.nan).dropna()
    if before_step is not None:
        rows = rows[rows["step"] < before_step]
    return rows.reset_index(drop=True)


def diverged_step(history: pd.DataFrame) -> int | None:
    """The step whose loss diverged (training.on_divergence: stop records it), or None for a run that did not."""
    if "diverged_step" not in history:
        return None
    steps = history["diverged_step"].dropna()
    return int(steps.iloc[0]) if len(steps) else None


def encoder_stop(history: pd.DataFrame, column: str = "validation_gme") -> dict[str, float | int]:
    """Where an encoder stopped: {"steps": its last recorded step, "gme": its last measured validation GME}."""
    return {"steps": last_step(history), "gme": last_value(history, column)}


def stage_cost(history: pd.DataFrame) -> tuple[int, float]:
    """Steps and training seconds (evaluation excluded) a stage's history ends at; (0, 0) for an empty history."""
    if history is None or len(history) == 0:
        return 0, 0.0
    return last_step(history), float(history["train_elapsed_s"].iloc[-1])


def trained_jointly(decoder_history: pd.DataFrame) -> bool:
    """Whether the decoder stage kept a baseline's jointly trained decoder (its steps belong to the encoder stage)."""
    return "trained_jointly" in decoder_history and bool(decoder_history["trained_jointly"].any())


def stage_costs(outputs: dict[str, Any]) -> tuple[tuple[int, float], tuple[int, float], tuple[int, float]]:
    """(steps, training seconds) of a variant's encoder, decoder and flow stages, in that order (stage_cost of each).

    A jointly trained decoder costs (0, 0): its steps and seconds belong to the encoder stage.
    """
    joint = trained_jointly(outputs["decoder_history"])
    decoder = (0, 0.0) if joint else stage_cost(outputs["decoder_history"])
    return stage_cost(outputs["encoder_history"]), decoder, stage_cost(outputs["flow_history"])


def reconstruction_curve(outputs: dict[str, Any]) -> pd.DataFrame:
    """Validation reconstruction MSE against training seconds since the variant started (the paper's Fig. 10).

    A decoder trained after its encoder (GPE, or a baseline with fresh_decoder) is shifted right by the
    encoder stage's training seconds; a jointly trained decoder's curve already starts at 0.
    """
    history = outputs["decoder_history"].dropna(subset=["validation_mse"])
    shift = 0.0 if trained_jointly(outputs["decoder_history"]) else stage_cost(outputs["encoder_history"])[1]
    seconds = history["train_elapsed_s"].to_numpy() + shift
    return pd.DataFrame({"seconds": seconds, "value": history["validation_mse"].to_numpy()})


def json_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records for a findings JSON file: every NaN value None (JSON's null, which NaN is not)."""
    return [
        {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()} for row in rows
    ]


def markdown_table(table: pd.DataFrame) -> str:
    """A markdown table of a DataFrame, numbers to 4 significant digits."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
