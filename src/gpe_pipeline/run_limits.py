"""The "Limits of this run" lines of the paper report: what a reviewer needs to weigh its verdicts, written from the
run's own settings (its parameters and its dataset's metadata): the scale, the networks, the budgets, the seeds,
the sample size of the generation distances, and where the paper's datasets and networks differ from this run's.

Plain Python; nothing here imports Kedro.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpe_pipeline.core.models import PAPER_IMAGE_SIZES

# The paper's datasets (ingest.dataset names) and their names in the paper; each has its own reference networks,
# paper_<dataset> (core.models), at the image size PAPER_IMAGE_SIZES gives.
PAPER_DATASETS = {"mnist": "MNIST", "cifar10": "CIFAR-10", "celeba": "CelebA", "celebahq": "CelebA-HQ"}
PAPER_FID_POINTS = 10_000  # section 8.6: FID from 10,000 generated against 10,000 real images
# The sections whose networks and budgets the report states, and what each trains.
NETWORK_SECTIONS = {"train_encoder": "encoder", "train_decoder": "decoder", "train_flow": "flow"}


def network_text(section: Mapping[str, Any]) -> str:
    """'mlp (hidden [256, 256], activation softplus)': a section's architecture with its own model options."""
    architecture = section.get("architecture", "?")
    options = (section.get("model_options") or {}).get(architecture) or {}
    details = ", ".join(f"{key} {value}" for key, value in options.items())
    return f"{architecture} ({details})" if details else str(architecture)


def scale_line(metadata: Mapping[str, Any]) -> str:
    """The dataset, its example shape and the size of each split."""
    shape = list(metadata.get("shape", []))
    if len(shape) == 3:
        form = f"{shape[1]} x {shape[2]} images, {shape[0]} channel{'s' if shape[0] != 1 else ''}"
    else:
        form = f"{metadata.get('dim', '?')}-dimensional vectors"
    names = {"train": "train", "validation": "validation", "heldout": "held-out"}
    splits = " / ".join(f"{metadata.get(f'num_{split}', 0):,} {name}" for split, name in names.items())
    return f"Scale: {metadata.get('dataset', '?')} ({form}); {splits} examples (held-out: the split only evaluate reads)."


def networks_line(parameters: Mapping[str, Any]) -> str:
    """The encoder, decoder and flow networks of the shared sections, with the latent size."""
    parts = [f"{role} {network_text(parameters.get(section) or {})}" for section, role in NETWORK_SECTIONS.items()]
    latent = (parameters.get("train_encoder") or {}).get("latent_dim", "?")
    return f"Networks: {'; '.join(parts)}; latent size {latent}."


def budget_text(section: Mapping[str, Any]) -> str:
    """'3,000 steps (or validation target 0.0005)' from a section's training settings."""
    training = section.get("training") or {}
    steps = training.get("max_steps")
    text = f"{steps:,} steps" if isinstance(steps, int) else f"{steps} steps"
    return text + (f" (or its validation target {training['target']:g})" if training.get("target") is not None else "")


def budgets_line(parameters: Mapping[str, Any]) -> str:
    """Each shared training's max_steps and target (a baseline's joint training has the decoder's budget)."""
    parts = [f"{role} {budget_text(parameters.get(section) or {})}" for section, role in NETWORK_SECTIONS.items()]
    classifier = (parameters.get("evaluate") or {}).get("classifier")
    if classifier:
        parts.append(f"feature classifier {budget_text(classifier)}")
    return f"Budgets (training.max_steps): {'; '.join(parts)}; a VAE-family baseline trains jointly on the decoder's budget."


def experiment_overrides(parameters: Mapping[str, Any]) -> list[str]:
    """One line per experiment whose own settings change a network, a budget or the dataset of the shared sections."""
    lines = []
    for name in sorted(key for key in parameters if key.startswith("exp_")):
        experiment = parameters[name] if isinstance(parameters[name], Mapping) else {}
        changes = []
        dataset = (experiment.get("ingest") or {}).get("dataset")
        if dataset:
            changes.append(f"its own dataset {dataset}")
        for section, role in NETWORK_SECTIONS.items():
            override = (experiment.get("shared") or {}).get(section) or {}
            shared = parameters.get(section) or {}
            if "architecture" in override or "model_options" in override:
                merged = {
                    **shared,
                    **override,
                    "model_options": {**(shared.get("model_options") or {}), **(override.get("model_options") or {})},
                }
                changes.append(f"{role} {network_text(merged)}")
            if "latent_dim" in override:
                changes.append(f"latent size {override['latent_dim']}")
            if "max_steps" in (override.get("training") or {}):
                changes.append(f"{role} {override['training']['max_steps']:,} steps")
        if changes:
            lines.append(f"{name} sets {', '.join(changes)}.")
    return lines


