"""What the paper's experiments (E1-E6) share: grid overrides, curve readings, and the claims a report checks.

Plain Python, pandas and torch; nothing here imports Kedro. Each experiment's summary node turns its variants'
outputs into a results table, a figure and its findings: the measurements behind each of the paper's claims it
tests, each with a verdict computed here from the numbers (never written by hand).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

HELD, NOT_HELD, NOT_MEASURABLE = "held", "did not hold", "not measurable at this scale"


def combine(*overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge partial override dicts, later ones winning (the merge into the stage sections checks the keys)."""
    merged: dict[str, Any] = {}
    for override in overrides:
        for key, value in (override or {}).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = combine(merged[key], value)
            else:
                merged[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return merged


def claim(claim: str, paper: str, measured: str, verdict: str, reason: str = "") -> dict[str, str]:
    """One of the paper's claims, the paper's figure for it, this run's measurement and the verdict."""
    if verdict not in (HELD, NOT_HELD, NOT_MEASURABLE):
        raise ValueError(f"unknown verdict {verdict!r}")
    return {"claim": claim, "paper": paper, "measured": measured, "verdict": verdict, "reason": reason}


def first_step_at_or_below(history: pd.DataFrame, column: str, threshold: float) -> int | None:
    """The first recorded step whose `column` is at or below threshold; None when the history never gets there."""
    if column not in history:
        return None
    reached = history.loc[history[column] <= threshold, "step"]
    return int(reached.iloc[0]) if len(reached) else None


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
