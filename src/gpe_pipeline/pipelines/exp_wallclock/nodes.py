"""Nodes of E5 (paper section 8.5, Fig. 10 and Table 2): learning-rate probes, then reconstruction against seconds.

Each method's learning rate is chosen the paper's way, the largest value of a grid that converges stably in a
short probe (probes.probe_outcome states "stably"). The probes run the stages' own trainers (stage_training) with the
probe's settings, no checkpoint file and MLflow logging paused, in the variant's namespace before its stages.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from torch import nn

from gpe_pipeline import plotting
from gpe_pipeline.core.latents import encode
from gpe_pipeline.core.metrics import reconstruction_mse
from gpe_pipeline.paper import PAPER_SECONDS_PER_ITERATION, PAPER_TABLE2_DATASETS
from gpe_pipeline.readings import by_variant, first_crossing, json_records, reconstruction_curve, stage_cost
from gpe_pipeline.stage_training import train_decoder_model, train_encoder_model
from gpe_pipeline.tracking import mlflow_logging_paused
from gpe_pipeline.variants import PROBE_WINDOWS
from gpe_pipeline.verdicts import HELD, NOT_HELD, NOT_MEASURABLE, claim

from .probes import encoder_check, probe_rates, same_encoder_run

# The variants (gpe_pipeline.variants.WALLCLOCK_METHODS), and their rows in the paper's Table 2.
METHODS = {"gpe": "GPE", "vae": "VAE", "vae_mds": "VAE+MDS", "ae": "AE", "ae_mds": "AE+MDS"}
KL_METHODS = ("vae", "vae_mds")  # trained with a KL term (the paper: these converge slowest)
# Which parameter section's training.lr each probed trainer sets: a baseline's joint training runs on
# train_decoder.training (stage_training.train_jointly), so its rate goes there too.
PROBED_SECTION = {"encoder": "train_encoder", "decoder": "train_decoder", "joint": "train_decoder"}
TRAINER_LOSS = {"encoder": "GME", "decoder": "MSE", "joint": "joint loss"}
PAPER_COLUMNS = {dataset: f"paper_{dataset.lower().replace('-', '')}_s_per_iter" for dataset in PAPER_TABLE2_DATASETS}


def probe_training(training: dict[str, Any], probe: dict[str, Any], lr: float) -> dict[str, Any]:
    """A stage's training settings for one probe: probe.steps steps at lr, no target, no checkpoint file, divergence
    recorded (not raised), the loss logged over PROBE_WINDOWS equal windows and evaluated once at the end."""
    steps = probe["steps"]
    window = steps // PROBE_WINDOWS
    return {
        **training,
        "max_steps": steps,
        "lr": lr,
        "target": None,
        "checkpoint_path": None,
        "on_divergence": "stop",
        "log_every": window,
        "eval_every": steps,
        "snapshot_steps": [],
    }


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
    """The learning-rate probe of one method (a prelude node in its namespace): every rate's outcome and the choice.

    train_encoder, cache_latents, train_decoder: the variant's sections as configured (before the probe's rates).
    GPE probes its encoder on the GME loss, trains the encoder at the chosen rate with the stage's own settings
    (deterministic for fixed settings and seed: the stage then trains the same encoder again) and probes the decoder
    on that encoder's latents. A baseline probes its joint training (the rate of train_decoder.training).
    """
    # A probe never writes (or resumes) the stages' checkpoint files.
    encoder_params, decoder_params = (
        {**section, "training": {**section["training"], "checkpoint_path": None}} for section in (train_encoder, train_decoder)
    )
    probe = experiment["probe"]

    def run_train_encoder(
        encoder_training: dict[str, Any], decoder_training: dict[str, Any] = decoder_params["training"]
    ) -> tuple[nn.Module, pd.DataFrame, nn.Module]:
        """The encoder stage's trainer with these training settings: (encoder, history, joint decoder or NoModel)."""
        return train_encoder_model(
            train_data["x"],
            validation_data["x"],
            metadata,
            {**encoder_params, "training": encoder_training},
            {**decoder_params, "training": decoder_training},
        )

    result: dict[str, Any] = {"method": method, **{key: probe[key] for key in ("learning_rates", "steps", "min_decrease")}}
    with mlflow_logging_paused():  # the probes' curves must not mix with the stages' in the variant's MLflow run
        if method != "gpe":  # the joint training runs on train_decoder.training
            rows, rate = probe_rates(
                "joint",
                probe,
                lambda lr: run_train_encoder(encoder_params["training"], probe_training(decoder_params["training"], probe, lr))[
                    1
                ],
            )
            result.update(rows=rows, chosen={PROBED_SECTION["joint"]: rate})
        else:
            encoder_rows, encoder_rate = probe_rates(
                "encoder", probe, lambda lr: run_train_encoder(probe_training(encoder_params["training"], probe, lr))[1]
            )
            # The encoder the train_encoder stage will train: the stage's own settings at the chosen rate.
            encoder, encoder_history, _ = run_train_encoder({**encoder_params["training"], "lr": encoder_rate})
            batch_size = cache_latents.get("batch_size", 1024)
            device = cache_latents.get("device", "auto")
            train_latents, validation_latents = (
                encode(encoder, split["x"], batch_size, device) for split in (train_data, validation_data)
            )

            def decoder_trial(lr: float) -> pd.DataFrame:
                params = {**decoder_params, "training": probe_training(decoder_params["training"], probe, lr)}
                return train_decoder_model(
                    train_latents, validation_latents, train_data["x"], validation_data["x"], metadata, params
                )[1]

            decoder_rows, decoder_rate = probe_rates("decoder", probe, decoder_trial)
            result.update(
                rows=encoder_rows + decoder_rows,
                chosen={PROBED_SECTION["encoder"]: encoder_rate, PROBED_SECTION["decoder"]: decoder_rate},
                encoder_check=encoder_check(encoder_history),
            )
    result["rows"] = json_records(result["rows"])
    return result


