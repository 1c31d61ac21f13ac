"""Nodes of E6 (Fig. 11): generation quality against flow iterations, on GPE latents and on VAE latents.

Each method's flow hands on its moving-average weights after the experiment's snapshot steps. The snapshot at
the flow's last step is the final flow, which the method's evaluate stage already sampled and measured: its row,
and the real-vs-real floor, are read from evaluation_metrics. For every earlier snapshot the summary rebuilds the
velocity field, samples exactly as evaluate does (generate_samples) and measures the samples with evaluate's own
distances against the same held-out images; beside them, the VAE's decoder applied to N(0, I) without any flow.
The claims compare sets through paired bootstrap differences (core.metrics.paired_bootstrap_difference) of the
claim's distance: GPE minus VAE at each snapshot, and the VAE without flow minus each flow's best snapshot.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from gpe_pipeline.core.data import to_model_scale
from gpe_pipeline.core.metrics import frechet_distance, paired_bootstrap_difference
from gpe_pipeline.core.models import model_from_spec
from gpe_pipeline.core.sampling import sample_prior_images
from gpe_pipeline.core.training import resolve_device
from gpe_pipeline.evaluation import (
    COMPARISONS,
    distance_features,
    distribution_distances,
    extract_features,
    generate_samples,
    real_comparison_sets,
)
from gpe_pipeline.readings import by_variant, json_records, last_step, stage_costs
from gpe_pipeline.variants import GENERATION_METHODS as METHODS
from gpe_pipeline.verdicts import HELD, NOT_HELD, NOT_MEASURABLE, claim

# Each method's catalog entries the summary reads (exp_generation_budget.<method>.<entry>).
SUMMARY_INPUTS = (
    "flow",
    "flow_snapshots",
    "decoder",
    "latent_stats",
    "encoder_history",
    "decoder_history",
    "flow_history",
    "evaluation_metrics",
    "generated_samples",  # evaluate's samples of the final flow: the paired intervals need their features
)
# evaluate's distances, named by their key prefix, in the order the table and the figure show them.
DISTANCES = {
    "fd_classifier": "classifier Frechet distance",
    "kd_classifier": "classifier kernel distance (KID form)",
    "fid": "FID (Inception)",
    "kid": "KID (Inception)",
    "fd_pixel": "pixel Frechet distance",
    "kd_pixel": "pixel kernel distance",
}
# The distance the claim is decided on: the first of these the run measured (the paper's FID, else the classifier's).
CLAIM_DISTANCES = ("fid", "fd_classifier", "fd_pixel")
# The features each of those distances is computed on (evaluation.distance_features' names).
FEATURES_OF = {"fid": "inception", "fd_classifier": "classifier", "fd_pixel": "pixel"}
NO_FLOW, FLOOR = "vae_no_flow", "floor"
LABELS = {
    "gpe": "GPE latents + flow",
    "vae": "VAE latents + flow",
    NO_FLOW: "VAE decoder on N(0, I), no flow",
    FLOOR: "floor: train vs held-out",
}


def snapshot_velocity(flow: nn.Module, weights: dict[str, torch.Tensor]) -> nn.Module:
    """The final flow's velocity field (its build spec) with a snapshot's weights."""
    return model_from_spec(flow.build_spec.as_dict(), weights)


def distance_row(variant: str, iterations: float, label: str, distances: dict[str, float]) -> dict[str, Any]:
    """One table row: each distance evaluate measured for the comparison `label`, with its interval or std."""
    row: dict[str, Any] = {"variant": variant, "flow_iterations": iterations}
    for kind in DISTANCES:
        for suffix in ("", "_ci_low", "_ci_high", "_std"):
            key = f"{kind}_{label}{suffix}"
            if key in distances:
                row[f"{kind}{suffix}"] = distances[key]
    return row


def generation_distances(
    generated: dict[str, dict[str, torch.Tensor]], heldout_features: dict[str, dict[str, torch.Tensor]], features, evaluate
) -> dict:
    """evaluate's `gen` comparison of one generated set's features (extract_features of {"gen": N rows}) against the
    held-out set's (both extracted once)."""
    extracted = {name: {**heldout_features[name], **generated[name]} for name in features}
    return distribution_distances({}, features, evaluate, {"gen": COMPARISONS["gen"]}, extracted)


