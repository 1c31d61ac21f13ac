"""An experiment's own parameters: the checks of its numbers and grids, before any run, with one-line errors that
name the key to change (the parameter layer, gpe_pipeline.variants, runs them as it derives each variant).

Plain Python; nothing here imports Kedro.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gpe_pipeline.params import ParameterError


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


RANGE_KEYS = ("highest", "lowest", "points")


def threshold_range(values: Any, key: str) -> list[float]:
    """A range of thresholds fixed in advance, {highest, lowest, points}, checked before any run: `points` values
    log-spaced from highest down to lowest, highest first; the two ends exact, those between rounded to 3 significant
    digits (they name table columns). key: the parameter's dotted name, for the one-line error.
    """
    rule = (
        "must map highest and lowest to positive numbers (highest above lowest) and points to a whole number of at "
        "least 2 distinct values at 3 significant digits: points log-spaced values from highest down to lowest"
    )
    if not isinstance(values, Mapping) or sorted(values) != sorted(RANGE_KEYS):
        raise parameter_error(key, rule, values)
    highest, lowest, points = (values[name] for name in RANGE_KEYS)
    ends_ordered = positive_and_ordered([highest, lowest], "decreasing")
    if not (ends_ordered and positive_and_ordered([points], integers=True) and points >= 2):
        raise parameter_error(key, rule, dict(values))
    between = [float(f"{highest * (lowest / highest) ** (i / (points - 1)):.3g}") for i in range(1, points - 1)]
    grid = [float(highest), *between, float(lowest)]
    if not positive_and_ordered(grid, "decreasing"):  # too many points for ends this close at 3 digits
        raise parameter_error(key, rule, dict(values))
    return grid


def log_threshold_grid(lowest: Any, grid: Any, key: str) -> list[float]:
    """threshold_range from `lowest` (a threshold its own key's check accepted) and grid {highest, points}: E5's
    grid, which ends at exp_wallclock.threshold. key: the grid's dotted name, for the one-line error."""
    if not isinstance(grid, Mapping) or sorted(grid) != ["highest", "points"]:
        raise parameter_error(key, "must map highest and points (the grid ends at the threshold)", grid)
    return threshold_range({**grid, "lowest": lowest}, key)
