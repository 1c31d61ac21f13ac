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


def log_threshold_grid(lowest: Any, grid: Any, key: str) -> list[float]:
    """grid["points"] thresholds log-spaced from grid["highest"] down to `lowest`, highest first, each rounded to the 3
    significant digits a table prints (so a threshold shown is the one used); checked before any run.

    key: the grid's dotted name (e.g. exp_wallclock.threshold_grid), for the one-line error; `lowest` is the
    threshold its own key's check accepted.
    """
    rule = (
        f"must map highest to a number above the lowest threshold ({lowest!r}) and points to an integer >= 2 whose "
        "log-spaced values stay distinct at 3 significant digits"
    )
    if not isinstance(grid, Mapping) or sorted(grid) != ["highest", "points"]:
        raise parameter_error(key, rule, grid)
    highest, points = grid["highest"], grid["points"]
    if not (is_number(lowest) and lowest > 0 and is_number(highest) and highest > lowest):
        raise parameter_error(key, rule, dict(grid))
    if not isinstance(points, int) or isinstance(points, bool) or points < 2:
        raise parameter_error(key, rule, dict(grid))
    ratio = (lowest / highest) ** (1 / (points - 1))
    values = [float(f"{highest * ratio**i:.3g}") for i in range(points - 1)] + [float(f"{lowest:.3g}")]
    if not positive_and_ordered(values, "decreasing"):
        raise parameter_error(key, rule, dict(grid))
    return values
