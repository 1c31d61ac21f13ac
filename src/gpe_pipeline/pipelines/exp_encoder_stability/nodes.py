"""Nodes of E2 (paper 8.2, Figs. 4 and 5): encoder-only GME, MDS1 and MDS2 runs at three learning rates."""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from gpe_pipeline.readings import diverged_step, evaluations, last_step
from gpe_pipeline.variants import ENCODER_STABILITY as EXPERIMENT
from gpe_pipeline.variants import RATE_SLOTS, nested_get
from gpe_pipeline.variants import STABILITY_LOSSES as LOSSES
from gpe_pipeline.variants import stability_name as variant_name
from gpe_pipeline.variants import stability_rates as learning_rates
from gpe_pipeline.verdicts import HELD, NOT_HELD, NOT_MEASURABLE, claim, every, verdict_of

FIGURE5_SLOT = "mid"  # the paper's Fig. 5 rate was lost in extraction: the middle one stands in for it
GME, BILIPSCHITZ, DISTORTION = "validation_gme", "validation_bilipschitz_p95", "validation_local_distortion"
COLOURS = {"gme": "C0", "mds1": "C3", "mds2": "C1"}


def log_log_slope(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> float:
    """Least-squares slope of log y against log x over the points where both are positive and finite; nan if < 2."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2 or np.ptp(np.log(x[keep])) == 0:
        return math.nan
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def end_ratio(values: pd.Series) -> float:
    """The mean of the last fifth of a curve's values over the mean of the fifth before it (a fifth: at least one
    value); above 1 when the curve rises at its end; nan with fewer than 2 values."""
    if len(values) < 2:
        return math.nan
    fifth = max(1, len(values) // 5)
    last, before = values.iloc[-fifth:], values.iloc[-2 * fifth : -fifth]
    return float(last.mean() / before.mean())


def run_summary(history: pd.DataFrame) -> dict[str, Any]:
    """One run's reading: where it diverged, its evaluations before that, its last ones, its validation GME at its
    last evaluation and whether it rose at the end, and its Fig. 5 slope.

    The final values are those of the last evaluation at which every metric was finite; gme_at_end and end_ratio
    read the validation GME alone, which stays finite where an encoder that collapsed has an infinite bi-Lipschitz.
    """
    diverged = diverged_step(history)
    curve = evaluations(history, GME, BILIPSCHITZ, DISTORTION, before_step=diverged)
    gme_curve = evaluations(history, GME, before_step=diverged)
    last = curve.iloc[-1] if len(curve) else None
    return {
        "diverged_at_step": diverged,
        "steps": last_step(history),
        "evaluated_at_step": int(last["step"]) if last is not None else None,
        "final_gme": float(last[GME]) if last is not None else math.nan,
        "gme_at_end": float(gme_curve[GME].iloc[-1]) if len(gme_curve) else math.nan,
        "end_ratio": end_ratio(gme_curve[GME]),
        "bilipschitz_p95": float(last[BILIPSCHITZ]) if last is not None else math.nan,
        "local_distortion": float(last[DISTORTION]) if last is not None else math.nan,
        "loglog_slope": log_log_slope(curve[GME], curve[DISTORTION]),
        "curve": curve,
    }


def summarise_encoder_stability(
    rate_grid: dict[str, float],
    shared: dict[str, Any],
    slope_tolerance: float,
    convergence: dict[str, float],
    isometry_factor: float,
    **histories: pd.DataFrame,
) -> tuple[pd.DataFrame, Figure, dict]:
    """The table (one row per loss and rate), Figs. 4 and 5 in one figure, and the findings with their verdicts.

    rate_grid: exp_encoder_stability.learning_rates; shared: its shared overrides (for the divergence rule);
    convergence, isometry_factor: the rules' numbers (exp_encoder_stability.convergence, .isometry_factor);
    histories: each variant's encoder_history, keyed by variant_name(loss, slot). The final values of a diverged run
    are its last evaluation before the step whose loss diverged.
    """
    rates = learning_rates(rate_grid)
    runs = {(loss, slot): run_summary(histories[variant_name(loss, slot)]) for loss in LOSSES for slot in RATE_SLOTS}
    table = pd.DataFrame(
        [
            {"variant": variant_name(loss, slot), "loss": loss, "lr": rates[slot]}
            | {key: value for key, value in run.items() if key != "curve"}
            for (loss, slot), run in runs.items()
        ]
    )
    for column in ("diverged_at_step", "evaluated_at_step"):
        table[column] = table[column].astype("Int64")  # whole steps, blank where there is none
    factor = nested_get(shared or {}, "train_encoder.training.divergence_factor")
    findings = {
        "experiment": "E2",
        "title": "Encoder stability and distortion: GME, MDS1, MDS2 at three learning rates (Figs. 4, 5)",
        "claims": stability_claims(runs, rates, factor, slope_tolerance, convergence, isometry_factor),
        "learning_rates": rates,
        "loglog_slopes": {variant_name("gme", slot): _number(runs["gme", slot]["loglog_slope"]) for slot in RATE_SLOTS},
        "figure5_learning_rate": rates[FIGURE5_SLOT],
        "notes": [
            "The paper's three learning rates and its Fig. 5 rate were lost in the text extraction: the rates are "
            f"{EXPERIMENT}.learning_rates and Fig. 5's slope is read at the middle one ({rates[FIGURE5_SLOT]:g}).",
            "A run's final values are its last validation evaluation at which every metric was finite, before the "
            "divergence for a diverged run; gme_at_end is its validation GME at its last evaluation (finite where an "
            "encoder that collapsed has an infinite bi-Lipschitz) and end_ratio that GME's mean over the last fifth "
            "of its evaluations over the fifth before.",
            "The learning rates are Adam's default 1e-3 and the two decades above it; an exploratory sweep on the "
            "digits (no loss exploded at 3e-2 or below) is why the grid goes up from the default rather than around "
            "it. The convergence and isometry factors were fixed with their rules, after the kept report of "
            "2026-11-27 had been read (the YAML says so); the margins beside each verdict show how far each run is "
            "from them.",
        ],
    }
    return table, stability_figure(runs, rates), findings


def _number(value: float) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    return value if math.isfinite(value) else None


def _divergence_rule(factor: float | None) -> str:
    exploded = f" or above {factor:g} times its first step's loss" if factor else ""
    return f"a run diverged when its training loss was not finite{exploded} (training.on_divergence: stop records the step)"


def _outcome(run: dict[str, Any]) -> str:
    if run["diverged_at_step"] is not None:
        return f"diverged at step {run['diverged_at_step']:,}"
    peak = run["curve"][GME].max() if len(run["curve"]) else math.nan  # a run may not diverge and still not settle
    return f"final GME {run['final_gme']:.3g} (highest evaluated {peak:.3g}), local distortion {run['local_distortion']:.3g}"


def stability_claims(
    runs: dict[tuple[str, str], dict[str, Any]],
    rates: dict[str, float],
    factor: float | None,
    slope_tolerance: float,
    convergence: dict[str, float],
    isometry_factor: float,
) -> list[dict[str, str]]:
    """The claims of Figs. 4 and 5, each verdict computed from the runs by the rule its reason states."""
    rule = _divergence_rule(factor)

    def outcomes(loss: str, slots: tuple[str, ...] = RATE_SLOTS) -> str:
        return "; ".join(f"lr {rates[slot]:g}: {_outcome(runs[loss, slot])}" for slot in slots)

    def diverged(loss: str, slot: str) -> bool:
        return runs[loss, slot]["diverged_at_step"] is not None

    highest = RATE_SLOTS[-1]
    claims = [
        converged_claim(runs, rates, convergence, rule),
        claim(
            "MDS2 diverges at the highest learning rate (Fig. 4)",
            "Fig. 4: MDS2 proves brittle and explodes at the highest rate",
            f"MDS2: {outcomes('mds2')}",
            HELD if diverged("mds2", highest) else NOT_HELD,
            f"held when the MDS2 run at the highest rate diverged; {rule}",
        ),
        isometry_claim(runs, rates, isometry_factor),
        claim(
            "MDS1 diverges at every learning rate (Fig. 4)",
            "Fig. 4: MDS1 explodes immediately in all configurations ([X] markers)",
            f"MDS1: {outcomes('mds1')}",
            HELD if all(diverged("mds1", slot) for slot in RATE_SLOTS) else NOT_HELD,
            f"held when every MDS1 run diverged; {rule}",
        ),
        lowest_distortion_claim(runs, rates),
        slope_claim(runs["gme", FIGURE5_SLOT], rates[FIGURE5_SLOT], slope_tolerance),
    ]
    return claims


def converged_claim(
    runs: dict[tuple[str, str], dict[str, Any]], rates: dict[str, float], convergence: dict[str, float], rule: str
) -> dict[str, str]:
    """Fig. 4: every GME run converged, by the criterion of exp_encoder_stability.convergence, with its margins."""
    level_factor, rise_tolerance = float(convergence["level_factor"]), float(convergence["rise_tolerance"])
    finals = [runs["gme", slot]["gme_at_end"] for slot in RATE_SLOTS if runs["gme", slot]["diverged_at_step"] is None]
    lowest = min(finals, default=math.nan)
    decisions, parts = [], []
    for slot in RATE_SLOTS:
        run = runs["gme", slot]
        if run["diverged_at_step"] is not None:
            decisions.append(False)
            parts.append(f"lr {rates[slot]:g}: diverged at step {run['diverged_at_step']:,}")
            continue
        final, rise = run["gme_at_end"], run["end_ratio"]
        learned = final <= level_factor * lowest
        settled = None if math.isnan(rise) else rise <= 1 + rise_tolerance
        decisions.append(every([learned, settled]))
        times = f"{final / lowest:.3g}x" if lowest > 0 else "n/a"
        parts.append(
            f"lr {rates[slot]:g}: GME at the end {final:.3g}, {times} the lowest, last fifth {rise:.3g}x the "
            f"fifth before ({'converged' if decisions[-1] else 'not converged' if decisions[-1] is False else 'cannot tell'})"
        )
    return claim(
        "GME stays stable at every learning rate (Fig. 4)",
        "Fig. 4: GME remains stable in every configuration",
        f"GME: {'; '.join(parts)}; converged needs at most {level_factor:g}x and {1 + rise_tolerance:g}x",
        verdict_of(every(decisions)),
        f"held when every GME run converged: it did not diverge, its validation GME at its last evaluation is at most "
        f"{level_factor:g} times the lowest of the GME runs' (it learned what GME learns at the grid's other rates), and it was "
        f"not rising at its end: the mean over the last fifth of its evaluations at most {1 + rise_tolerance:g} times "
        f"the mean over the fifth before ({EXPERIMENT}.convergence); not measurable when a run with fewer than 2 "
        f"evaluations otherwise converged; {rule}",
    )


def isometry_claim(runs: dict[tuple[str, str], dict[str, Any]], rates: dict[str, float], isometry_factor: float) -> dict[str, str]:
    """Fig. 4(a): MDS2's global isometry (bi-Lipschitz p95) against GME's at every rate but the highest."""
    decisions, parts = [], []
    for slot in RATE_SLOTS[:-1]:
        gme, mds2 = runs["gme", slot], runs["mds2", slot]
        if mds2["diverged_at_step"] is not None:
            decisions.append(False)
            parts.append(f"lr {rates[slot]:g}: MDS2 diverged at step {mds2['diverged_at_step']:,}")
            continue
        if gme["diverged_at_step"] is not None:
            decisions.append(None)
            parts.append(f"lr {rates[slot]:g}: GME diverged at step {gme['diverged_at_step']:,}")
            continue
        # log of the bi-Lipschitz p95: the 95th-percentile pair's distortion exponent, 0 for an isometry.
        mds2_log, gme_log = math.log(mds2["bilipschitz_p95"]), math.log(gme["bilipschitz_p95"])
        decisions.append(None if math.isnan(mds2_log + gme_log) else mds2_log <= isometry_factor * gme_log)
        ratio = f"{mds2_log / gme_log:.3g}x" if gme_log > 0 else "n/a"
        parts.append(
            f"lr {rates[slot]:g}: bi-Lipschitz p95 MDS2 {mds2['bilipschitz_p95']:.3g}, GME {gme['bilipschitz_p95']:.3g} "
            f"(log ratio {ratio})"
        )
    return claim(
        "MDS2 matches GME's global isometry at the lower learning rates (Fig. 4)",
        "Fig. 4(a): MDS2 and GME achieve similar global isometry at the lower learning rates",
        f"{'; '.join(parts)}; matches needs a log ratio at most {isometry_factor:g}x",
        verdict_of(every(decisions)),
        "held when, at every rate but the highest, MDS2 did not diverge and the log of its final bi-Lipschitz p95 (the "
        f"95th-percentile pair's distortion exponent, 0 for an isometry) is at most {isometry_factor:g} times GME's "
        f"({EXPERIMENT}.isometry_factor); not measurable when the GME run at such a rate diverged",
    )


def lowest_distortion_claim(runs: dict[tuple[str, str], dict[str, Any]], rates: dict[str, float]) -> dict[str, str]:
    """GME's final local distortion against the other losses' runs that did not diverge, rate by rate."""
    compared, lowest_everywhere, parts = 0, True, []
    for slot in RATE_SLOTS:
        finished = {loss: runs[loss, slot]["local_distortion"] for loss in LOSSES if runs[loss, slot]["diverged_at_step"] is None}
        parts.append(
            f"lr {rates[slot]:g}: "
            + ", ".join(
                f"{loss.upper()} {finished[loss]:.3g}" if loss in finished else f"{loss.upper()} diverged" for loss in LOSSES
            )
        )
        if "gme" not in finished:
            lowest_everywhere = False
            continue
        others = [value for loss, value in finished.items() if loss != "gme"]
        compared += bool(others)
        lowest_everywhere &= all(finished["gme"] < value for value in others)
    verdict = NOT_MEASURABLE if compared == 0 else HELD if lowest_everywhere else NOT_HELD
    return claim(
        "GME gives the lowest local distortion (Fig. 4)",
        "Fig. 4(b): GME achieves the lowest local distortion",
        "final local distortion, " + "; ".join(parts),
        verdict,
        "held when, at every rate, GME did not diverge and its final local distortion is below that of every other "
        "loss's run at that rate that did not diverge; not measurable when no other loss finished at any rate",
    )


def slope_claim(run: dict[str, Any], rate: float, tolerance: float) -> dict[str, str]:
    """Fig. 5: the log-log slope of local distortion against GME along the GME run at the figure's rate."""
    slope = run["loglog_slope"]
    points = len(run["curve"])
    if math.isnan(slope):
        verdict, measured = NOT_MEASURABLE, f"GME at lr {rate:g}: fewer than 2 evaluations to fit ({points})"
    else:
        verdict = HELD if abs(slope - 1) <= tolerance else NOT_HELD
        measured = f"GME at lr {rate:g}: slope {slope:.2f} over {points} evaluations"
    return claim(
        "Local distortion falls with the GME loss at a log-log slope of about 1 (Fig. 5)",
        "Fig. 5: empirical slope close to the limit 1 that Theorem 9 gives for a Softplus (C-infinity) network",
        measured,
        verdict,
        f"held when the least-squares slope of log local distortion against log validation GME over the run's "
        f"evaluations is within {tolerance:g} of 1 (exp_encoder_stability.slope_tolerance)",
    )


