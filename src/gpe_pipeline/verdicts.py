"""The verdicts of the paper's claims: every experiment's findings state each claim it tests with the paper's figure,
this run's measurement and a verdict computed from the numbers (never written by hand).

Plain Python; nothing here imports Kedro. Also what a verdict needs of a count a run may not reach within its budget:
its text and its bounds, and the comparison of two values known only within bounds.
"""

from __future__ import annotations

import math

HELD, NOT_HELD, NOT_MEASURABLE = "held", "did not hold", "not measurable at this scale"


def claim(claim: str, paper: str, measured: str, verdict: str, reason: str = "") -> dict[str, str]:
    """One of the paper's claims, the paper's figure for it, this run's measurement and the verdict."""
    if verdict not in (HELD, NOT_HELD, NOT_MEASURABLE):
        raise ValueError(f"unknown verdict {verdict!r}")
    return {"claim": claim, "paper": paper, "measured": measured, "verdict": verdict, "reason": reason}


def format_steps(step: int | None, budget: int) -> str:
    """'1,200' or 'not within 4,000' for an iteration count a run may not reach."""
    return f"{step:,}" if step is not None else f"not within {budget:,}"


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
