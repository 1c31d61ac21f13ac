"""The parameter layer: every variant's parameter sections, merged once per run, read by everything else.

A variant is a Kedro namespace (compare.vae, exp_decoder_vs_gme.gme_low, ...) that runs the same stage pipelines
as the main job. Its sections are the shared stage sections (conf/base/parameters_<stage>.yml, with any
environment file and `--params` already applied) deep-merged with the variant's override layers, which may only
name keys the sections have: the method it trains (conf/base/parameters_methods.yml, written once for compare and
every experiment), its experiment's shared settings and grid point, and the user's own overrides under its
namespace (e.g. `--params compare.vae.train_encoder.beta=0.5`). Each variant's checkpoints go to a folder of its
own, so variants never share a file and an interrupted variant resumes alone.

`run_parameters(parameters, namespaces)` computes the sections of the namespaces a run contains, once, before its
first node (hooks.RunParametersHook). Kedro's own namespacing then hands them to the nodes: inside the namespace
compare.vae, a stage's `params:train_encoder` input is `params:compare.vae.train_encoder`, the completed section.
The parameter checks (validation.py) and the MLflow child runs (hooks.MlflowRunsHook) read the same result.
Nothing here imports Kedro.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from gpe_pipeline.experiment_parameters import (
    grid_values,
    is_number,
    parameter_error,
    positive_number,
    positive_numbers,
    threshold_range,
)
from gpe_pipeline.params import ParameterError

# The sections a variant's stages read.
STAGE_SECTIONS = ("train_encoder", "cache_latents", "train_decoder", "train_flow", "evaluate")
# Every method of the comparison (SPEC 1), defined once under `methods` in conf/base/parameters_methods.yml.
METHODS = ("gpe", "vae", "beta_vae", "ae", "vae_mds", "ae_mds")
METHODS_KEY = "methods"

Layers = Callable[[Mapping[str, Any]], list[Mapping[str, Any] | None]]


def nested_get(parameters: Mapping[str, Any], dotted: str) -> Any:
    """parameters["a"]["b"] for "a.b"; None where a key is missing."""
    value: Any = parameters
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def merge_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any] | None, where: str | None) -> dict[str, Any]:
    """A deep copy of base with overrides applied, nested dicts merged key by key.

    where: the overrides' parameter key (e.g. "compare.vae.train_encoder"): an override naming a key base does not
    have is refused, naming it. None: such keys are added (combining partial overrides, see combine).
    """
    merged = copy.deepcopy(dict(base))
    for key, value in (overrides or {}).items():
        if key not in merged and where is not None:
            raise ParameterError(f"{where}.{key} overrides a key the stage does not have: the keys there are {sorted(merged)}")
        if isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            merged[key] = merge_overrides(merged[key], value, None if where is None else f"{where}.{key}")
        else:
            merged[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return merged


def combine(*overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge partial override dicts, later ones winning (the merge into the stage sections checks the keys)."""
    return functools.reduce(lambda merged, override: merge_overrides(merged, override, where=None), overrides, {})


def namespaced_checkpoint(path: str | None, namespace: str) -> str | None:
    """data/06_models/checkpoints/encoder.pt -> data/06_models/checkpoints/<namespace>/encoder.pt."""
    if not path:
        return path
    posix = PurePosixPath(path)
    return str(posix.parent / namespace / posix.name)