def claim_distance(measured: Any) -> str:
    """The distance the claims are decided on: the first of CLAIM_DISTANCES in `measured` (distance names, or a table
    with those columns)."""
    return next(distance for distance in CLAIM_DISTANCES if distance in measured)


def measure_snapshots(
    train_data: dict[str, Any],
    heldout_data: dict[str, Any],
    metadata: dict[str, Any],
    feature_classifier: nn.Module,
    evaluate: dict[str, Any],
    variants: dict[str, dict[str, Any]],
) -> tuple[pd.DataFrame, dict[Any, torch.Tensor], int, str, float]:
    """The distances of every method's snapshots, of the VAE without flow and the floor, as table rows.

    The snapshot at a flow's last step (the final flow) and the floor are evaluate's (evaluation_metrics, on its
    generated_samples); every earlier snapshot is sampled and measured here. Returns the table, the claim
    distance's features of every set ({(method, step): (N, F)}, NO_FLOW, and "heldout"), N (points per set),
    fid_status and the sampler's function evaluations per sample (of the last flow sampled).
    """
    heldout = to_model_scale(heldout_data["x"])
    real, heldout_rows = real_comparison_sets(train_data, heldout, evaluate)
    size = len(heldout_rows)
    features, fid_status = distance_features(feature_classifier, evaluate, images=heldout.ndim == 4)
    heldout_features = extract_features({"heldout": real["heldout"]}, features, evaluate)
    kind = FEATURES_OF[claim_distance({distance for distance, name in FEATURES_OF.items() if name in features})]
    claim_sets: dict[Any, torch.Tensor] = {"heldout": heldout_features[kind]["heldout"]}
    rows, nfe = [], math.nan
    for method in METHODS:
        outputs = variants[method]
        final_step = last_step(outputs["flow_history"])
        for step, weights in sorted(outputs["flow_snapshots"].items()):
            if step == final_step:  # the final flow: evaluate sampled it with the same settings and measured it
                metrics = outputs["evaluation_metrics"]
                rows.append(distance_row(method, step, "gen", metrics))
                nfe = metrics["sampling_nfe"]
                generated = extract_features({"gen": outputs["generated_samples"][:size]}, {kind: features[kind]}, evaluate)
            else:
                velocity = snapshot_velocity(outputs["flow"], weights)
                images, info = generate_samples(velocity, outputs["decoder"], outputs["latent_stats"], metadata, evaluate)
                nfe = info["nfe"]
                # One generated set's images at a time; only the claim distance's features of each set are kept.
                generated = extract_features({"gen": images[:size]}, features, evaluate)
                rows.append(
                    distance_row(method, step, "gen", generation_distances(generated, heldout_features, features, evaluate))
                )
            claim_sets[method, step] = generated[kind]["gen"]
    vae = variants["vae"]
    prior = sample_prior_images(
        vae["decoder"].to(resolve_device(evaluate["device"])),
        size,
        vae["latent_stats"]["mean"].shape[-1],
        evaluate["batch_size"],
        generator=torch.Generator().manual_seed(evaluate["sampling"].get("seed", 0)),  # the flows' starting noise
    )
    generated = extract_features({"gen": prior}, features, evaluate)
    claim_sets[NO_FLOW] = generated[kind]["gen"]
    rows.append(distance_row(NO_FLOW, 0, "gen", generation_distances(generated, heldout_features, features, evaluate)))
    rows.append(distance_row(FLOOR, math.nan, FLOOR, variants[METHODS[0]]["evaluation_metrics"]))  # the same for both
    return pd.DataFrame(rows), claim_sets, size, fid_status, nfe


def paired_difference(
    first: torch.Tensor, second: torch.Tensor, reference: torch.Tensor, evaluate: dict[str, Any]
) -> tuple[float, float, float]:
    """d(first, reference) - d(second, reference) of the Frechet distance with evaluate's paired bootstrap interval
    (evaluate.bootstrap's resamples, confidence, and evaluate.seed); nan bounds for features wider than
    evaluate.bootstrap.max_features, which get no interval (as in evaluate)."""
    bootstrap = evaluate["bootstrap"]
    if reference.shape[1] > bootstrap["max_features"]:
        return frechet_distance(first, reference) - frechet_distance(second, reference), math.nan, math.nan
    return paired_bootstrap_difference(
        frechet_distance, first, second, reference, bootstrap["resamples"], bootstrap["confidence"], evaluate.get("seed", 0)
    )


