"""What the paper's experiments (E1-E6) share: grid overrides, curve readings, and the claims a report checks.

Plain Python, pandas and torch; nothing here imports Kedro. Each experiment's summary node turns its variants'
outputs into a results table, a figure and its findings: the measurements behind each of the paper's claims it
tests, each with a verdict computed here from the numbers (never written by hand).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from gpe_pipeline.params import ParameterError
from gpe_pipeline.variants import merge_overrides

HELD, NOT_HELD, NOT_MEASURABLE = "held", "did not hold", "not measurable at this scale"


def combine(*overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge partial override dicts, later ones winning (the merge into the stage sections checks the keys)."""
    return functools.reduce(lambda merged, override: merge_overrides(merged, override, where=None), overrides, {})


def claim(claim: str, paper: str, measured: str, verdict: str, reason: str = "") -> dict[str, str]:
    """One of the paper's claims, the paper's figure for it, this run's measurement and the verdict."""
    if verdict not in (HELD, NOT_HELD, NOT_MEASURABLE):
        raise ValueError(f"unknown verdict {verdict!r}")
    return {"claim": claim, "paper": paper, "measured": measured, "verdict": verdict, "reason": reason}


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


def last_step(history: pd.DataFrame | None) -> int:
    """The last recorded step of a training history; 0 for an empty one."""
    return int(history["step"].iloc[-1]) if history is not None and len(history) else 0


def last_value(history: pd.DataFrame, column: str) -> float:
    """The last recorded (non-missing) value of a history column; nan when there is none."""
    if column not in history:
        return math.nan
    values = history[column].dropna()
    return float(values.iloc[-1]) if len(values) else math.nan