def seeds_line(parameters: Mapping[str, Any]) -> str:
    """How many seeds the verdicts rest on: paper_report.seeds (else 1), and any experiment's own seeds."""

    def count(key: str, seeds: Any) -> str:
        """'3 (<key>)': a number of seeds (variants.seed_count checks it)."""
        return f"{seeds} ({key})"

    report = (parameters.get("paper_report") or {}).get("seeds")
    text = f"Seeds: {count('paper_report.seeds', report)}" if report is not None else "Seeds: 1 (paper_report.seeds not set)"
    own = [
        count(f"{name}.seeds", parameters[name]["seeds"])
        for name in sorted(parameters)
        if name.startswith("exp_") and isinstance(parameters[name], Mapping) and "seeds" in parameters[name]
    ]
    varied = (
        " Seed k adds k to every training's seed (initial weights, batch order, noise) and to evaluate's sampling "
        "seeds; the data split and the feature classifier are the same in every seed."
    )
    return text + (f"; an experiment's own: {', '.join(own)}" if own else "") + "." + varied


def generation_points(parameters: Mapping[str, Any], metadata: Mapping[str, Any]) -> int:
    """N of every generation distance: min(evaluate.max_points, held-out size, train size) (evaluation.comparison_size)."""
    evaluate = parameters.get("evaluate") or {}
    return min(int(evaluate.get("max_points", 0)), int(metadata.get("num_heldout", 0)), int(metadata.get("num_train", 0)))


def generation_line(parameters: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    """The sample sizes behind the generation distances and their intervals."""
    evaluate = parameters.get("evaluate") or {}
    points = generation_points(parameters, metadata)
    kid, bootstrap, sampling = (evaluate.get(key) or {} for key in ("kid", "bootstrap", "sampling"))
    return (
        f"Generation distances: N = {points:,} images per set (min of evaluate.max_points {evaluate.get('max_points')}, "
        f"the held-out and the train split); kernel distances over {kid.get('subsets')} subsets of "
        f"{min(int(kid.get('subset_size', 0)), points)} rows; Frechet intervals from {bootstrap.get('resamples')} bootstrap "
        f"resamples at {bootstrap.get('confidence', 0):.0%}; samples by {sampling.get('solver')} with "
        f"{sampling.get('steps')} steps."
    )


def paper_lines(parameters: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
    """Where the paper's datasets, image sizes, networks and FID sample size differ from this run's (none when not)."""
    dataset = metadata.get("dataset")
    lines = []
    paper_network = f"paper_{dataset}" if dataset in PAPER_DATASETS else None
    if paper_network is None:
        lines.append(
            f"Not the paper's data: {dataset} is none of its datasets ({', '.join(PAPER_DATASETS.values())}; a mixture "
            "in R^500 for Fig. 3), so every verdict tests a claim on other data."
        )
    else:
        shape = list(metadata.get("shape", []))
        if len(shape) == 3 and shape[-1] != PAPER_IMAGE_SIZES[paper_network]:
            lines.append(
                f"Not the paper's image size: {PAPER_DATASETS[dataset]} at {shape[-1]} x {shape[-1]} here, "
                f"{PAPER_IMAGE_SIZES[paper_network]} x {PAPER_IMAGE_SIZES[paper_network]} in the paper."
            )
    architectures = {role: (parameters.get(f"train_{role}") or {}).get("architecture") for role in ("encoder", "decoder")}
    if any(architecture != paper_network for architecture in architectures.values()):
        expected = paper_network or "its reference implementation's networks (paper_mnist ... paper_celebahq)"
        used = ", ".join(f"{role} {architecture}" for role, architecture in architectures.items())
        lines.append(f"Not the paper's networks: the paper trains {expected}, this run trains {used}.")
    points = generation_points(parameters, metadata)
    if points < PAPER_FID_POINTS:
        lines.append(
            f"Smaller generation samples: the paper's FID compares {PAPER_FID_POINTS:,} generated with {PAPER_FID_POINTS:,} "
            f"real images, this run's distances {points:,} with {points:,}, so their intervals are wider."
        )
    return lines


def limits_of_run(parameters: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[str]:
    """The "Limits of this run" lines: scale, networks, budgets (and the experiments' own), seeds, generation sample
    sizes, and the paper's differences. parameters: the run's parameters (every section); metadata: the shared
    dataset's (ingest's dataset_metadata)."""
    return [
        scale_line(metadata),
        networks_line(parameters),
        budgets_line(parameters),
        *experiment_overrides(parameters),
        seeds_line(parameters),
        generation_line(parameters, metadata),
        *paper_lines(parameters, metadata),
    ]
