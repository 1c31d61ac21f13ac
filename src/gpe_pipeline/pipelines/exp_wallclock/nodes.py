"""Nodes of E5 (paper section 8.5, Fig. 10 and Table 2): learning-rate probes, then reconstruction against seconds.

Each method's learning rate is chosen the paper's way, the largest value of a grid that converges stably in a
short probe (probes.probe_outcome states "stably"). The probes run the stages' own trainers (stage_training) with the
probe's settings, no checkpoint file and MLflow logging paused, in the variant's namespace before its stages.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from torch import nn

from gpe_pipeline import plotting
from gpe_pipeline.core.metrics import reconstruction_mse
from gpe_pipeline.experiment_parameters import log_threshold_grid
from gpe_pipeline.paper import PAPER_SECONDS_PER_ITERATION, PAPER_TABLE2_DATASETS
from gpe_pipeline.readings import by_variant, first_crossing, json_records, reconstruction_curve, stage_cost
from gpe_pipeline.stage_training import train_decoder_model, train_encoder_model
from gpe_pipeline.tracking import mlflow_logging_paused
from gpe_pipeline.variants import PROBE_WINDOWS, WALLCLOCK
from gpe_pipeline.verdicts import NOT_MEASURABLE

from .claims import (
    METHODS,
    PAPER_NETWORK_BENCHMARK,
    iteration_cost_claim,
    kl_slowest_claim,
    lowest_values,
    sooner_claim,
)
from .probes import probe_rates

# Which parameter section's training.lr each probed trainer sets: a baseline's joint training runs on
# train_decoder.training (stage_training.train_jointly), so its rate goes there too.
PROBED_SECTION = {"encoder": "train_encoder", "decoder": "train_decoder", "joint": "train_decoder"}
TRAINER_LOSS = {"encoder": "GME", "decoder": "MSE", "joint": "joint loss"}
PAPER_COLUMNS = {dataset: f"paper_{dataset.lower().replace('-', '')}_s_per_iter" for dataset in PAPER_TABLE2_DATASETS}


def probe_training(training: dict[str, Any], probe: dict[str, Any], lr: float, checkpoint: str | None) -> dict[str, Any]:
    """A stage's training settings for one probe: probe.steps steps at lr, no target, its own checkpoint file
    (probe_checkpoint), divergence recorded (not raised), the loss logged over PROBE_WINDOWS equal windows and
    evaluated once at the end."""
    steps = probe["steps"]
    window = steps // PROBE_WINDOWS
    return {
        **training,
        "max_steps": steps,
        "lr": lr,
        "target": None,
        "checkpoint_path": checkpoint,
        "on_divergence": "stop",
        "log_every": window,
        "eval_every": steps,
        "snapshot_steps": [],
        "snapshot_at": [],
    }


def probe_checkpoint(stage: dict[str, Any], trainer: str, lr: float) -> str | None:
    """Where one probe keeps its finished training, beside its stage's checkpoint (probe_<trainer>_lr<lr>.pt: a probe
    never writes or resumes the stage's own file), so that a re-run reuses it; None when the stage keeps none."""
    path = stage["training"].get("checkpoint_path")
    return str(PurePosixPath(path).with_name(f"probe_{trainer}_lr{lr:g}.pt")) if path else None


def probe_learning_rates(
    train_data: dict[str, Any],
    validation_data: dict[str, Any],
    metadata: dict[str, Any],
    experiment: dict[str, Any],
    method: str,
    train_encoder: dict[str, Any],
    cache_latents: dict[str, Any],
    train_decoder: dict[str, Any],
) -> dict[str, Any]:
    """The learning-rate probe of one method's first trainer (a prelude node in its namespace): every rate's outcome
    and the choice.

    train_encoder, cache_latents, train_decoder: the variant's sections as configured (before the probe's rates).
    GPE probes its encoder on the GME loss here; its decoder is probed on the stage's cached latents afterwards
    (probe_decoder_rates), so no encoder is trained twice. A baseline probes its joint training (the rate of
    train_decoder.training).
    """
    probe = experiment["probe"]
    trainer = "encoder" if method == "gpe" else "joint"  # a baseline's joint training runs on train_decoder.training

    def trial(lr: float) -> pd.DataFrame:
        """The encoder stage's trainer at one probed rate: its history."""
        checkpoint = probe_checkpoint(train_encoder, trainer, lr)  # a joint training keeps the encoder section's file
        encoder_training = (
            probe_training(train_encoder["training"], probe, lr, checkpoint)
            if trainer == "encoder"
            else {**train_encoder["training"], "checkpoint_path": checkpoint}
        )
        decoder_training = probe_training(train_decoder["training"], probe, lr, checkpoint)
        return train_encoder_model(
            train_data["x"],
            validation_data["x"],
            metadata,
            {**train_encoder, "training": encoder_training},
            {**train_decoder, "training": decoder_training},
        )[1]

    result: dict[str, Any] = {"method": method, **{key: probe[key] for key in ("learning_rates", "steps", "min_decrease")}}
    with mlflow_logging_paused():  # the probes' curves must not mix with the stages' in the variant's MLflow run
        rows, rate = probe_rates(trainer, probe, trial)
    return {**result, "rows": json_records(rows), "chosen": {PROBED_SECTION[trainer]: rate}}