def log_log_slope(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> float:
    """Least-squares slope of log y against log x over the points where both are positive and finite; nan if < 2."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2 or np.ptp(np.log(x[keep])) == 0:
        return math.nan
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def pairwise_distance_correlation(a: Tensor, b: Tensor) -> float:
    """Pearson correlation between the distances of all pairs i < j of the rows of a (N, p) and of b (N, q)."""
    if len(a) != len(b) or len(a) < 3:
        raise ValueError(f"pairwise_distance_correlation needs N >= 3 matching rows, got {len(a)} and {len(b)}")
    rows, cols = torch.triu_indices(len(a), len(a), offset=1)
    da = (a[rows].double() - a[cols].double()).norm(dim=1)
    db = (b[rows].double() - b[cols].double()).norm(dim=1)
    da, db = da - da.mean(), db - db.mean()
    return float((da * db).sum() / (da.norm() * db.norm()))


def format_steps(step: int | None, budget: int) -> str:
    """'1,200' or 'not within 4,000' for an iteration count a run may not reach."""
    return f"{step:,}" if step is not None else f"not within {budget:,}"


def probe_outcome(history: pd.DataFrame, min_decrease: float, also: tuple[str, ...] = ()) -> dict[str, Any]:
    """Whether a short learning-rate probe converged stably: outcome stable | unstable | diverged, and why.

    history: a training history whose train_loss (and each column of `also`, e.g. a joint loss's train_reconstruction
    term) is the mean over each logging window (equal windows), with diverged_step where a loss was not finite
    (TrainConfig.on_divergence "stop"). Stable means: every loss finite; for train_loss and each column of `also`,
    the mean over the last fifth of the windows at most (1 - min_decrease) times the mean over the first fifth, and
    no later window's mean above the first fifth's (no blow-up on the way). first_fifth_loss and last_fifth_loss
    are train_loss's.
    """
    step = diverged_step(history)
    result: dict[str, Any] = {"first_fifth_loss": math.nan, "last_fifth_loss": math.nan, "diverged_step": None}
    if step is not None:
        return {**result, "outcome": "diverged", "diverged_step": step, "detail": f"diverged at step {step}"}
    details = []
    for column in ("train_loss", *also):
        losses = history[column].to_numpy(dtype=float) if column in history else np.array([])
        name = "loss" if column == "train_loss" else column.removeprefix("train_")
        if len(losses) < 2 or not np.isfinite(losses).all():
            return {**result, "outcome": "unstable", "detail": f"fewer than 2 finite logged values of {column}"}
        fifth = max(1, len(losses) // 5)
        first, last = float(losses[:fifth].mean()), float(losses[-fifth:].mean())
        if column == "train_loss":
            result.update(first_fifth_loss=first, last_fifth_loss=last)
        worst = fifth + int(np.argmax(losses[fifth:]))  # len(losses) >= 2 > fifth
        if losses[worst] > first:
            step = int(history["step"].iloc[worst])
            detail = f"{name} rose to {losses[worst] / first:.2f}x the first fifth's by step {step}"
            return {**result, "outcome": "unstable", "detail": detail}
        if last > (1 - min_decrease) * first:
            detail = f"last fifth's {name} {last / first:.2f}x the first fifth's; stable needs <= {1 - min_decrease:.2f}x"
            return {**result, "outcome": "unstable", "detail": detail}
        details.append(f"last fifth's {name} {last / first:.2f}x the first fifth's")
    return {**result, "outcome": "stable", "detail": "; ".join(details)}


def largest_stable_rate(outcomes: Mapping[float, str]) -> tuple[float, str]:
    """The largest learning rate whose probe outcome is stable, else the smallest probed, and how it was chosen.

    outcomes: {learning rate: outcome of probe_outcome}.
    """
    if not outcomes:
        raise ValueError("largest_stable_rate needs at least one probed learning rate")
    stable = [rate for rate, outcome in outcomes.items() if outcome == "stable"]
    if stable:
        return max(stable), "the largest stable rate"
    return min(outcomes), "no rate was stable: the smallest probed"


def seconds_to_threshold(curve: pd.DataFrame, threshold: float) -> float | None:
    """The first `seconds` of a curve (columns seconds, value) whose value is at or below threshold; None if never."""
    row = first_crossing(curve, "value", threshold)
    return float(row["seconds"]) if row is not None else None


def is_number(value: Any) -> bool:
    """Whether a parameter value is a finite real number (a bool is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_and_ordered(numbers: list[Any], order: str | None = None, integers: bool = False) -> bool:
    """Whether every value is a finite number > 0 (an int when `integers`), strictly increasing or decreasing when
    `order` is "increasing" or "decreasing"; the one check behind every experiment's number and grid parameters."""
    if not all(is_number(v) and v > 0 and (isinstance(v, int) or not integers) for v in numbers):
        return False
    pairs = list(zip(numbers, numbers[1:], strict=False))
    return order is None or all((a < b) if order == "increasing" else (a > b) for a, b in pairs)


def parameter_error(key: str, rule: str, value: Any) -> ParameterError:
    """The one-line error naming the parameter to change: '<key> <rule>, got <value>: change <key> in the parameters'."""
    return ParameterError(f"{key} {rule}, got {value!r}: change {key} in the parameters")


def positive_number(value: Any, key: str, rule: str) -> float:
    """A parameter that must be a finite number > 0, checked before any run (rule: e.g. "must be a positive number")."""
    if not positive_and_ordered([value]):
        raise parameter_error(key, rule, value)
    return float(value)


def positive_numbers(
    values: Any, key: str, rule: str, order: str | None = None, at_least: int = 1, integers: bool = False
) -> list[Any]:
    """A parameter that must be a list of at least `at_least` numbers as positive_and_ordered checks them.

    Returns the values as floats (ints when `integers`); raises parameter_error(key, rule, values) otherwise.
    """
    numbers = list(values) if isinstance(values, (list, tuple)) else []
    if len(numbers) < max(at_least, 1) or not positive_and_ordered(numbers, order, integers):
        raise parameter_error(key, rule, values)
    return [int(v) if integers else float(v) for v in numbers]


def grid_values(values: Any, slots: tuple[str, ...], key: str, increasing: bool) -> dict[str, float]:
    """A fixed grid's numbers by slot name (e.g. learning rates low, mid, high), checked before any run.

    The pipeline's variants are named after the slots (Kedro builds pipelines before it reads parameters), so the
    parameter must give exactly these slots, each a positive number, strictly increasing or decreasing in slot
    order. key: the parameter's dotted name, for the one-line error. Returns {slot: float}.
    """
    order = "increasing" if increasing else "decreasing"
    rule = f"must map {list(slots)} to positive numbers, {order} in that order"
    if not isinstance(values, Mapping) or sorted(values) != sorted(slots):
        raise parameter_error(key, rule, values)
    if not positive_and_ordered([values[slot] for slot in slots], order):
        raise parameter_error(key, rule, dict(values))
    return {slot: float(values[slot]) for slot in slots}


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


def iteration_bounds(step: int | None, budget: int) -> tuple[float, float]:
    """What an iteration count is known to be: (n, n) for a run that reached its threshold at step n, else
    (budget + 1, inf) for one that had not reached it after `budget` steps."""
    return (float(step), float(step)) if step is not None else (float(budget + 1), math.inf)


def ratio_bounds(numerator: tuple[float, float], denominator: tuple[float, float]) -> tuple[float, float]:
    """Bounds of a / b from bounds of a and of b (all positive; inf where unbounded)."""
    return numerator[0] / denominator[1], (numerator[1] / denominator[0] if denominator[0] > 0 else math.inf)


def below(a: tuple[float, float], b: tuple[float, float]) -> bool | None:
    """Whether a < b for values known only within bounds: True, False, or None when the bounds cannot tell."""
    if a[1] < b[0]:
        return True
    if a[0] >= b[1]:
        return False
    return None