def method(parameters: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One method's overrides of the stage sections, as conf/base/parameters_methods.yml defines it."""
    definition = nested_get(parameters, f"{METHODS_KEY}.{name}")
    if not isinstance(definition, Mapping):
        raise ParameterError(f"{METHODS_KEY}.{name} is missing: every method of {list(METHODS)} needs an entry there")
    return dict(definition)


@dataclass(frozen=True)
class Variant:
    """One namespace's recipe: its override layers, computed from the run's parameters, over the shared sections.

    data_from: the namespace whose ingest gives its data (an experiment's own dataset), else the run's shared one.
    """

    namespace: str
    layers: Layers
    data_from: str | None = None

    def sections(self, parameters: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """{section: merged dict} for every stage section; the user's own `<namespace>.<section>` keys merge last."""
        own = nested_get(parameters, self.namespace) or {}
        overrides = combine(*self.layers(parameters), own)
        unknown = sorted(set(overrides) - set(STAGE_SECTIONS))
        if unknown:
            raise ParameterError(
                f"{self.namespace}.{unknown[0]} is not a stage section a variant can override: use {list(STAGE_SECTIONS)}"
            )
        resolved = {}
        for section in STAGE_SECTIONS:
            merged = merge_overrides(parameters[section], overrides.get(section) or {}, f"{self.namespace}.{section}")
            training = merged.get("training")
            if isinstance(training, dict) and "checkpoint_path" in training:
                training["checkpoint_path"] = namespaced_checkpoint(training["checkpoint_path"], self.namespace)
            resolved[section] = merged
        return resolved


@dataclass(frozen=True)
class OwnDataset:
    """A namespace that ingests an experiment's own dataset: the ingest section with `<namespace>.ingest` merged in."""

    namespace: str

    def sections(self, parameters: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return {"ingest": merge_overrides(parameters["ingest"], nested_get(parameters, f"{self.namespace}.ingest"), "ingest")}


# --- the variants of compare and of every experiment -----------------------------------------------------------------


def compare_variant(name: str) -> Variant:
    """compare.<method>: the method's definition; --params compare.<method>.<section>... overrides it."""
    return Variant(f"compare.{name}", lambda parameters: [method(parameters, name)])


GMM_LATENTS = "exp_gmm_latents"
GMM_METHODS = ("gpe", "vae")


def gmm_latents_variant(name: str) -> Variant:
    """E1: the settings both methods share (4-layer MLPs, 2-D latents), then the method; on the experiment's gmm."""
    return Variant(
        f"{GMM_LATENTS}.{name}",
        lambda parameters: [nested_get(parameters, f"{GMM_LATENTS}.shared"), method(parameters, name)],
        data_from=GMM_LATENTS,
    )


ENCODER_STABILITY = "exp_encoder_stability"
STABILITY_LOSSES = ("gme", "mds1", "mds2")
RATE_SLOTS = ("low", "mid", "high")  # the learning rates' slots, lowest first; parameters give their values


def stability_name(loss: str, slot: str) -> str:
    """gme_lr_low ... mds2_lr_high: the namespace of one grid point under exp_encoder_stability."""
    return f"{loss}_lr_{slot}"


def stability_rates(values: Any) -> dict[str, float]:
    """exp_encoder_stability.learning_rates checked: {low, mid, high} -> positive rates, increasing."""
    return grid_values(values, RATE_SLOTS, f"{ENCODER_STABILITY}.learning_rates", increasing=True)


def encoder_stability_variant(loss: str, slot: str) -> Variant:
    """E2: the settings every run shares (network, geometry, budget), then its loss and learning rate."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        rate = stability_rates(nested_get(parameters, f"{ENCODER_STABILITY}.learning_rates"))[slot]
        return [nested_get(parameters, f"{ENCODER_STABILITY}.shared"), {"train_encoder": {"loss": loss, "training": {"lr": rate}}}]

    return Variant(f"{ENCODER_STABILITY}.{stability_name(loss, slot)}", layers)


DECODER_VS_GME = "exp_decoder_vs_gme"
DECODER_LEVEL_SLOTS = ("high", "mid", "low")  # the encoders' GME levels, highest first; parameters give their values


def decoder_level_name(slot: str) -> str:
    """gme_high, gme_mid, gme_low: the namespace of one level under exp_decoder_vs_gme."""
    return f"gme_{slot}"


def decoder_levels(values: Any) -> dict[str, float]:
    """exp_decoder_vs_gme.gme_levels checked: {high, mid, low} -> positive validation GME targets, decreasing."""
    return grid_values(values, DECODER_LEVEL_SLOTS, f"{DECODER_VS_GME}.gme_levels", increasing=False)


def decoder_thresholds(values: Any) -> list[float]:
    """exp_decoder_vs_gme.thresholds checked: {highest, lowest, points} -> the range's validation MSEs, highest first."""
    return threshold_range(values, f"{DECODER_VS_GME}.thresholds")


def decoder_vs_gme_variant(slot: str) -> Variant:
    """E3: the shared settings, a GPE encoder stopped at the level, a decoder stopped at the range's lowest threshold
    (or its budget), read at every threshold of the range on the way down."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        level = decoder_levels(nested_get(parameters, f"{DECODER_VS_GME}.gme_levels"))[slot]
        lowest = decoder_thresholds(nested_get(parameters, f"{DECODER_VS_GME}.thresholds"))[-1]
        return [
            nested_get(parameters, f"{DECODER_VS_GME}.shared"),
            method(parameters, "gpe"),
            {"train_encoder": {"training": {"target": level}}, "train_decoder": {"training": {"target": lowest}}},
        ]

    return Variant(f"{DECODER_VS_GME}.{decoder_level_name(slot)}", layers)


ITERATIONS = "exp_iterations_to_threshold"
ITERATIONS_LEVEL_SLOTS = ("high", "low")  # Table 1's two GPE rows, by GME level (highest first)


def iterations_row_name(method_name: str, slot: str | None) -> str:
    """gpe_gme_high, gpe_gme_low, vae: the namespace of one row of Table 1 under exp_iterations_to_threshold."""
    return f"{method_name}_gme_{slot}" if slot else method_name


def iterations_levels(values: Any) -> dict[str, float]:
    """exp_iterations_to_threshold.gme_levels checked: {high, low} -> positive validation GME targets, decreasing."""
    return grid_values(values, ITERATIONS_LEVEL_SLOTS, f"{ITERATIONS}.gme_levels", increasing=False)


def iterations_thresholds(values: Any) -> list[float]:
    """exp_iterations_to_threshold.thresholds checked: {highest, lowest, points} -> the range's validation MSEs,
    highest first (Table 1's two thresholds are its ends: 0.1 and 0.022 on MNIST)."""
    return threshold_range(values, f"{ITERATIONS}.thresholds")


def iterations_variant(method_name: str, slot: str | None) -> Variant:
    """E4: the shared settings, then a GPE encoder stopped at its level or the VAE; every decoder runs to the lowest
    threshold (the VAE's joint training too: it runs on the decoder stage's settings), read on the way down."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        lowest = iterations_thresholds(nested_get(parameters, f"{ITERATIONS}.thresholds"))[-1]
        until_lowest = {"train_decoder": {"training": {"target": lowest}}}
        shared = nested_get(parameters, f"{ITERATIONS}.shared")
        if slot is None:
            return [shared, method(parameters, method_name), until_lowest]
        level = iterations_levels(nested_get(parameters, f"{ITERATIONS}.gme_levels"))[slot]
        return [shared, method(parameters, method_name), {"train_encoder": {"training": {"target": level}}}, until_lowest]

    return Variant(f"{ITERATIONS}.{iterations_row_name(method_name, slot)}", layers)


WALLCLOCK = "exp_wallclock"
WALLCLOCK_METHODS = ("gpe", "vae", "vae_mds", "ae", "ae_mds")
PROBE_WINDOWS = 10  # logging windows of one learning-rate probe: its first and last fifth are two windows each


def check_wallclock(experiment: Mapping[str, Any]) -> None:
    """exp_wallclock's threshold and probe checked: ParameterError naming the key to change."""

    def need(condition: bool, key: str, rule: str, value: Any) -> None:
        if not condition:
            raise parameter_error(f"{WALLCLOCK}.{key}", f"must be {rule}", value)

    rule = "must be a positive number (a validation reconstruction MSE)"
    positive_number(experiment.get("threshold"), f"{WALLCLOCK}.threshold", rule)
    probe = experiment.get("probe") or {}
    positive_numbers(
        probe.get("learning_rates"), f"{WALLCLOCK}.probe.learning_rates", "must be a non-empty list of positive numbers"
    )
    steps = probe.get("steps")
    need(
        isinstance(steps, int) and not isinstance(steps, bool) and steps >= PROBE_WINDOWS and steps % PROBE_WINDOWS == 0,
        "probe.steps",
        f"a multiple of {PROBE_WINDOWS} (the probe's logging windows), at least {PROBE_WINDOWS}",
        steps,
    )
    decrease = probe.get("min_decrease")
    need(is_number(decrease) and 0 <= decrease < 1, "probe.min_decrease", "a number in [0, 1)", decrease)


def wallclock_variant(name: str) -> Variant:
    """E5: the method as defined; its learning-rate probe then sets the rates the stages train at."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        check_wallclock(nested_get(parameters, WALLCLOCK) or {})
        return [method(parameters, name)]

    return Variant(f"{WALLCLOCK}.{name}", layers)


GENERATION_BUDGET = "exp_generation_budget"
GENERATION_METHODS = ("gpe", "vae")
# E6 compares generation at equal flow budgets: a method may set these sections only, the flows stay identical.
GENERATION_METHOD_SECTIONS = ("train_encoder", "cache_latents", "train_decoder")


def snapshot_steps(parameters: Mapping[str, Any]) -> list[int]:
    """exp_generation_budget.snapshot_steps checked: flow iterations from 1 to train_flow.training.max_steps."""
    # Checked here although TrainConfig checks the merged section too: its error would name train_flow's key, not this one.
    key, max_steps = f"{GENERATION_BUDGET}.snapshot_steps", parameters["train_flow"]["training"]["max_steps"]
    rule = f"must be a non-empty list of flow iterations from 1 to train_flow.training.max_steps ({max_steps})"
    value = nested_get(parameters, key)
    steps = positive_numbers(value, key, rule, integers=True)
    if max(steps) > max_steps:
        raise parameter_error(key, rule, value)
    return sorted(set(steps))


def generation_budget_variant(name: str) -> Variant:
    """E6: the method's autoencoder, and a flow that trains exactly max_steps (no early stop) with snapshots, so
    that every snapshot exists for both methods."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        own = method(parameters, name)
        for section in own:
            if section not in GENERATION_METHOD_SECTIONS:
                raise ParameterError(
                    f"{METHODS_KEY}.{name}.{section} cannot be used by {GENERATION_BUDGET}: both flows and their "
                    f"measurements use the shared settings; a method there may set {list(GENERATION_METHOD_SECTIONS)}"
                )
        return [own, {"train_flow": {"training": {"snapshot_steps": snapshot_steps(parameters), "target": None}}}]

    return Variant(f"{GENERATION_BUDGET}.{name}", layers)


RECIPES: dict[str, Variant | OwnDataset] = {
    recipe.namespace: recipe
    for recipe in (
        *(compare_variant(name) for name in METHODS),
        OwnDataset(GMM_LATENTS),
        *(gmm_latents_variant(name) for name in GMM_METHODS),
        *(encoder_stability_variant(loss, slot) for loss in STABILITY_LOSSES for slot in RATE_SLOTS),
        *(decoder_vs_gme_variant(slot) for slot in DECODER_LEVEL_SLOTS),
        *(iterations_variant("gpe", slot) for slot in ITERATIONS_LEVEL_SLOTS),
        iterations_variant("vae", None),
        *(wallclock_variant(name) for name in WALLCLOCK_METHODS),
        *(generation_budget_variant(name) for name in GENERATION_METHODS),
    )
}


def variant_names(group: str) -> list[str]:
    """The variants under a group's namespace (compare, an experiment), in registry order: ["gpe", "vae", ...]."""
    prefix = f"{group}."
    return [
        namespace.removeprefix(prefix)
        for namespace, recipe in RECIPES.items()
        if isinstance(recipe, Variant) and namespace.startswith(prefix)
    ]


def check_variant_names(parameters: Mapping[str, Any]) -> None:
    """Refuse a `compare.<name>` (or an experiment's `<experiment>.<name>`) override for a variant that does not exist."""
    for group in ("compare",):
        unknown = sorted(set(parameters.get(group) or {}) - set(variant_names(group)))
        if unknown:
            raise ParameterError(
                f"{group}.{unknown[0]} is not a variant of the {group} pipeline: the variants are {variant_names(group)}"
            )


def run_parameters(parameters: Mapping[str, Any], namespaces: set[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every recipe namespace of a run, {namespace: {section: merged dict}}: the one merge of a run.

    namespaces: the namespaces of the run's nodes (others are ignored). A variant whose data comes from an
    experiment's own dataset also gets that namespace's ingest section (what its data was made with).
    """
    check_variant_names(parameters)
    resolved = {ns: RECIPES[ns].sections(parameters) for ns in sorted(namespaces) if ns in RECIPES}
    for namespace, sections in resolved.items():
        recipe = RECIPES[namespace]
        if isinstance(recipe, Variant) and recipe.data_from is not None:
            sections["ingest"] = RECIPES[recipe.data_from].sections(parameters)["ingest"]
    return resolved


def method_label(train_encoder: Mapping[str, Any]) -> str:
    """gpe, vae, ae, vae+mds, ae+mds (and gpe's encoder loss when it is not GME), from a train_encoder section."""
    method_name = train_encoder.get("method", "gpe")
    if method_name == "gpe":
        loss = train_encoder.get("loss", "gme")
        return "gpe" if loss == "gme" else f"gpe ({loss})"
    return f"{method_name}+mds" if train_encoder.get("mds_weight", 0) > 0 else method_name