def which_lower(low: float, high: float, first: str, second: str) -> str | None:
    """Which of two sets an interval of d(first) - d(second) says is lower: `first` when it lies wholly below 0,
    `second` wholly above, "" when it holds 0, None when there is no interval (nan bounds)."""
    if math.isnan(low) or math.isnan(high):
        return None
    return first if high < 0 else second if low > 0 else ""


def matched_iterations(
    table: pd.DataFrame, claim_sets: dict[Any, torch.Tensor], distance: str, evaluate: dict[str, Any]
) -> pd.DataFrame:
    """GPE against the VAE at every snapshot both have: each distance, GPE - VAE with its paired interval, and which
    is lower (separated: "gpe" when the interval lies wholly below 0, "vae" wholly above, "" when it holds 0, None
    without an interval)."""
    by_method = {m: table[table["variant"] == m].set_index("flow_iterations") for m in METHODS}
    steps = sorted(set(by_method["gpe"].index) & set(by_method["vae"].index))
    rows = []
    for step in steps:
        difference, low, high = paired_difference(
            claim_sets["gpe", step], claim_sets["vae", step], claim_sets["heldout"], evaluate
        )
        rows.append(
            {
                "flow_iterations": int(step),
                "gpe": by_method["gpe"].loc[step, distance],
                "vae": by_method["vae"].loc[step, distance],
                "difference": difference,
                "difference_ci_low": low,
                "difference_ci_high": high,
                "separated": which_lower(low, high, "gpe", "vae"),
            }
        )
    columns = ["flow_iterations", "gpe", "vae", "difference", "difference_ci_low", "difference_ci_high", "separated"]
    return pd.DataFrame(rows, columns=columns)


def format_difference(difference: float, low: float, high: float) -> str:
    """'-2.1 [-5.3, 1.0]', or '-2.1 (no interval)'."""
    if math.isnan(low):
        return f"{difference:+.3g} (no interval)"
    return f"{difference:+.3g} [{low:+.3g}, {high:+.3g}]"


def generation_verdict(matched: pd.DataFrame, distance: str, points: int, confidence: float) -> tuple[str, str, str]:
    """The claim "GPE latents give better generation at matched iterations": (verdict, measured, reason).

    Rule: at each snapshot the paired interval of GPE minus VAE decides which is lower (wholly below 0: GPE; wholly
    above: the VAE), or neither when it holds 0. Held when GPE is lower at more than half of the snapshots and the
    VAE at none; did not hold when the VAE is lower at any; not measurable otherwise. Without intervals the point
    estimates decide (held when GPE's is lower at more than half), and the reason says so.
    """
    total = len(matched)
    if total == 0:
        return NOT_MEASURABLE, "no snapshot iteration measured for both methods", "no matched iterations"
    per_step = "; ".join(
        f"{int(r.flow_iterations):,}: {format_difference(r.difference, r.difference_ci_low, r.difference_ci_high)}"
        for r in matched.itertuples(index=False)
    )
    heading = f"{DISTANCES[distance]} at N = {points}, GPE minus VAE at each snapshot"
    if matched["separated"].isna().any():
        lower = int((matched["difference"] < 0).sum())
        measured = f"{heading} (GPE lower at {lower} of {total}): {per_step}"
        reason = (
            f"no bootstrap intervals for {distance}: decided on the point estimates, held when GPE's is lower at more than half"
        )
        return (HELD if lower > total / 2 else NOT_HELD), measured, reason
    for_gpe = int((matched["separated"] == "gpe").sum())
    for_vae = int((matched["separated"] == "vae").sum())
    undecided = total - for_gpe - for_vae
    measured = (
        f"{heading} with its paired {confidence:.0%} bootstrap interval (GPE lower at {for_gpe}, the VAE lower at "
        f"{for_vae}, neither at {undecided} of {total} snapshots): {per_step}"
    )
    verdict = NOT_HELD if for_vae else HELD if for_gpe > total / 2 else NOT_MEASURABLE
    rule = (
        "rule: at each snapshot the paired bootstrap interval of GPE's distance minus the VAE's (both on the same "
        "resampled held-out rows and the same resampled noise draws) decides which is lower, or neither when it holds "
        "0; held when GPE is lower at more than half of the snapshots and the VAE at none; did not hold when the VAE is "
        "lower at any; not measurable otherwise"
    )
    if verdict == NOT_MEASURABLE:
        rule += f": at N = {points} the interval holds 0 at {undecided} of {total} snapshots"
    return verdict, measured, rule