def stability_figure(runs: dict[tuple[str, str], dict[str, Any]], rates: dict[str, float]) -> Figure:
    """Rows 1-2 (Fig. 4): global isometry and local distortion against steps, X where a run diverged; row 3 (Fig. 5)."""
    figure, axes = plt.subplots(3, len(RATE_SLOTS), figsize=(4.6 * len(RATE_SLOTS), 12))
    budget = max(run["steps"] for run in runs.values())
    for column, slot in enumerate(RATE_SLOTS):
        for row, (metric, label) in enumerate(((BILIPSCHITZ, "bi-Lipschitz p95"), (DISTORTION, "local distortion"))):
            axis = axes[row, column]
            for index, loss in enumerate(LOSSES):
                run = runs[loss, slot]
                curve = run["curve"]
                axis.plot(curve["step"], curve[metric], color=COLOURS[loss], marker="o", markersize=2.5, label=loss.upper())
                if run["diverged_at_step"] is not None:  # at its last value before, or near the top without one
                    known = len(curve) > 0
                    where = axis.transData if known else blended_transform_factory(axis.transData, axis.transAxes)
                    height = curve[metric].iloc[-1] if known else 0.93 - 0.07 * index
                    axis.plot(
                        run["diverged_at_step"], height, "X", color=COLOURS[loss], markersize=12, transform=where, scaley=known
                    )
            axis.set_xlim(-0.02 * budget, budget * 1.02)  # room for an X at the first steps
            if any(len(runs[loss, slot]["curve"]) for loss in LOSSES):
                axis.set_yscale("log")
            else:
                _no_evaluation(axis)
            axis.set_xlabel("encoder step")
            axis.set_title(f"{label}, lr {rates[slot]:g}")
            axis.legend(
                handles=[*axis.get_legend_handles_labels()[0], Line2D([], [], color="k", marker="X", ls="none")],
                labels=[*axis.get_legend_handles_labels()[1], "diverged"],
                fontsize=8,
            )
        slope_panel(axes[2, column], runs["gme", slot], rates[slot], slot == FIGURE5_SLOT)
    figure.suptitle("E2: encoder stability (paper Fig. 4, rows 1-2) and local distortion against GME (Fig. 5, row 3)")
    figure.tight_layout()
    return figure