def use_probed_rates(
    probe: dict[str, Any], train_encoder: dict[str, Any], cache_latents: dict[str, Any], train_decoder: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The variant's sections with the learning rates its probe chose (training.lr of each probed section)."""
    sections = {"train_encoder": train_encoder, "cache_latents": cache_latents, "train_decoder": train_decoder}
    for section, rate in probe["chosen"].items():
        sections[section] = {**sections[section], "training": {**sections[section]["training"], "lr": rate}}
    return sections["train_encoder"], sections["cache_latents"], sections["train_decoder"]


def reached_before(first: float | None, second: float | None) -> bool | None:
    """Whether `first` reached the threshold strictly earlier than `second` (seconds; None: not within its budget).

    A method that reached it is earlier than one that did not; None when neither did (the threshold cannot order them).
    """
    if first is None and second is None:
        return None
    if first is None or second is None:
        return second is None
    return first < second


def seconds_to_threshold(curve: pd.DataFrame, threshold: float) -> float | None:
    """The first `seconds` of a curve (columns seconds, value) whose value is at or below threshold; None if never."""
    row = first_crossing(curve, "value", threshold)
    return float(row["seconds"]) if row is not None else None


def lowest_by(curve: pd.DataFrame, seconds: float) -> float:
    """The lowest value of a curve (columns seconds, value) at or before `seconds`; nan if it starts later."""
    values = curve.loc[curve["seconds"] <= seconds, "value"]
    return float(values.min()) if len(values) else math.nan


def format_seconds(value: float | None) -> str:
    return "not within its budget" if value is None else f"{value:.1f} s"


def trainer_rows(method: str, outputs: dict[str, Any], heldout_data: dict[str, Any], threshold: float) -> list[dict[str, Any]]:
    """Table 2 rows of one method (GPE: encoder and decoder; a baseline: its joint step) with its Fig. 10 readings.

    The readings (time to the threshold, best validation MSE, held-out MSE) sit on the method's last trainer's row;
    their seconds count from the method's start (GPE: its encoder's training seconds included).
    """
    chosen = outputs["learning_rate_probe"]["chosen"]
    curve = reconstruction_curve(outputs)
    best = int(curve["value"].idxmin())
    readings = {
        "seconds_to_threshold": seconds_to_threshold(curve, threshold),
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
    threshold: float, heldout_data: dict[str, Any], **variant_outputs: Any
) -> tuple[pd.DataFrame, Figure, dict[str, Any]]:
    """Table 2 with each method's Fig. 10 readings, the Fig. 10 figure, and the findings with the three claims.

    threshold: exp_wallclock.threshold, the validation reconstruction MSE the times are read at. variant_outputs: "<method>__<entry>" for the entries encoder_history, decoder_history, learning_rate_probe,
    decoder and heldout_latents of every method.
    """
    outputs = by_variant(variant_outputs)
    threshold = float(threshold)
    table = pd.DataFrame([row for method in METHODS for row in trainer_rows(method, outputs[method], heldout_data, threshold)])
    curves = {method: reconstruction_curve(outputs[method]) for method in METHODS}
    times = {method: seconds_to_threshold(curves[method], threshold) for method in METHODS}
    # The secondary reading: each method's lowest validation MSE by the time the shortest-running method finished.
    common = min(float(curve["seconds"].iloc[-1]) for curve in curves.values())
    lowest = {method: lowest_by(curves[method], common) for method in METHODS}
    probes = {method: outputs[method]["learning_rate_probe"] for method in METHODS}
    encoder_offset = stage_cost(outputs["gpe"]["encoder_history"])[1]
    check = probes["gpe"].get("encoder_check") or {}
    identical = same_encoder_run(check, encoder_check(outputs["gpe"]["encoder_history"]))
    seconds = table.set_index("trainer")["s_per_iter"]
    findings = {
        "experiment": "E5",
        "title": "Reconstruction loss against wall-clock training seconds, and seconds per iteration (Fig. 10, Table 2)",
        "claims": [
            sooner_claim(times, lowest, threshold, common),
            kl_slowest_claim(times, threshold),
            iteration_cost_claim(float(seconds["GPE decoder"]), float(seconds["VAE"])),
        ],
        "notes": [
            "Fig. 10's curves, the threshold times and the best MSEs are on the validation split (the split every "
            "trainer measures and stops on), not the held-out split, which evaluate reserves for its final figures; "
            "heldout_recon_mse in the table is each final model's MSE on the held-out split.",
            f"Seconds are training seconds (the histories' train_elapsed_s: evaluations and checkpoints excluded); GPE's "
            f"curve starts after its encoder's {encoder_offset:.1f} s. They were measured on this run's machine, whose "
            "load they include: on a shared machine they are upper bounds, and the threshold times are read at the "
            "evaluations (every eval_every steps).",
            f"Learning rates: for each trainer the largest of {probes['gpe']['learning_rates']} that converged stably in a "
            f"{probes['gpe']['steps']}-step probe. Stable: no non-finite loss, the mean training loss over the last fifth "
            f"of the probe at most {1 - probes['gpe']['min_decrease']:.2f}x the mean over its first fifth, and no later "
            "logging window above the first fifth's mean; for a baseline the same holds for its reconstruction term as "
            "well as its joint loss. When no rate is stable, the smallest is taken.",
            *probe_notes(probes),
            "GPE's decoder probe trained on the latents of an encoder the probe trained at the chosen rate with the "
            "stage's settings; the stage then trained that encoder again: "
            + (
                f"identical ({check.get('steps')} steps, the same validation GME at every evaluation, to the 12 "
                "significant digits a CSV history keeps)."
                if identical
                else f"NOT identical (probe {check}, stage {encoder_check(outputs['gpe']['encoder_history'])})."
            ),
        ],
        "threshold": threshold,
        "split": "validation",
        "seconds_to_threshold": times,
        "lowest_validation_mse_by_common_time": {"seconds": common, **lowest},
        "encoder_offset_s": encoder_offset,
        "encoder_retrained_identically": identical,
        "learning_rate_probe": probe_table(probes).to_dict("records"),
    }
    figure = wallclock_figure(curves, threshold, encoder_offset)
    return table, figure, findings


def sooner_claim(times: dict[str, float | None], lowest: dict[str, float], threshold: float, common: float) -> dict[str, str]:
    """GPE reaches the threshold strictly before each baseline (GPE's time with its encoder's seconds added)."""
    baselines = [method for method in METHODS if method != "gpe"]
    comparisons = [reached_before(times["gpe"], times[method]) for method in baselines]
    if all(time is None for time in times.values()):
        verdict = NOT_MEASURABLE
    elif False in comparisons:
        verdict = NOT_HELD
    else:
        verdict = HELD  # GPE reached the threshold (else no method did, or a baseline that did beat it)
    return claim(
        "GPE reaches a lower reconstruction loss sooner than the four baselines even with the encoder's time added (Fig. 10)",
        "Fig. 10: on all four datasets GPE's curve, shifted by its encoder's pretraining time, reaches low reconstruction "
        "loss earlier than VAE, VAE+MDS, AE and AE+MDS (on CIFAR-10 hours earlier)",
        f"seconds to validation MSE <= {threshold:g}: "
        + ", ".join(f"{METHODS[m]} {format_seconds(t)}" for m, t in times.items())
        + f"; lowest validation MSE within the first {common:.1f} s (the shortest method's training time): "
        + ", ".join(f"{METHODS[m]} {v:.4g}" if not math.isnan(v) else f"{METHODS[m]} none yet" for m, v in lowest.items()),
        verdict,
        f"rule: GPE's time to a validation MSE <= {threshold:g} (exp_wallclock.threshold), its encoder's seconds included, "
        "strictly below every baseline's; a method that does not get there within its budget counts as later than one that "
        "does; not measurable when no method gets there" + (": no method reached it" if verdict == NOT_MEASURABLE else ""),
    )


def kl_slowest_claim(times: dict[str, float | None], threshold: float) -> dict[str, str]:
    """VAE and VAE+MDS reach the threshold strictly later than each of AE, AE+MDS and GPE."""
    others = [method for method in METHODS if method not in KL_METHODS]
    comparisons = [reached_before(times[other], times[kl]) for kl in KL_METHODS for other in others]
    if False in comparisons:
        verdict, why = NOT_HELD, ""
    elif None in comparisons:
        verdict, why = NOT_MEASURABLE, ": a KL method and a method without KL both missed the threshold, which cannot order them"
    else:
        verdict, why = HELD, ""
    return claim(
        "KL-trained methods converge slowest (Fig. 10)",
        "Fig. 10 and section 8.5: across datasets the methods trained with a KL term (VAE, VAE+MDS) converge more slowly",
        "seconds to validation MSE <= "
        + f"{threshold:g}: "
        + ", ".join(f"{METHODS[m]} {format_seconds(times[m])}" for m in (*KL_METHODS, *others)),
        verdict,
        "rule: VAE and VAE+MDS each reach the threshold strictly later than each of AE, AE+MDS and GPE (GPE with its "
        "encoder's seconds), a method that does not get there within its budget counting as later than one that does" + why,
    )


def iteration_cost_claim(gpe_decoder: float, vae: float) -> dict[str, str]:
    """A GPE decoder iteration takes fewer seconds than a VAE iteration (mean over each stage's training)."""
    return claim(
        "A GPE decoder iteration is cheaper than a VAE iteration (Table 2)",
        "Table 2 (V100, s/iter), GPE decoder against VAE: MNIST 0.022 vs 0.024, CIFAR-10 0.306 vs 0.318, CelebA 0.191 vs "
        "0.203, CelebA-HQ 0.588 vs 0.705",
        f"GPE decoder {1000 * gpe_decoder:.3f} ms/iter, VAE {1000 * vae:.3f} ms/iter (ratio {gpe_decoder / vae:.2f})",
        HELD if gpe_decoder < vae else NOT_HELD,
        "rule: the GPE decoder stage's training seconds per iteration strictly below the VAE's joint step's, each the "
        "stage's train_elapsed_s over its steps, on the light digits networks of conf/base on this run's CPU (the paper's "
        "gap comes from decoders far heavier than these)",
    )


def wallclock_figure(curves: dict[str, pd.DataFrame], threshold: float, encoder_offset: float) -> Figure:
    """Fig. 10: every method's validation reconstruction MSE against training seconds, GPE shifted by its encoder."""
    figure = plotting.curves_against_seconds_figure(
        {METHODS[method]: curve for method, curve in curves.items()},
        "reconstruction MSE on the validation split",
        "E5 (paper Fig. 10): reconstruction loss against training seconds",
    )
    axis = figure.axes[0]
    axis.axvspan(0, encoder_offset, color="0.85", zorder=0, label=f"GPE encoder pretraining ({encoder_offset:.1f} s)")
    axis.axhline(threshold, color="0.3", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