def best_snapshot(table: pd.DataFrame, method: str, distance: str) -> int:
    """The flow iterations of a method's snapshot with the lowest point estimate of the distance."""
    rows = table[table["variant"] == method]
    return int(rows.loc[rows[distance].idxmin(), "flow_iterations"])


def no_flow_claim(
    table: pd.DataFrame, claim_sets: dict[Any, torch.Tensor], distance: str, points: int, evaluate: dict[str, Any]
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The claim "the VAE without flow scores worst": the claim and, per flow, its paired difference's record.

    Rule: for each flow, the paired interval of the VAE without flow's distance minus that flow's best snapshot's
    decides; held when both intervals lie wholly above 0, did not hold when either lies wholly below 0, not
    measurable otherwise. Without intervals the point estimates decide (held when both differences are positive).
    """
    records = []
    for method in METHODS:
        step = best_snapshot(table, method, distance)
        difference, low, high = paired_difference(claim_sets[NO_FLOW], claim_sets[method, step], claim_sets["heldout"], evaluate)
        best = float(table.loc[(table["variant"] == method) & (table["flow_iterations"] == step), distance].iloc[0])
        record = {"method": method, "best_at": step, "best": best, "difference": difference, "ci_low": low, "ci_high": high}
        records.append({**record, "separated": which_lower(low, high, NO_FLOW, method)})
    no_flow = float(table.loc[table["variant"] == NO_FLOW, distance].iloc[0])
    confidence = evaluate["bootstrap"]["confidence"]
    measured = f"{DISTANCES[distance]} at N = {points}, the VAE without flow ({no_flow:.3g}) minus each flow's best snapshot" + (
        f" with its paired {confidence:.0%} bootstrap interval: "
        + "; ".join(
            f"{LABELS[r['method']]} (best at {r['best_at']:,} iterations, {r['best']:.3g}): "
            + format_difference(r["difference"], r["ci_low"], r["ci_high"])
            for r in records
        )
    )
    separated = [r["separated"] for r in records]
    if None in separated:
        positive = all(r["difference"] > 0 for r in records)
        reason = f"no bootstrap intervals for {distance}: decided on the point estimates, held when both differences are positive"
        verdict = HELD if positive else NOT_HELD
    else:
        flows_lower = [side == record["method"] for side, record in zip(separated, records, strict=True)]
        verdict = NOT_HELD if NO_FLOW in separated else HELD if all(flows_lower) else NOT_MEASURABLE
        reason = (
            "rule: for each flow, the paired bootstrap interval of the VAE without flow's distance minus that of the "
            "flow's best snapshot (the lowest point estimate, a choice that favours the flow), on the same resampled "
            "held-out rows and noise draws; held when both intervals lie wholly above 0, did not hold when either lies "
            "wholly below 0, not measurable otherwise"
            + (f": at N = {points} an interval holds 0" if verdict == NOT_MEASURABLE else "")
        )
    item = claim(
        "The VAE decoder without a flow scores worst (Fig. 11)",
        "Fig. 11 (section 8.6): each plot includes 'the FID attained by the VAE without the flow model, which represents "
        "the baseline score before training', and it scores worst there",
        measured,
        verdict,
        reason,
    )
    return item, records


def other_distance_note(table: pd.DataFrame, distance: str) -> str:
    """How a Frechet distance the claims do not use compares GPE and the VAE: point estimates only, never a verdict."""
    by_method = {m: table[table["variant"] == m].set_index("flow_iterations")[distance] for m in METHODS}
    steps = sorted(set(by_method["gpe"].index) & set(by_method["vae"].index))
    lower = sum(bool(by_method["gpe"][step] < by_method["vae"][step]) for step in steps)
    return (
        f"{DISTANCES[distance]} (not used for the verdicts; point estimates, no paired interval): GPE lower at {lower} "
        f"of {len(steps)} snapshots"
    )


def baseline_note(table: pd.DataFrame, distance: str) -> str:
    """The VAE without flow and the floor beside each method's flow at its last snapshot."""

    def value(variant: str) -> str:
        rows = table[table["variant"] == variant].sort_values("flow_iterations")
        if not len(rows):
            return "not measured"
        row = rows.iloc[-1]
        interval = f" [{row[f'{distance}_ci_low']:.3g}, {row[f'{distance}_ci_high']:.3g}]" if f"{distance}_ci_low" in row else ""
        return f"{row[distance]:.3g}{interval}"

    return (
        f"{DISTANCES[distance]}: VAE without flow {value(NO_FLOW)}; at the last snapshot GPE + flow {value('gpe')}, "
        f"VAE + flow {value('vae')}; real-vs-real floor {value(FLOOR)}"
    )


def budget_note(variants: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """What each method trained before its flow, and the flows' budget, against the paper's equal 24 h."""
    budget: dict[str, Any] = {}
    for method, outputs in variants.items():
        (encoder_steps, encoder_s), (decoder_steps, decoder_s), (flow_steps, flow_s) = stage_costs(outputs)
        budget[method] = {
            "encoder_steps": encoder_steps,
            "decoder_steps": decoder_steps,
            "autoencoder_train_s": round(encoder_s + decoder_s, 2),
            "flow_steps": flow_steps,
            "flow_train_s": round(flow_s, 2),
        }
    gpe, vae = budget["gpe"], budget["vae"]
    note = (
        "Budget: the paper trains each method for an equal wall-clock of 24 h on one V100 (GPE: encoder then decoder, "
        "24 h together; VAE: encoder and decoder jointly for 24 h), then a flow with the same architecture and learning "
        "rate on each method's own latents, and compares FID (10,000 generated against 10,000 real images) at matched "
        "flow iterations. This run gives the autoencoders this project's step budgets, not equal time (GPE: "
        f"{gpe['encoder_steps']:,} encoder + {gpe['decoder_steps']:,} decoder steps, {gpe['autoencoder_train_s']} s; "
        f"VAE: {vae['encoder_steps']:,} joint steps, {vae['autoencoder_train_s']} s of training), then both flows on "
        f"each method's own normalised latents with identical settings for the same {gpe['flow_steps']:,} iterations "
        f"(GPE {gpe['flow_train_s']} s, VAE {vae['flow_train_s']} s)."
    )
    return note, budget


def summarise_generation_budget(
    train_data: dict[str, Any],
    heldout_data: dict[str, Any],
    metadata: dict[str, Any],
    feature_classifier: nn.Module,
    evaluate: dict[str, Any],
    snapshot_steps: list[int],
    **variant_outputs: Any,
) -> tuple[pd.DataFrame, Figure, dict]:
    """The distances against flow iterations (table and Fig. 11), and the two claims' verdicts.

    snapshot_steps: the flow iterations asked for (exp_generation_budget.snapshot_steps).
    variant_outputs: "<method>__<entry>" for every method of METHODS and entry of SUMMARY_INPUTS.
    """
    variants = by_variant(variant_outputs)
    table, claim_sets, points, fid_status, nfe = measure_snapshots(
        train_data, heldout_data, metadata, feature_classifier, evaluate, variants
    )
    distance = claim_distance(table)
    matched = matched_iterations(table, claim_sets, distance, evaluate)
    verdict, measured, reason = generation_verdict(matched, distance, points, evaluate["bootstrap"]["confidence"])
    worst, no_flow = no_flow_claim(table, claim_sets, distance, points, evaluate)
    note, budget = budget_note(variants)
    sampling = evaluate["sampling"]
    notes = [
        note,
        f"Every set holds N = {points} images compared with the same {points} held-out ones; samples integrate the "
        f"flow with {sampling['solver']} ({nfe:g} function evaluations, sampling seed {sampling.get('seed', 0)}) as "
        "evaluate does; the VAE without flow decodes the same N(0, I) draws in its own latent space, unnormalised.",
        f"Inception FID/KID: {fid_status}.",
        f"Paired intervals: each of {evaluate['bootstrap']['resamples']} resamples draws the held-out rows once for both "
        "sets compared and the generated rows once for both (row i of every generated set comes from the i-th noise "
        "draw of the sampling seed), so a difference moves only with what differs between the two sets; the table's intervals are each "
        "set's own (evaluate's) and are not used for the verdicts.",
        "Not tested: the paper's 'attains strong quality earlier' (it names no level of quality); every snapshot is "
        "in the table and the figure.",
    ]
    notes += [other_distance_note(table, kind) for kind in CLAIM_DISTANCES if kind in table and kind != distance]
    notes.append(baseline_note(table, distance))
    requested = sorted(set(snapshot_steps))
    for method in METHODS:
        missing = sorted(set(requested) - set(variants[method]["flow_snapshots"]))
        if missing:
            notes.append(f"{method}: no snapshot at {missing} (its flow stopped before those iterations)")
    findings = {
        "experiment": "E6",
        "title": "Generation quality against flow iterations, GPE and VAE latents (Fig. 11)",
        "claims": [
            claim(
                "GPE latents give better generation at matched iterations (Fig. 11)",
                "Fig. 11 (section 8.6): on MNIST, CIFAR-10 and CelebA, 'the GPE variant achieves lower FID at matched "
                "iteration counts'",
                measured,
                verdict,
                reason,
            ),
            worst,
        ],
        "notes": notes,
        "distance": distance,
        "points": points,
        "fid_status": fid_status,
        "snapshot_steps": requested,
        "matched": json_records(matched.to_dict(orient="records")),
        "no_flow": json_records(no_flow),
        "budget": budget,
    }
    return table, distances_figure(table, matched, distance, points), findings


def _band(rows: pd.DataFrame, kind: str) -> tuple[pd.Series, pd.Series] | None:
    """The interval drawn around a distance: its bootstrap interval, or mean +- std for a kernel distance."""
    if f"{kind}_ci_low" in rows:
        return rows[f"{kind}_ci_low"], rows[f"{kind}_ci_high"]
    if f"{kind}_std" in rows:
        return rows[kind] - rows[f"{kind}_std"], rows[kind] + rows[f"{kind}_std"]
    return None


def iterations_axis(axis, steps: pd.Series) -> None:
    """Flow iterations on the x axis: log scale over a decade or more, a tick at every snapshot."""
    if len(steps) and steps.max() >= 10 * steps.min():
        axis.set_xscale("log")
        axis.minorticks_off()
    ticks = sorted(steps.unique())
    axis.set_xticks(ticks, labels=[f"{int(step):,}" for step in ticks], fontsize=8)
    axis.set_xlabel("flow training iterations")


def distances_figure(table: pd.DataFrame, matched: pd.DataFrame, distance: str, points: int) -> Figure:
    """Each distance against flow iterations (GPE and VAE curves with bands, the no-flow VAE and the floor as lines),
    and a last panel: the claim distance's GPE - VAE at each snapshot with its paired interval."""
    kinds = [kind for kind in DISTANCES if kind in table and kind != "kd_pixel"]
    figure, axes = plt.subplots(1, len(kinds) + 1, figsize=(4.8 * (len(kinds) + 1), 4.0), squeeze=False)
    steps = table.loc[table["variant"].isin(METHODS), "flow_iterations"]
    for axis, kind in zip(axes[0], kinds, strict=False):
        for method, colour in zip(METHODS, ("C0", "C1"), strict=True):
            rows = table[table["variant"] == method].sort_values("flow_iterations")
            axis.plot(rows["flow_iterations"], rows[kind], marker="o", color=colour, label=LABELS[method])
            band = _band(rows, kind)
            if band is not None:
                axis.fill_between(rows["flow_iterations"], *band, color=colour, alpha=0.2)
        for variant, style in ((NO_FLOW, {"color": "C1", "linestyle": "--"}), (FLOOR, {"color": "k", "linestyle": ":"})):
            row = table[table["variant"] == variant]
            axis.axhline(float(row[kind].iloc[0]), label=LABELS[variant], **style)
            band = _band(row, kind)
            if band is not None:
                axis.axhspan(float(band[0].iloc[0]), float(band[1].iloc[0]), color=style["color"], alpha=0.08)
        iterations_axis(axis, steps)
        axis.set_title(DISTANCES[kind])
    difference_axis = axes[0][-1]
    difference_axis.axhline(0.0, color="0.3", linewidth=1)
    difference_axis.plot(matched["flow_iterations"], matched["difference"], marker="o", color="C2")
    difference_axis.fill_between(
        matched["flow_iterations"], matched["difference_ci_low"], matched["difference_ci_high"], color="C2", alpha=0.2
    )
    iterations_axis(difference_axis, steps)
    difference_axis.set_title(f"GPE - VAE, {DISTANCES[distance]}\n(paired interval; below 0: GPE lower)", fontsize=9)
    axes[0][0].set_ylabel("distance to held-out images (lower is better)")
    figure.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9)
    figure.suptitle(f"E6: generation against flow iterations, N = {points} images per set (paper Fig. 11)")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    return figure