def probe_decoder_rates(
    train_latents: Any,
    validation_latents: Any,
    train_data: dict[str, Any],
    validation_data: dict[str, Any],
    metadata: dict[str, Any],
    experiment: dict[str, Any],
    train_decoder: dict[str, Any],
    encoder_probe: dict[str, Any],
) -> dict[str, Any]:
    """GPE's decoder probe on the latents its cache_latents stage wrote (the encoder trained at the probed rate), added
    to the encoder's probe: the method's whole probe record."""
    probe = experiment["probe"]

    def decoder_trial(lr: float) -> pd.DataFrame:
        training = probe_training(train_decoder["training"], probe, lr, probe_checkpoint(train_decoder, "decoder", lr))
        params = {**train_decoder, "training": training}
        return train_decoder_model(train_latents, validation_latents, train_data["x"], validation_data["x"], metadata, params)[1]

    with mlflow_logging_paused():
        rows, rate = probe_rates("decoder", probe, decoder_trial)
    return {
        **encoder_probe,
        "rows": [*encoder_probe["rows"], *json_records(rows)],
        "chosen": {**encoder_probe["chosen"], PROBED_SECTION["decoder"]: rate},
    }


def use_probed_rates(probe: dict[str, Any], **sections: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The given sections (train_encoder, cache_latents, train_decoder: those a probe node completes), in that order,
    with the learning rates the probe chose (training.lr of each probed section)."""
    for section, rate in probe["chosen"].items():
        if section in sections:
            sections[section] = {**sections[section], "training": {**sections[section]["training"], "lr": rate}}
    return tuple(sections.values())


def seconds_to_threshold(curve: pd.DataFrame, threshold: float) -> float | None:
    """The first `seconds` of a curve (columns seconds, value) whose value is at or below threshold; None if never."""
    row = first_crossing(curve, "value", threshold)
    return float(row["seconds"]) if row is not None else None


def lowest_by(curve: pd.DataFrame, seconds: float) -> float:
    """The lowest value of a curve (columns seconds, value) at or before `seconds`; nan if it starts later."""
    values = curve.loc[curve["seconds"] <= seconds, "value"]
    return float(values.min()) if len(values) else math.nan


def threshold_column(threshold: float) -> str:
    """The table column of the seconds to one threshold of the grid: s_to_0.022."""
    return f"s_to_{threshold:g}"


def trainer_rows(
    method: str, outputs: dict[str, Any], heldout_data: dict[str, Any], thresholds: list[float]
) -> list[dict[str, Any]]:
    """Table 2 rows of one method (GPE: encoder and decoder; a baseline: its joint step) with its Fig. 10 readings.

    The readings (seconds to each threshold of the grid, best validation MSE, held-out MSE) sit on the method's last
    trainer's row; their seconds count from the method's start (GPE: its encoder's training seconds included).
    """
    chosen = outputs["learning_rate_probe"]["chosen"]
    curve = reconstruction_curve(outputs)
    best = int(curve["value"].idxmin())
    readings = {
        **{threshold_column(threshold): seconds_to_threshold(curve, threshold) for threshold in thresholds},
        "best_validation_mse": float(curve["value"].iloc[best]),
        "best_at_s": float(curve["seconds"].iloc[best]),
        "heldout_recon_mse": reconstruction_mse(outputs["decoder"], outputs["heldout_latents"], heldout_data["x"]),
    }
    label = METHODS[method]
    if method == "gpe":
        trainers = [
            ("GPE encoder", "encoder", outputs["encoder_history"]),
            ("GPE decoder", "decoder", outputs["decoder_history"]),
        ]
    else:
        trainers = [(label, "joint", outputs["encoder_history"])]  # the joint history; the decoder stage kept its decoder
    rows = []
    for index, (name, trainer, history) in enumerate(trainers):
        steps, seconds = stage_cost(history)
        row = {
            "method": label,
            "trainer": name,
            "loss": TRAINER_LOSS[trainer],
            "learning_rate": chosen[PROBED_SECTION[trainer]],
            "steps": steps,
            "train_s": round(seconds, 3),
            "s_per_iter": seconds / steps if steps else math.nan,
            **{column: PAPER_SECONDS_PER_ITERATION[name][i] for i, column in enumerate(PAPER_COLUMNS.values())},
        }
        rows.append({**row, **(readings if index == len(trainers) - 1 else {key: None for key in readings})})
    return rows


def architecture(model: nn.Module) -> str:
    """A model's architecture name (its build spec's), or "unknown" for a model built without one."""
    spec = getattr(model, "build_spec", None)
    return spec.architecture if spec is not None else "unknown"


def probe_table(probes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Every probe of every method: method, trainer, rate, outcome (stable / unstable / diverged), why, the choice."""
    columns = ["trainer", "lr", "outcome", "detail", "first_fifth_loss", "last_fifth_loss", "diverged_step", "chosen", "choice"]
    rows = [
        {"method": METHODS[method], **{c: row.get(c) for c in columns}}
        for method, probe in probes.items()
        for row in probe["rows"]
    ]
    return pd.DataFrame(rows)


def outcome_text(outcome: str, detail: str) -> str:
    """stable | unstable (why) | diverged at step N."""
    return {"stable": "stable", "unstable": f"unstable ({detail})"}.get(outcome, detail)


def probe_notes(probes: dict[str, dict[str, Any]]) -> list[str]:
    """One line per probed trainer: each rate's outcome and the rate chosen."""
    table = probe_table(probes)
    notes = []
    for (method, trainer), rows in table.groupby(["method", "trainer"], sort=False):
        outcomes = "; ".join(f"{row.lr:g} {outcome_text(row.outcome, row.detail)}" for row in rows.itertuples())
        chosen = rows[rows["chosen"]].iloc[0]
        notes.append(f"{method} {trainer} ({TRAINER_LOSS[trainer]}): {outcomes} -> lr {chosen['lr']:g} ({chosen['choice']})")
    return notes


def summarise_wallclock(
    threshold: float, threshold_grid: dict[str, Any], heldout_data: dict[str, Any], **variant_outputs: Any
) -> tuple[pd.DataFrame, Figure, dict[str, Any]]:
    """Table 2 with each method's Fig. 10 readings, the Fig. 10 figure, and the findings with the three claims.

    threshold: exp_wallclock.threshold, the lowest validation reconstruction MSE the times are read at;
    threshold_grid: exp_wallclock.threshold_grid (highest, points), the log grid down to it. variant_outputs:
    "<method>__<entry>" for the entries encoder_history, decoder_history, learning_rate_probe, decoder and
    heldout_latents of every method.
    """
    outputs = by_variant(variant_outputs)
    thresholds = log_threshold_grid(threshold, threshold_grid, f"{WALLCLOCK}.threshold_grid")
    table = pd.DataFrame([row for method in METHODS for row in trainer_rows(method, outputs[method], heldout_data, thresholds)])
    curves = {method: reconstruction_curve(outputs[method]) for method in METHODS}
    times = {t: {method: seconds_to_threshold(curves[method], t) for method in METHODS} for t in thresholds}
    lowest = lowest_values(curves)
    # A secondary reading: each method's lowest validation MSE by the time the shortest-running method finished.
    common = min(float(curve["seconds"].iloc[-1]) for curve in curves.values())
    lowest_by_common = {method: lowest_by(curves[method], common) for method in METHODS}
    probes = {method: outputs[method]["learning_rate_probe"] for method in METHODS}
    encoder_offset = stage_cost(outputs["gpe"]["encoder_history"])[1]
    seconds = table.set_index("trainer")["s_per_iter"]
    networks = {"GPE decoder": architecture(outputs["gpe"]["decoder"]), "VAE decoder": architecture(outputs["vae"]["decoder"])}
    cost = iteration_cost_claim(float(seconds["GPE decoder"]), float(seconds["VAE"]), networks)
    findings = {
        "experiment": "E5",
        "title": "Reconstruction loss against wall-clock training seconds, and seconds per iteration (Fig. 10, Table 2)",
        "claims": [sooner_claim(times, lowest, encoder_offset), kl_slowest_claim(times, lowest), cost],
        "notes": [
            "Fig. 10's curves, the threshold times and the best MSEs are on the validation split (the split every "
            "trainer measures and stops on), not the held-out split, which evaluate reserves for its final figures; "
            "heldout_recon_mse in the table is each final model's MSE on the held-out split.",
            f"Thresholds: {', '.join(f'{t:g}' for t in thresholds)} (the table's s_to_<t> columns), log-spaced from "
            f"exp_wallclock.threshold_grid.highest ({thresholds[0]:g}, Table 1's upper loss threshold) down to "
            f"exp_wallclock.threshold ({thresholds[-1]:g}, Table 1's lower one for the paper's dataset closest to "
            "this run's), fixed before the run, none chosen on its outcome.",
            f"Seconds are training seconds (the histories' train_elapsed_s: evaluations and checkpoints excluded); GPE's "
            f"curve starts after its encoder's {encoder_offset:.1f} s. They were measured on this run's machine, whose "
            "load they include: on a shared machine they are upper bounds, and the threshold times are read at the "
            "evaluations (every eval_every steps).",
            f"Lowest validation MSE within the first {common:.1f} s (the shortest method's training time): "
            + ", ".join(
                f"{METHODS[m]} {v:.4g}" if not math.isnan(v) else f"{METHODS[m]} none yet" for m, v in lowest_by_common.items()
            )
            + ".",
            f"Learning rates: for each trainer the largest of {probes['gpe']['learning_rates']} that converged stably in a "
            f"{probes['gpe']['steps']}-step probe. Stable: no non-finite loss, the mean training loss over the last fifth "
            f"of the probe at most {1 - probes['gpe']['min_decrease']:.2f}x the mean over its first fifth, and no later "
            "logging window above the first fifth's mean; for a baseline the same holds for its reconstruction term as "
            "well as its joint loss. When no rate is stable, the smallest is taken.",
            *probe_notes(probes),
            "GPE's decoder probe trained on the latents its cache_latents stage wrote from the encoder the stage "
            "trained at the probed rate: no encoder is trained twice.",
        ],
        "threshold": thresholds[-1],
        "thresholds": thresholds,
        "split": "validation",
        "seconds_to_threshold": {f"{t:g}": by_method for t, by_method in times.items()},
        "lowest_validation_mse": lowest,
        "lowest_validation_mse_by_common_time": {"seconds": common, **lowest_by_common},
        "encoder_offset_s": encoder_offset,
        "networks": networks,
        "learning_rate_probe": probe_table(probes).to_dict("records"),
    }
    if cost["verdict"] == NOT_MEASURABLE:
        findings["notes"].append(f"Table 2 on the paper's networks, not this run: {PAPER_NETWORK_BENCHMARK}.")
    figure = wallclock_figure(curves, times, encoder_offset)
    return table, figure, findings


def wallclock_figure(
    curves: dict[str, pd.DataFrame], times: dict[float, dict[str, float | None]], encoder_offset: float
) -> Figure:
    """Fig. 10: every method's validation reconstruction MSE against training seconds (GPE shifted by its encoder),
    the threshold grid shaded; beside it each method's seconds to every threshold of the grid."""
    thresholds = list(times)
    figure, (curve_axis, seconds_axis) = plt.subplots(1, 2, figsize=(12.0, 4.4))
    plotting.plot_curves_against_seconds(curve_axis, {METHODS[method]: curve for method, curve in curves.items()})
    curve_axis.set_ylabel("reconstruction MSE on the validation split")
    curve_axis.set_title("E5 (paper Fig. 10): reconstruction loss against training seconds", fontsize=10)
    curve_axis.axvspan(0, encoder_offset, color="0.85", zorder=0, label=f"GPE encoder pretraining ({encoder_offset:.1f} s)")
    curve_axis.axhspan(
        thresholds[-1], thresholds[0], color="C7", alpha=0.12, label=f"thresholds {thresholds[0]:g} to {thresholds[-1]:g}"
    )
    for threshold in thresholds:
        curve_axis.axhline(threshold, color="0.5", linestyle=":", linewidth=0.6)
    curve_axis.legend(fontsize=8)
    for index, method in enumerate(METHODS):
        reached = [(t, times[t][method]) for t in thresholds if times[t][method] is not None]
        seconds_axis.plot([t for t, _ in reached], [s for _, s in reached], marker="o", color=f"C{index}", label=METHODS[method])
    seconds_axis.set_xscale("log")
    seconds_axis.invert_xaxis()  # lower thresholds, reached later, to the right
    seconds_axis.set_xticks(thresholds, labels=[f"{t:g}" for t in thresholds], fontsize=7)
    seconds_axis.minorticks_off()
    seconds_axis.set_xlabel("validation MSE threshold")
    seconds_axis.set_ylabel("training seconds to reach it (GPE: encoder included)")
    seconds_axis.set_title("seconds to each threshold (no point: not within the budget)", fontsize=10)
    seconds_axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