def slope_panel(axis: Any, run: dict[str, Any], rate: float, is_figure5: bool) -> None:
    """Log-log local distortion against validation GME along one GME run, with its least-squares line."""
    curve, slope = run["curve"], run["loglog_slope"]
    axis.set_title(f"GME, lr {rate:g}" + (" (Fig. 5's rate: the middle one)" if is_figure5 else ""))
    if not len(curve):
        _no_evaluation(axis)
        return
    axis.loglog(curve[GME], curve[DISTORTION], "o", color=COLOURS["gme"], markersize=3.5, label="evaluations")
    if not math.isnan(slope):
        log_x, log_y = np.log(curve[GME].to_numpy()), np.log(curve[DISTORTION].to_numpy())
        x = np.exp(np.linspace(log_x.min(), log_x.max(), 20))
        # The least-squares line passes through the mean of the logs.
        axis.loglog(x, np.exp(log_y.mean() + slope * (np.log(x) - log_x.mean())), "k--", label=f"slope {slope:.2f}")
    axis.set_xlabel("validation GME")
    axis.set_ylabel("local distortion")
    axis.legend(fontsize=8)


def _no_evaluation(axis: Any) -> None:
    """A panel without a measured point (every run shown diverged before its first evaluation) says so."""
    axis.text(0.5, 0.5, "no evaluation before the divergence", ha="center", va="center", transform=axis.transAxes)
    axis.set_yticks([])
