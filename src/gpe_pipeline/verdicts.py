"""The verdicts of the paper's claims: every experiment's findings state each claim it tests with the paper's figure,
this run's measurement and a verdict computed from the numbers (never written by hand).

Plain Python; nothing here imports Kedro. Also what a verdict needs of a count a run may not reach within its budget:
its text and its bounds, and the comparison of two values known only within bounds; and the verdict of a claim
decided at each threshold of a range fixed in advance, with its counts.
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


def at_most(a: tuple[float, float], b: tuple[float, float]) -> bool | None:
    """Whether a <= b for values known only within bounds: True, False, or None when the bounds cannot tell."""
    if a[1] <= b[0]:
        return True
    if a[0] > b[1]:
        return False
    return None


def every(decisions: list[bool | None]) -> bool | None:
    """Whether every comparison holds: False when one fails, else None when one cannot be told, else True."""
    if any(decision is False for decision in decisions):
        return False
    return None if any(decision is None for decision in decisions) else True


def verdict_of(decision: bool | None) -> str:
    """held, did not hold, or not measurable, for a decision that is True, False or None (cannot be told)."""
    return NOT_MEASURABLE if decision is None else HELD if decision else NOT_HELD


def verdict_over_range(decisions: list[bool | None]) -> str:
    """A claim decided at each threshold of a range fixed in advance: not held when it failed at one threshold, held
    when it held at every threshold where it could be told (at least one), not measurable when it could be told at none.
    """
    if any(decision is False for decision in decisions):
        return NOT_HELD
    return HELD if any(decision is True for decision in decisions) else NOT_MEASURABLE


RANGE_RULE = (
    "over the range: not held when it failed at one threshold, held when it held at every threshold where it could "
    "be told (at least one), not measurable when it could be told at none"
)


def range_tally(decisions: list[bool | None], thresholds: list[float]) -> str:
    """'of the 5 thresholds: held at 3 (0.1, 0.068, 0.047), failed at 0, not measurable at 2 (0.032, 0.022)'."""

    def at(outcome: bool | None) -> str:
        where = [f"{t:g}" for t, decision in zip(thresholds, decisions, strict=True) if decision is outcome]
        return f"{len(where)}" + (f" ({', '.join(where)})" if where else "")

    return f"of the {len(thresholds)} thresholds: held at {at(True)}, failed at {at(False)}, not measurable at {at(None)}"


def format_ratio(bounds: tuple[float, float]) -> str:
    """'5.67', '> 1.1', 'between 0.5 and 2' or 'unknown' for a ratio known only within bounds."""
    low, high = bounds
    if low == 0 and math.isinf(high):  # neither count within its budget
        return "unknown"
    if low == high:
        return f"{low:.3g}"
    return f"> {low:.3g}" if math.isinf(high) else f"between {low:.3g} and {high:.3g}"
