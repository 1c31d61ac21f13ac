"""Nodes of E6 (Fig. 11): generation quality against flow iterations, on GPE latents and on VAE latents.

Each method's flow hands on its moving-average weights after the experiment's snapshot steps. The snapshot at
the flow's last step is the final flow, which the method's evaluate stage already sampled and measured: its row,
and the real-vs-real floor, are read from evaluation_metrics. For every earlier snapshot the summary rebuilds the
velocity field, samples exactly as evaluate does (generate_samples) and measures the samples with evaluate's own
distances against the same held-out images; beside them, the VAE's decoder applied to N(0, I) without any flow.
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
from gpe_pipeline.readings import by_variant, last_step, stage_costs
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
    generated: torch.Tensor, heldout_features: dict[str, dict[str, torch.Tensor]], features, evaluate: dict[str, Any]
) -> dict:
    """evaluate's `gen` comparison of one generated set (N rows) against the held-out set's features (extracted once)."""
    return distribution_distances({"gen": generated}, features, evaluate, {"gen": COMPARISONS["gen"]}, heldout_features)


def measure_snapshots(
    train_data: dict[str, Any],
    heldout_data: dict[str, Any],
    metadata: dict[str, Any],
    feature_classifier: nn.Module,
    evaluate: dict[str, Any],
    variants: dict[str, dict[str, Any]],
) -> tuple[pd.DataFrame, int, str, float]:
    """The distances of every method's snapshots, of the VAE without flow and the floor, as table rows.

    The snapshot at a flow's last step (the final flow) and the floor are evaluate's (evaluation_metrics); every
    earlier snapshot is sampled and measured here. Returns the table, N (points per set), fid_status and the
    sampler's function evaluations per sample (of the last flow sampled).
    """
    heldout = to_model_scale(heldout_data["x"])
    real, heldout_rows = real_comparison_sets(train_data, heldout, evaluate)
    size = len(heldout_rows)
    features, fid_status = distance_features(feature_classifier, evaluate, images=heldout.ndim == 4)
    heldout_features = extract_features({"heldout": real["heldout"]}, features, evaluate)
    rows, nfe = [], math.nan
    for method in METHODS:
        outputs = variants[method]
        final_step = last_step(outputs["flow_history"])
        for step, weights in sorted(outputs["flow_snapshots"].items()):
            if step == final_step:  # the final flow: evaluate sampled it with the same settings and measured it
                metrics = outputs["evaluation_metrics"]
                rows.append(distance_row(method, step, "gen", metrics))
                nfe = metrics["sampling_nfe"]
                continue
            velocity = snapshot_velocity(outputs["flow"], weights)
            images, info = generate_samples(velocity, outputs["decoder"], outputs["latent_stats"], metadata, evaluate)
            nfe = info["nfe"]
            # One generated set at a time against the same held-out images: memory stays one set's at paper scale.
            rows.append(
                distance_row(method, step, "gen", generation_distances(images[:size], heldout_features, features, evaluate))
            )
    vae = variants["vae"]
    prior = sample_prior_images(
        vae["decoder"].to(resolve_device(evaluate["device"])),
        size,
        vae["latent_stats"]["mean"].shape[-1],
        evaluate["batch_size"],
        generator=torch.Generator().manual_seed(evaluate["sampling"].get("seed", 0)),  # the flows' starting noise
    )
    rows.append(distance_row(NO_FLOW, 0, "gen", generation_distances(prior, heldout_features, features, evaluate)))
    rows.append(distance_row(FLOOR, math.nan, FLOOR, variants[METHODS[0]]["evaluation_metrics"]))  # the same for both
    return pd.DataFrame(rows), size, fid_status, nfe


def matched_iterations(table: pd.DataFrame, distance: str) -> pd.DataFrame:
    """GPE against the VAE at every snapshot both have: the distance, its interval, which is lower, which separates.

    separated: "gpe" when GPE's interval lies wholly below the VAE's, "vae" for the reverse, "" when they overlap,
    None where the distance has no interval.
    """
    by_method = {m: table[table["variant"] == m].set_index("flow_iterations") for m in METHODS}
    steps = sorted(set(by_method["gpe"].index) & set(by_method["vae"].index))
    low, high = f"{distance}_ci_low", f"{distance}_ci_high"
    rows = []
    for step in steps:
        gpe, vae = by_method["gpe"].loc[step], by_method["vae"].loc[step]
        row = {
            "flow_iterations": int(step),
            "gpe": gpe[distance],
            "vae": vae[distance],
            "gpe_lower": gpe[distance] < vae[distance],
        }
        if low in table and not any(pd.isna(x) for x in (gpe[low], gpe[high], vae[low], vae[high])):
            row["separated"] = "gpe" if gpe[high] < vae[low] else "vae" if vae[high] < gpe[low] else ""
        else:
            row["separated"] = None
        rows.append(row)
    return pd.DataFrame(rows, columns=["flow_iterations", "gpe", "vae", "gpe_lower", "separated"])


def generation_verdict(matched: pd.DataFrame, distance: str, points: int) -> tuple[str, str, str]:
    """The claim "GPE latents give better generation at matched iterations": (verdict, measured, reason).

    Rule: held when GPE's distance is lower at most snapshots (more than half) and at no snapshot does the VAE's
    interval lie wholly below GPE's; did not hold otherwise; not measurable when the intervals overlap at every
    snapshot. Without intervals the point estimates decide, and the reason says so.
    """
    total = len(matched)
    if total == 0:
        return NOT_MEASURABLE, "no snapshot iteration measured for both methods", "no matched iterations"
    lower = int(matched["gpe_lower"].sum())
    per_step = "; ".join(
        f"{int(r.flow_iterations):,}: GPE {r.gpe:.3g} vs VAE {r.vae:.3g}" for r in matched.itertuples(index=False)
    )
    measured = f"{DISTANCES[distance]} at N = {points} (GPE lower at {lower} of {total} snapshots): {per_step}"
    majority = lower > total / 2
    if matched["separated"].isna().any():
        reason = f"no bootstrap intervals for {distance}: decided on the point estimates, GPE lower at more than half"
        return (HELD if majority else NOT_HELD), measured, reason
    for_gpe = int((matched["separated"] == "gpe").sum())
    for_vae = int((matched["separated"] == "vae").sum())
    if for_gpe == 0 and for_vae == 0:
        reason = (
            f"the 95% bootstrap intervals of GPE and the VAE overlap at all {total} snapshots: at N = {points} points "
            "the distances are too noisy to separate the two methods"
        )
        return NOT_MEASURABLE, measured, reason
    rule = (
        f"rule: GPE lower at more than half of the snapshots and the VAE's interval wholly below GPE's at none; "
        f"GPE's interval wholly below the VAE's at {for_gpe}, the VAE's below GPE's at {for_vae}"
    )
    return (HELD if majority and for_vae == 0 else NOT_HELD), measured, rule


def other_distance_note(table: pd.DataFrame, distance: str) -> str:
    """How a Frechet distance the claim does not use compares GPE and the VAE (shown, never used for the verdict)."""
    matched = matched_iterations(table, distance)
    line = f"{DISTANCES[distance]} (not used for the verdict): GPE lower at {int(matched['gpe_lower'].sum())} of {len(matched)}"
    if matched["separated"].isna().any():
        return f"{line} snapshots (no intervals)"
    separated = matched["separated"]
    return (
        f"{line} snapshots; GPE's interval wholly below the VAE's at {int((separated == 'gpe').sum())}, "
        f"the VAE's below GPE's at {int((separated == 'vae').sum())}"
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
    """The distances against flow iterations (table and Fig. 11), and the claim's verdict.

    snapshot_steps: the flow iterations asked for (exp_generation_budget.snapshot_steps).
    variant_outputs: "<method>__<entry>" for every method of METHODS and entry of SUMMARY_INPUTS.
    """
    variants = by_variant(variant_outputs)
    table, points, fid_status, nfe = measure_snapshots(train_data, heldout_data, metadata, feature_classifier, evaluate, variants)
    distance = next(kind for kind in CLAIM_DISTANCES if kind in table)
    matched = matched_iterations(table, distance)
    verdict, measured, reason = generation_verdict(matched, distance, points)
    note, budget = budget_note(variants)
    sampling = evaluate["sampling"]
    notes = [
        note,
        f"Every set holds N = {points} images compared with the same {points} held-out ones; samples integrate the "
        f"flow with {sampling['solver']} ({nfe:g} function evaluations, sampling seed {sampling.get('seed', 0)}) as "
        "evaluate does; the VAE without flow decodes the same N(0, I) draws in its own latent space, unnormalised.",
        f"Inception FID/KID: {fid_status}.",
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
                "Fig. 11: on MNIST, CIFAR-10 and CelebA, GPE's FID is lower than the VAE's at matched flow iterations "
                "and reaches good quality earlier; the VAE without flow scores worst",
                measured,
                verdict,
                reason,
            )
        ],
        "notes": notes,
        "distance": distance,
        "points": points,
        "fid_status": fid_status,
        "snapshot_steps": requested,
        "matched": matched.to_dict(orient="records"),
        "budget": budget,
    }
    return table, distances_figure(table, points), findings


def _band(rows: pd.DataFrame, kind: str) -> tuple[pd.Series, pd.Series] | None:
    """The interval drawn around a distance: its bootstrap interval, or mean +- std for a kernel distance."""
    if f"{kind}_ci_low" in rows:
        return rows[f"{kind}_ci_low"], rows[f"{kind}_ci_high"]
    if f"{kind}_std" in rows:
        return rows[kind] - rows[f"{kind}_std"], rows[kind] + rows[f"{kind}_std"]
    return None


def distances_figure(table: pd.DataFrame, points: int) -> Figure:
    """Each distance against flow iterations: GPE and VAE curves with bands, the no-flow VAE and the floor as lines."""
    kinds = [kind for kind in DISTANCES if kind in table and kind != "kd_pixel"]
    figure, axes = plt.subplots(1, len(kinds), figsize=(4.8 * len(kinds), 4.0), squeeze=False)
    steps = table.loc[table["variant"].isin(METHODS), "flow_iterations"]
    for axis, kind in zip(axes[0], kinds, strict=True):
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
        if len(steps) and steps.max() >= 10 * steps.min():
            axis.set_xscale("log")
            axis.minorticks_off()
        ticks = sorted(steps.unique())
        axis.set_xticks(ticks, labels=[f"{int(step):,}" for step in ticks], fontsize=8)
        axis.set_xlabel("flow training iterations")
        axis.set_title(DISTANCES[kind])
    axes[0][0].set_ylabel("distance to held-out images (lower is better)")
    figure.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9)
    figure.suptitle(f"E6: generation against flow iterations, N = {points} images per set (paper Fig. 11)")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    return figure
