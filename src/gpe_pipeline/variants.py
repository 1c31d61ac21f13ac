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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

from gpe_pipeline.experiment_parameters import (
    grid_values,
    is_number,
    log_threshold_grid,
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


# --- seeds ------------------------------------------------------------------------------------------------------------
# Every experiment runs each of its variants once per seed: <experiment>.seed_<k>.<variant>, k = 0 .. seeds - 1.
# Seed k adds k to every random seed of the variant's stages: initial weights, batch order and noise of the encoder,
# decoder and flow, and evaluate's subsampling and sampling noise. The data (ingest, an experiment's own dataset) and
# the shared feature classifier, the measuring instrument, stay the same: no claim of the paper is about the split.
SEEDS_KEY = "seeds"
REPORT_KEY = "paper_report"
SEEDED_KEYS = (
    "train_encoder.training.seed",
    "train_decoder.training.seed",
    "train_flow.training.seed",
    "evaluate.seed",
    "evaluate.sampling.seed",
)
SEED_GROUP = re.compile(r"seed_(\d+)")
LEVEL_NAME = re.compile(r"level_(\d+)")


def seeded_namespace(experiment: str, seed: int, name: str = "") -> str:
    """exp_decoder_vs_gme.seed_1.gme_high (a variant's run for seed 1), or exp_decoder_vs_gme.seed_1 without a name."""
    group = f"{experiment}.seed_{seed}"
    return f"{group}.{name}" if name else group


def split_seeded(namespace: str) -> tuple[str, int, str] | None:
    """(experiment, seed, rest) of <experiment>.seed_<k>[.<rest>]; None for a namespace without a seed."""
    parts = namespace.split(".")
    if len(parts) < 2 or not SEED_GROUP.fullmatch(parts[1]):
        return None
    return parts[0], int(parts[1].removeprefix("seed_")), ".".join(parts[2:])


def seed_of(namespace: str) -> int | None:
    """The seed of a seeded namespace, None for another (compare.vae, the shared nodes)."""
    seeded = split_seeded(namespace)
    return seeded[1] if seeded else None


def shift_seeds(sections: dict[str, dict[str, Any]], seed: int) -> dict[str, dict[str, Any]]:
    """The sections with `seed` added to each of SEEDED_KEYS that they have (in place; seed 0 changes nothing)."""
    for dotted in SEEDED_KEYS if seed else ():
        *path, key = dotted.split(".")
        holder = nested_get(sections, ".".join(path))
        if isinstance(holder, dict) and isinstance(holder.get(key), int):
            holder[key] += seed
    return sections


def seed_count(parameters: Mapping[str, Any], experiment: str) -> int:
    """How many seeds an experiment runs: <experiment>.seeds, else paper_report.seeds, else 1; checked."""
    own = nested_get(parameters, f"{experiment}.{SEEDS_KEY}")
    key = f"{experiment}.{SEEDS_KEY}" if own is not None else f"{REPORT_KEY}.{SEEDS_KEY}"
    value = own if own is not None else nested_get(parameters, f"{REPORT_KEY}.{SEEDS_KEY}")
    if value is None:
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise parameter_error(key, "must be an integer >= 1 (the number of seeds each variant runs with)", value)
    return value


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
    seed: int = 0  # added to every random seed of the sections (SEEDED_KEYS)
    overrides_key: str | None = None  # where the user's own overrides live; default: the namespace

    def with_seed(self, seed: int) -> Variant:
        """This variant's run for one seed: namespace <experiment>.seed_<k>.<name>, the same user overrides."""
        experiment, _, name = self.namespace.partition(".")
        return replace(self, namespace=seeded_namespace(experiment, seed, name), seed=seed, overrides_key=self.namespace)

    def sections(self, parameters: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """{section: merged dict} for every stage section; the user's own `<namespace>.<section>` keys merge last."""
        where = self.overrides_key or self.namespace
        own = {k: v for k, v in (nested_get(parameters, where) or {}).items() if k != SEEDS_KEY}
        overrides = combine(*self.layers(parameters), own)
        unknown = sorted(set(overrides) - set(STAGE_SECTIONS))
        if unknown:
            raise ParameterError(
                f"{where}.{unknown[0]} is not a stage section a variant can override: use {list(STAGE_SECTIONS)}"
            )
        resolved = {}
        for section in STAGE_SECTIONS:
            merged = merge_overrides(parameters[section], overrides.get(section) or {}, f"{where}.{section}")
            training = merged.get("training")
            if isinstance(training, dict) and "checkpoint_path" in training:
                training["checkpoint_path"] = namespaced_checkpoint(training["checkpoint_path"], self.namespace)
            resolved[section] = merged
        return shift_seeds(resolved, self.seed)


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


ITERATIONS = "exp_iterations_to_threshold"
LEVELS = "gme_levels"  # the frozen-encoder study E3 and E4 share (below)
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


def iterations_vae_variant() -> Variant:
    """E4's VAE row: the shared settings, the VAE, then a fresh decoder on its frozen mean encoder, trained to the
    lowest threshold. Its encoder is the study's joint VAE (shared_vae_variant) as it was when its validation MSE first
    reached that threshold. It runs in the frozen-encoder study's namespace (gme_levels.seed_<k>.vae) beside E4's GPE
    rows, so that E4's summary reads all its rows from there (kedro-viz draws layers only if no namespace both reads a
    later layer and writes an earlier one)."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        lowest = iterations_thresholds(nested_get(parameters, f"{ITERATIONS}.thresholds"))[-1]
        shared = nested_get(parameters, f"{ITERATIONS}.shared")
        return [shared, method(parameters, "vae"), {"train_decoder": {"training": {"target": lowest}}}]

    return Variant(f"{LEVELS}.{iterations_row_name('vae', None)}", layers)


# The VAE's joint training that E4's row and E6's VAE share (gme_levels.seed_<k>.vae_joint): E6's VAE trains on the
# decoder stage's settings to its target, E4's row to its lowest threshold, and both only evaluate on the way, so one
# run evaluated at E4's resolution, to the lower of the two stops, keeping its weights at both, serves both.
SHARED_VAE = "vae_joint"
# What decides a joint training's weights but not where it stops or how often it evaluates (and so records).
RECORD_AND_STOP_KEYS = ("target", "snapshot_at", "eval_every", "log_every", "checkpoint_every", "checkpoint_path")


def shared_vae_levels(parameters: Mapping[str, Any]) -> dict[str, float | None]:
    """{reader: validation MSE it reads the shared VAE at}: E4's lowest threshold, and for E6 its VAE's decoder-stage
    target (None: no target, E6 reads the end of the budget)."""
    generation_vae = RECIPES[f"{GENERATION_BUDGET}.vae"].sections(parameters)
    return {
        ITERATIONS: iterations_thresholds(nested_get(parameters, f"{ITERATIONS}.thresholds"))[-1],
        GENERATION_BUDGET: generation_vae["train_decoder"]["training"].get("target"),
    }


def shared_vae_variant() -> Variant:
    """The study's joint VAE: E4's row's settings (its evaluation resolution), trained to the lower of the two readers'
    levels (none when E6 reads the end of the budget), its weights kept at both."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        levels = shared_vae_levels(parameters)
        kept = sorted({level for level in levels.values() if level is not None}, reverse=True)
        target = None if levels[GENERATION_BUDGET] is None else kept[-1]
        stop = {"train_decoder": {"training": {"target": target, "snapshot_at": kept}}}
        return [nested_get(parameters, f"{ITERATIONS}.shared"), method(parameters, "vae"), stop]

    return Variant(f"{LEVELS}.{SHARED_VAE}", layers)


def _joint_training(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What decides a baseline's joint training: its train_encoder section and train_decoder's, without
    RECORD_AND_STOP_KEYS and the decoder stage's own choice (fresh_decoder)."""
    decoder = {k: v for k, v in sections["train_decoder"].items() if k != "fresh_decoder"}
    decoder["training"] = {k: v for k, v in decoder["training"].items() if k not in RECORD_AND_STOP_KEYS}
    encoder = dict(sections["train_encoder"])
    encoder["training"] = {k: v for k, v in encoder["training"].items() if k not in RECORD_AND_STOP_KEYS}
    return {"train_encoder": encoder, "train_decoder": decoder}


# E3 and E4 read their GPE encoders and decoders from one frozen-encoder study per seed (gme_levels.seed_<k>, where
# E4's VAE row also runs, iterations_vae_variant): one GPE encoder
# trained to the lowest level of both experiments' grids, keeping its weights at the first evaluation at or below each
# level (training.snapshot_at), and on each level's weights one fresh decoder trained to the lowest loss threshold
# of both experiments. Each experiment reads its levels' encoder histories (cut at the level) and decoder curves.
LEVEL_ENCODER = "encoder"


def level_values(parameters: Mapping[str, Any]) -> list[float]:
    """Every GME level of E3 and E4, highest first, each once: the levels the shared encoder keeps weights at."""
    levels = {
        *decoder_levels(nested_get(parameters, f"{DECODER_VS_GME}.gme_levels")).values(),
        *iterations_levels(nested_get(parameters, f"{ITERATIONS}.gme_levels")).values(),
    }
    return sorted(levels, reverse=True)


def level_name(index: int) -> str:
    """level_0 (the highest level of level_values) ..: the namespace of one level's decoder under gme_levels.seed_<k>."""
    return f"level_{index}"


def level_index(parameters: Mapping[str, Any], level: float) -> int:
    """Where a level sits in level_values (what an experiment's grid point reads)."""
    return level_values(parameters).index(level)


def lowest_decoder_threshold(parameters: Mapping[str, Any]) -> float:
    """The lowest validation MSE E3's and E4's decoders are read at: where every level's decoder stops."""
    return min(
        decoder_thresholds(nested_get(parameters, f"{DECODER_VS_GME}.thresholds"))[-1],
        iterations_thresholds(nested_get(parameters, f"{ITERATIONS}.thresholds"))[-1],
    )


def level_settings(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
    """The settings every encoder and decoder of the study shares: gme_levels.shared, then GPE's definition."""
    return [nested_get(parameters, f"{LEVELS}.shared"), method(parameters, "gpe")]


def level_encoder_variant() -> Variant:
    """The study's GPE encoder: trained to the lowest level, its weights kept at every level it crosses."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        levels = level_values(parameters)
        return [*level_settings(parameters), {"train_encoder": {"training": {"target": levels[-1], "snapshot_at": levels}}}]

    return Variant(f"{LEVELS}.{LEVEL_ENCODER}", layers)


def level_decoder_variant(index: int) -> Variant:
    """A fresh decoder on the encoder's weights at one level, trained to the lowest threshold of E3 and E4."""

    def layers(parameters: Mapping[str, Any]) -> list[Mapping[str, Any] | None]:
        return [*level_settings(parameters), {"train_decoder": {"training": {"target": lowest_decoder_threshold(parameters)}}}]

    return Variant(f"{LEVELS}.{level_name(index)}", layers)


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
    log_threshold_grid(experiment.get("threshold"), experiment.get("threshold_grid"), f"{WALLCLOCK}.threshold_grid")
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


def generation_reads_shared_vae(parameters: Mapping[str, Any]) -> bool:
    """Whether E6's VAE reads the study's joint VAE (shared_vae_variant) instead of training its own: when its joint
    training would be that one but for where it stops and how often it evaluates (no override of either's sections
    that changes the weights, e.g. --params exp_generation_budget.vae.train_encoder.beta=0.5, which trains its own)."""
    mine = RECIPES[f"{GENERATION_BUDGET}.vae"].sections(parameters)
    shared = RECIPES[f"{LEVELS}.{SHARED_VAE}"].sections(parameters)
    return _joint_training(mine) == _joint_training(shared)


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
        level_encoder_variant(),
        iterations_vae_variant(),
        shared_vae_variant(),
        *(wallclock_variant(name) for name in WALLCLOCK_METHODS),
        *(generation_budget_variant(name) for name in GENERATION_METHODS),
    )
}


def recipe(namespace: str) -> Variant | OwnDataset | None:
    """The recipe of a namespace: RECIPES' own, or a variant's run for one seed (<experiment>.seed_<k>.<variant>)."""
    if namespace in RECIPES:
        return RECIPES[namespace]
    seeded = split_seeded(namespace)
    if seeded is None or not seeded[2]:
        return None
    group, seed, name = seeded
    if group == LEVELS and LEVEL_NAME.fullmatch(name):
        return level_decoder_variant(int(name.removeprefix("level_"))).with_seed(seed)
    base = RECIPES.get(f"{group}.{name}")
    return base.with_seed(seed) if isinstance(base, Variant) else None


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


def check_seed_counts(parameters: Mapping[str, Any], namespaces: set[str]) -> None:
    """Refuse a run whose pipeline holds another number of seeds than its parameters ask for (a pipeline built
    before the parameters were known, e.g. by a plugin): ParameterError naming the setting."""
    built: dict[str, set[int]] = {}
    for namespace in namespaces:
        seeded = split_seeded(namespace)
        if seeded:
            built.setdefault(seeded[0], set()).add(seeded[1])
    for experiment, seeds in sorted(built.items()):
        # The study E3 and E4 share runs the seeds of those of them in the run: as many as the one that has the most.
        wanted = len(seeds) if experiment == LEVELS and seeds == set(range(len(seeds))) else seed_count(parameters, experiment)
        if seeds != set(range(wanted)):
            raise ParameterError(
                f"{experiment} asks for {wanted} seeds but its pipeline was built with {len(seeds)}: the pipelines are "
                f"built from the parameters Kedro's context gives (conf, --env, --params); set {experiment}.seeds or "
                f"{REPORT_KEY}.seeds there"
            )


def run_parameters(parameters: Mapping[str, Any], namespaces: set[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every recipe namespace of a run, {namespace: {section: merged dict}}: the one merge of a run.

    namespaces: the namespaces of the run's nodes (others are ignored). A variant whose data comes from an
    experiment's own dataset also gets that namespace's ingest section (what its data was made with).
    """
    check_variant_names(parameters)
    check_seed_counts(parameters, namespaces)
    recipes = {ns: found for ns in sorted(namespaces) if (found := recipe(ns)) is not None}
    resolved = {ns: found.sections(parameters) for ns, found in recipes.items()}
    for namespace, sections in resolved.items():
        found = recipes[namespace]
        if isinstance(found, Variant) and found.data_from is not None:
            sections["ingest"] = RECIPES[found.data_from].sections(parameters)["ingest"]
    return resolved


def method_label(train_encoder: Mapping[str, Any]) -> str:
    """gpe, vae, ae, vae+mds, ae+mds (and gpe's encoder loss when it is not GME), from a train_encoder section."""
    method_name = train_encoder.get("method", "gpe")
    if method_name == "gpe":
        loss = train_encoder.get("loss", "gme")
        return "gpe" if loss == "gme" else f"gpe ({loss})"
    return f"{method_name}+mds" if train_encoder.get("mds_weight", 0) > 0 else method_name
