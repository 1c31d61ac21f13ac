"""E5's learning-rate probes read: whether a rate converged stably and the rate chosen (probe_learning_rates and
probe_decoder_rates in nodes.py run them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from gpe_pipeline.readings import diverged_step, stage_cost

# Besides its loss, what a probe must decrease for its rate to count as stable: a joint loss can fall through its KL
# and MDS terms while the reconstruction, which Fig. 10 measures, stays where it started.
PROBED_TERMS = {"joint": ("train_reconstruction",)}


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


def probe_rates(trainer: str, probe: dict[str, Any], run: Any) -> tuple[list[dict[str, Any]], float]:
    """Run one probe per learning rate of the grid; each rate's outcome row and the rate chosen.

    run(lr) -> the probe training's history (a DataFrame).
    """
    rows = []
    for rate in probe["learning_rates"]:
        history = run(float(rate))
        outcome = probe_outcome(history, probe["min_decrease"], also=PROBED_TERMS.get(trainer, ()))
        rows.append({"trainer": trainer, "lr": float(rate), **outcome, "train_s": stage_cost(history)[1]})
    chosen, how = largest_stable_rate({row["lr"]: row["outcome"] for row in rows})
    for row in rows:
        row["chosen"] = row["lr"] == chosen
        row["choice"] = how if row["chosen"] else ""
    return rows, chosen
