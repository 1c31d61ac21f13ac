"""A run's plan before its first training: every training it will do, its optimiser steps at most, and the time.

`plan_trainings(parameters, resolved, nodes)` lists the trainings from the run's parameters alone: the merged
sections of every variant (variants.run_parameters) and, per namespace, the names of the nodes the run will execute
(nothing is read from disk, so the plan needs no dataset file). Each training's steps are its max_steps: a target,
a divergence or a kept decoder can only make it shorter. `estimate` then gives each distinct network (the same
trainer, architecture and options, data shape, batch and step settings) a time per step, measured once in a few
steps of the core's own loop on synthetic tensors of the run's shape (`measure_step_ms`), or read from a GPU table
committed under benchmarks/results (`read_device_table`). `plan_markdown` and `plan_log_lines` write it out.

Nothing here imports Kedro: the hook and the `kedro plan` command (hooks.run_plan) hand plain data in.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import re
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from gpe_pipeline.core.data import data_shape
from gpe_pipeline.core.files import write_text_atomically
from gpe_pipeline.core.models import JointAutoencoder
from gpe_pipeline.core.step_losses import (
    classifier_step_loss,
    decoder_step_loss,
    encoder_step_loss,
    flow_step_loss,
    joint_step_loss,
)
from gpe_pipeline.core.training import TrainConfig, resolve_device, train
from gpe_pipeline.params import ParameterError, model_from_params
from gpe_pipeline.variants import RECIPES, STAGE_SECTIONS, WALLCLOCK, method_label, nested_get, split_seeded

PLAN_KEY = "plan"
PLAN_FILE = Path("data") / "08_reporting" / "plan.md"
DEVICE_TABLES = Path("benchmarks") / "results"  # gpu-check-<device>-<date>.md, written by benchmarks/gpu_check.py
TRAINERS = ("probe", "encoder", "joint", "decoder", "flow", "classifier")
# The nodes that train, by their name inside a namespace (the stage pipelines' and E5's learning-rate probe).
PROBE_NODE, ENCODER_NODE, DECODER_NODE = "probe_learning_rates", "train_encoder", "train_decoder"
FLOW_NODE, CLASSIFIER_NODE = "train_flow", "train_feature_classifier"
# The experiments in the paper's order, with the ids their findings carry; other groups follow (compare, shared).
EXPERIMENT_IDS = {
    "exp_gmm_latents": "E1",
    "exp_encoder_stability": "E2",
    "exp_decoder_vs_gme": "E3",
    "gme_levels": "E3+E4+E6",  # the trainings those share: the GME-level study and the joint VAE (variants.LEVELS)
    "exp_iterations_to_threshold": "E4",
    "exp_wallclock": "E5",
    "exp_generation_budget": "E6",
}
SHARED = "shared"  # the group of the nodes outside any namespace (the run's own stages, the feature classifier)
# Classes of each dataset's labels (the feature classifier trains only on labelled data); image_folder's come from
# its sub-folders, unknown before reading them: planned as labelled, which can only overcount.
LABEL_CLASSES = {"digits": 10, "mnist": 10, "cifar10": 10, "celeba": 0, "celebahq": 0, "image_folder": 2}
# A table's mode for the run's precision and compile settings on CUDA (auto means bf16 and compiled there).
TABLE_MODES = {("bf16", True): "bf16+compile", ("bf16", False): "bf16", ("fp32", False): "fp32"}


@dataclass(frozen=True)
class Training:
    """One line of the plan: `runs` calls of the training loop on one network, `steps` optimiser steps at most in all.

    group: the experiment (exp_wallclock ...), compare or SHARED; network: the JSON key of the network it trains
    (network_key), None when it trains nothing (a decoder kept from the joint training, a classifier without labels).
    """

    group: str
    namespace: str
    trainer: str
    description: str
    runs: int
    steps: int
    network: str | None


@dataclass
class Plan:
    """The trainings, and a time per step for each network that has one (milliseconds; how it was obtained)."""

    trainings: list[Training]
    step_ms: dict[str, float | None] = field(default_factory=dict)
    step_notes: dict[str, str] = field(default_factory=dict)
    source: str = "not estimated"

    def networks(self) -> list[str]:
        """The distinct networks the run trains, in plan order."""
        return list(dict.fromkeys(t.network for t in self.trainings if t.network is not None))

    def seconds(self, training: Training) -> float | None:
        """steps x ms/step of one training (0 when it trains nothing; None when its network has no estimate)."""
        if training.network is None or training.steps == 0:
            return 0.0
        ms = self.step_ms.get(training.network)
        return None if ms is None else training.steps * ms / 1000

    def groups(self) -> dict[str, dict[str, float]]:
        """Per group, in plan order: trainings (runs), steps, estimated seconds and steps without an estimate."""
        totals: dict[str, dict[str, float]] = {}
        for training in self.trainings:
            total = totals.setdefault(training.group, {"runs": 0, "steps": 0, "seconds": 0.0, "unestimated_steps": 0})
            seconds = self.seconds(training)
            total["runs"] += training.runs
            total["steps"] += training.steps
            total["seconds"] += seconds or 0.0
            total["unestimated_steps"] += training.steps if seconds is None else 0
        return totals


# --- the trainings ---------------------------------------------------------------------------------------------------


def plan_settings(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The `plan` section checked: device_table (null or a device name), warmup_steps >= 1, timed_steps >= 1."""
    settings = {"device_table": None, "warmup_steps": 2, "timed_steps": 5, **(parameters.get(PLAN_KEY) or {})}
    unknown = sorted(set(settings) - {"device_table", "warmup_steps", "timed_steps"})
    if unknown:
        raise ParameterError(f"{PLAN_KEY}.{unknown[0]} is not a plan setting: use device_table, warmup_steps, timed_steps")
    for key in ("warmup_steps", "timed_steps"):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{PLAN_KEY}.{key} must be an integer >= 1, got {value!r}")
    device = settings["device_table"]
    if device is not None and (not isinstance(device, str) or not re.fullmatch(r"[\w.-]+", device)):
        raise ParameterError(f"{PLAN_KEY}.device_table must be null or a device name such as nvidia-h200, got {device!r}")
    return settings


def group_of(namespace: str) -> str:
    """exp_wallclock.gpe -> exp_wallclock, compare.vae -> compare, '' -> SHARED."""
    return namespace.split(".")[0] if namespace else SHARED


def group_label(group: str) -> str:
    """E5 exp_wallclock, compare, shared."""
    return f"{EXPERIMENT_IDS[group]} {group}" if group in EXPERIMENT_IDS else group


def plan_order(namespace: str) -> tuple[int, int, str]:
    """The paper's experiments first (E1 ..), then compare, then the shared nodes; variants in registry order."""
    groups = [*EXPERIMENT_IDS, "compare", SHARED]
    group = group_of(namespace)
    recipes = list(RECIPES)
    seeded = split_seeded(namespace)
    base = f"{seeded[0]}.{seeded[2]}" if seeded else namespace
    return (
        groups.index(group) if group in groups else len(groups) - 1,
        recipes.index(base) if base in recipes else -1,
        namespace,
    )


def network_data(ingest: Mapping[str, Any]) -> dict[str, Any]:
    """The shape, dtype and label classes one example of the ingested dataset will have (no file is read)."""
    dataset = ingest.get("dataset")
    gmm = ingest.get("gmm") or {}
    shape = data_shape(
        dataset, image_size=ingest.get("image_size"), gmm_dim=gmm.get("dim", 500), channels=ingest.get("channels", 3)
    )
    images = dataset not in ("digits", "gmm")  # the digits and the gmm are float32 always (core.data.load_dataset)
    classes = math.prod(gmm.get("grid", [4, 4])) if dataset == "gmm" else LABEL_CLASSES.get(dataset, 0)
    return {"shape": shape, "dtype": ingest.get("image_dtype", "float32") if images else "float32", "classes": classes}


def _body(section: Mapping[str, Any]) -> dict[str, Any]:
    """A section's network: its architecture and that architecture's options."""
    architecture = section.get("architecture")
    return {"architecture": architecture, "options": dict((section.get("model_options") or {}).get(architecture) or {})}


def _step_settings(training: Mapping[str, Any]) -> dict[str, Any]:
    """What besides the network sets a step's cost (the learning rate, budget and bookkeeping do not)."""
    defaults = {
        "batch_size": None,
        "device": "auto",
        "precision": "auto",
        "compile": "auto",
        "grad_clip": None,
        "ema_decay": None,
    }
    return {key: training.get(key, default) for key, default in defaults.items()}


def network_key(network: Mapping[str, Any]) -> str:
    """A network's description as sorted JSON: equal for two trainings whose steps cost the same."""
    return json.dumps(network, sort_keys=True, default=str)


def encoder_network(sections: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """GPE's encoder on its loss (train_encoder)."""
    encoder = sections["train_encoder"]
    return network_key(
        {
            "trainer": "encoder",
            "encoder": _body(encoder),
            "loss": encoder.get("loss", "gme"),
            "augment": dict(encoder.get("augment") or {}) if len(data["shape"]) == 3 else {},
            "latent_dim": encoder["latent_dim"],
            "data": data,
            "training": _step_settings(encoder["training"]),
        }
    )


def joint_network(sections: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """A baseline's Gaussian encoder and decoder trained together on train_decoder.training (stage_training.train_jointly)."""
    encoder, decoder = sections["train_encoder"], sections["train_decoder"]
    return network_key(
        {
            "trainer": "joint",
            "encoder": _body(encoder),
            "decoder": _body(decoder),
            "stochastic": encoder.get("method") == "vae",
            "mds": float(encoder.get("mds_weight", 0.0)) > 0,  # the pairwise term; beta's value costs nothing
            "latent_dim": encoder["latent_dim"],
            "data": data,
            "training": _step_settings(decoder["training"]),
        }
    )


def decoder_network(sections: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """A decoder on cached latents (train_decoder)."""
    decoder = sections["train_decoder"]
    return network_key(
        {
            "trainer": "decoder",
            "decoder": _body(decoder),
            "latent_dim": sections["train_encoder"]["latent_dim"],
            "data": data,
            "training": _step_settings(decoder["training"]),
        }
    )


def flow_network(sections: Mapping[str, Any]) -> str:
    """The latent velocity field (train_flow) on the encoder's latents."""
    flow = sections["train_flow"]
    return network_key(
        {
            "trainer": "flow",
            "velocity": _body(flow),
            "latent_dim": sections["train_encoder"]["latent_dim"],
            "training": _step_settings(flow["training"]),
        }
    )


def classifier_network(sections: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """The feature classifier (evaluate.classifier) on the train split."""
    classifier = sections["evaluate"]["classifier"]
    return network_key(
        {
            "trainer": "classifier",
            "classifier": _body(classifier),
            "data": data,
            "training": _step_settings(classifier["training"]),
        }
    )


def max_steps(section: Mapping[str, Any]) -> int:
    return int(section["training"]["max_steps"])


def probe_trainings(
    parameters: Mapping[str, Any], sections: Mapping[str, Any], data: Mapping[str, Any], add: Callable[..., None]
) -> None:
    """E5's learning-rate probe of one method (exp_wallclock.nodes.probe_learning_rates), as it trains today.

    GPE: probe.steps steps per rate on its encoder, then (probe_decoder_rates, on the latents of the encoder its stage
    trained at the chosen rate) probe.steps per rate on its decoder; a baseline: probe.steps per rate on its joint
    training.
    """
    probe = nested_get(parameters, f"{WALLCLOCK}.probe") or {}
    rates, steps = len(probe.get("learning_rates") or []), int(probe.get("steps") or 0)
    grid = f"{rates} rates x {steps} steps"
    if sections["train_encoder"].get("method", "gpe") != "gpe":
        add("probe", f"joint learning-rate probe ({grid})", rates, rates * steps, joint_network(sections, data))
        return
    encoder = encoder_network(sections, data)
    add("probe", f"encoder learning-rate probe ({grid})", rates, rates * steps, encoder)
    add("probe", f"decoder learning-rate probe ({grid})", rates, rates * steps, decoder_network(sections, data))


def plan_trainings(
    parameters: Mapping[str, Any], resolved: Mapping[str, Mapping[str, Any]], nodes: Mapping[str, Iterable[str]]
) -> list[Training]:
    """Every training a run will do, in the paper's order (see plan_order), with its optimiser steps at most.

    parameters: the run's parameters; resolved: its variants' merged sections ({namespace: {section: dict}},
    variants.run_parameters); nodes: {namespace ('' outside any): names of the run's nodes there, without the
    namespace}. A namespace without a recipe trains on the shared sections.
    """
    trainings: list[Training] = []
    for namespace in sorted(nodes, key=plan_order):
        names = set(nodes[namespace])
        shared = {section: parameters[section] for section in (*STAGE_SECTIONS, "ingest") if section in parameters}
        sections = {**shared, **resolved.get(namespace, {})}

        def add(trainer: str, description: str, runs: int, steps: int, network: str | None) -> None:
            trainings.append(Training(group_of(namespace), namespace, trainer, description, runs, steps, network))

        data = network_data(sections["ingest"]) if names & {PROBE_NODE, ENCODER_NODE, DECODER_NODE, CLASSIFIER_NODE} else {}
        encoder = sections.get("train_encoder") or {}
        gpe = encoder.get("method", "gpe") == "gpe"
        if PROBE_NODE in names:
            probe_trainings(parameters, sections, data, add)
        if ENCODER_NODE in names and gpe:
            description = f"GPE encoder ({encoder.get('loss', 'gme')})"
            add("encoder", description, 1, max_steps(encoder), encoder_network(sections, data))
        elif ENCODER_NODE in names:  # a baseline trains jointly, on the decoder stage's budget
            description = f"{method_label(encoder)}: encoder and decoder together (train_decoder.training)"
            add("joint", description, 1, max_steps(sections["train_decoder"]), joint_network(sections, data))
        if DECODER_NODE in names:
            if gpe or sections["train_decoder"].get("fresh_decoder", False):
                fresh = "" if gpe else ", a fresh one on the frozen encoder"
                steps = max_steps(sections["train_decoder"])
                add("decoder", f"decoder on the cached latents{fresh}", 1, steps, decoder_network(sections, data))
            else:
                add("decoder", "kept from the joint training: trains nothing", 0, 0, None)
        if FLOW_NODE in names:
            add("flow", "latent flow", 1, max_steps(sections["train_flow"]), flow_network(sections))
        if CLASSIFIER_NODE in names:
            if data["classes"] >= 2:
                classifier = sections["evaluate"]["classifier"]
                add("classifier", "feature classifier", 1, max_steps(classifier), classifier_network(sections, data))
            else:
                add("classifier", "feature classifier: the dataset has no labels, so none is trained", 0, 0, None)
    return trainings


# --- step times: measured here ----------------------------------------------------------------------------------------


def _model(role: str, body: Mapping[str, Any], **sizes: Any) -> torch.nn.Module:
    section = {"architecture": body["architecture"], "model_options": {body["architecture"]: body["options"]}}
    return model_from_params(role, f"plan ({role})", section, **sizes)


def synthetic_examples(count: int, data: Mapping[str, Any], generator: torch.Generator) -> torch.Tensor:
    """count random examples of the data's shape and dtype (uint8 pixels, or floats in [-1, 1])."""
    shape = (count, *data["shape"])
    if data["dtype"] == "uint8":
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    return torch.rand(shape, generator=generator) * 2 - 1


def build_network(network: Mapping[str, Any], examples: int) -> tuple[torch.nn.Module, Callable, list[torch.Tensor]]:
    """The model, step loss and synthetic training tensors (examples rows) of a network described by network_key."""
    generator = torch.Generator().manual_seed(0)
    trainer, latent_dim = network["trainer"], network.get("latent_dim")
    data = network.get("data") or {}
    if trainer == "encoder":
        model = _model("encoder", network["encoder"], data_shape=data["shape"], latent_dim=latent_dim)
        loss = partial(encoder_step_loss, loss_name=network["loss"], augment=network["augment"])
        return model, loss, [synthetic_examples(examples, data, generator)]
    if trainer == "joint":
        encoder = _model(
            "gaussian_encoder",
            network["encoder"],
            data_shape=data["shape"],
            latent_dim=latent_dim,
            stochastic=network["stochastic"],
        )
        decoder = _model("decoder", network["decoder"], data_shape=data["shape"], latent_dim=latent_dim)
        loss = partial(joint_step_loss, beta=0.1 if network["stochastic"] else 0.0, mds_weight=1.0 if network["mds"] else 0.0)
        return JointAutoencoder(encoder, decoder), loss, [synthetic_examples(examples, data, generator)]
    if trainer == "decoder":
        model = _model("decoder", network["decoder"], data_shape=data["shape"], latent_dim=latent_dim)
        latents = torch.randn(examples, latent_dim, generator=generator)
        return model, decoder_step_loss, [latents, synthetic_examples(examples, data, generator)]
    if trainer == "flow":
        model = _model("velocity", network["velocity"], latent_dim=latent_dim)
        return model, flow_step_loss, [torch.randn(examples, latent_dim, generator=generator)]
    if trainer == "classifier":
        classes = max(2, data["classes"])
        model = _model("classifier", network["classifier"], data_shape=data["shape"], num_classes=classes)
        labels = torch.randint(0, classes, (examples,), generator=generator)
        return model, classifier_step_loss, [synthetic_examples(examples, data, generator), labels]
    raise ValueError(f"unknown trainer {trainer!r}: one of {list(TRAINERS)}")


@contextlib.contextmanager
def quiet_training_log():
    """The training loop's progress lines off: a measurement's five steps are not a training."""
    training_logger = logging.getLogger("gpe_pipeline.core.training")
    level = training_logger.level
    training_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        training_logger.setLevel(level)


def measure_step_ms(network: Mapping[str, Any], warmup_steps: int = 2, timed_steps: int = 5) -> float:
    """Milliseconds per optimiser step of a network: the median of timed_steps steps after warmup_steps untimed ones.

    The steps run through core.training.train (the run's device, precision, compile, clipping and moving average)
    on synthetic tensors of the run's shapes, without evaluation or checkpoint; the global RNG is left as it was.
    The median, not the mean: on a shared machine one step that waited for the CPU would weigh a third of a mean.
    """
    settings = network["training"]
    batch = int(settings["batch_size"])
    model, loss, data = build_network(network, examples=2 * batch)
    total = warmup_steps + timed_steps
    config = TrainConfig(
        max_steps=total,
        batch_size=batch,
        lr=1e-4,  # the rate does not change a step's cost
        grad_clip=settings["grad_clip"],
        ema_decay=settings["ema_decay"],
        log_every=total,
        eval_every=total,
        checkpoint_every=total,
        on_divergence="stop",  # random data and weights: a measurement never fails on its loss
        device=settings["device"],
        precision=settings["precision"],
        compile=settings["compile"],
        name=f"plan {network['trainer']}",
    )
    device = resolve_device(config.device)
    marks: list[float] = []  # the end of each step from the last untimed one on

    def mark(step: int) -> None:
        if step >= warmup_steps:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            marks.append(time.perf_counter())

    devices = [device.index or 0] if device.type == "cuda" else []
    with quiet_training_log(), torch.random.fork_rng(devices=devices):
        train(model, loss, data, config, on_step_end=mark)
    return 1000 * statistics.median(end - start for start, end in itertools.pairwise(marks))


def measure_networks(
    networks: Iterable[str], warmup_steps: int, timed_steps: int, measure: Callable[..., float] = measure_step_ms
) -> dict[str, float]:
    """ms/step of every distinct network, each measured once (networks: network_key strings, repeats allowed)."""
    measured: dict[str, float] = {}
    for key in networks:
        if key not in measured:
            measured[key] = measure(json.loads(key), warmup_steps, timed_steps)
    return measured


# --- step times: a committed GPU table --------------------------------------------------------------------------------


def device_table_path(project: Path, device: str) -> Path:
    """The newest benchmarks/results/gpu-check-<device>-<date>.md; ParameterError naming the devices there."""
    folder = project / DEVICE_TABLES
    found = sorted(folder.glob(f"gpu-check-{device}-*.md"))
    if not found:
        known = sorted(
            {re.sub(r"-\d{4}-\d\d-\d\d$", "", p.stem.removeprefix("gpu-check-")) for p in folder.glob("gpu-check-*.md")}
        )
        measured = f"the devices measured there are {known}" if known else "no device was measured there"
        raise ParameterError(f"{PLAN_KEY}.device_table is {device!r}, but {folder} has no gpu-check-{device}-*.md: {measured}")
    return found[-1]


def read_device_table(text: str) -> dict[tuple[str, str, int, str], float]:
    """{(network, trainer, batch, mode): ms/step} from the step-time table of a GPU check (benchmarks/gpu_check.py).

    Its rows leave network, trainer and batch blank where they repeat the row above.
    """
    table: dict[tuple[str, str, int, str], float] = {}
    header: list[str] | None = None
    last: list[str] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            header = None
        elif header is None:
            header = cells
        elif {"network", "trainer", "batch", "mode", "ms/step"} <= set(header) and not set(line) <= set("|-: "):
            row = dict(zip(header, cells, strict=False))
            last = [
                row[key] or previous for key, previous in zip(("network", "trainer", "batch"), last or ["", "", ""], strict=True)
            ]
            table[(last[0], last[1], int(last[2]), row["mode"])] = float(row["ms/step"].split()[0])
    return table


def table_step_ms(network: Mapping[str, Any], table: Mapping[tuple[str, str, int, str], float]) -> tuple[float | None, str]:
    """A network's ms/step from a GPU table (None when the table does not hold it), and how it was read.

    The table holds encoder (GME loss) and decoder steps of the paper's networks at a batch size, per mode; a joint
    step is taken as its encoder's row plus its decoder's, which the table did not measure together.
    """
    settings = network["training"]
    precision = "fp32" if settings["precision"] == "fp32" else "bf16"
    mode = TABLE_MODES.get((precision, settings["compile"] != "off"))
    parts = {"encoder": ["encoder"], "decoder": ["decoder"], "joint": ["encoder", "decoder"]}.get(network["trainer"], [])
    rows = [table.get((network[part]["architecture"], part, settings["batch_size"], str(mode))) for part in parts]
    if not rows or None in rows:
        return None, "not in the table"
    augment = network.get("augment") or {}
    if network["trainer"] == "encoder" and (network["loss"] != "gme" or augment.get("hflip") or augment.get("crop_scale", 1) < 1):
        return None, "not in the table, which measured the GME loss without augmentation"
    return sum(rows), f"table, {mode}" + (": encoder row + decoder row" if len(rows) > 1 else "")


# --- the whole plan ---------------------------------------------------------------------------------------------------


def estimate(
    trainings: list[Training],
    settings: Mapping[str, Any],
    project: Path,
    measure: Callable[..., float] = measure_step_ms,
) -> Plan:
    """The plan with a time per step for every network: measured here, or from the GPU table settings name."""
    plan = Plan(trainings)
    networks = plan.networks()
    if settings["device_table"] is None:
        started = time.perf_counter()
        plan.step_ms = dict(measure_networks(networks, settings["warmup_steps"], settings["timed_steps"], measure))
        devices = sorted({str(resolve_device(json.loads(key)["training"]["device"])) for key in networks}) or ["none"]
        plan.source = (
            f"measured on this machine ({', '.join(devices)}): {settings['timed_steps']} timed steps after "
            f"{settings['warmup_steps']} untimed ones of each of the {len(networks)} distinct networks, on synthetic data of "
            f"the run's shape, through the core's training loop ({time.perf_counter() - started:.1f} s)"
        )
        plan.step_notes = {key: "measured" for key in networks}
        return plan
    path = device_table_path(project, settings["device_table"])
    table = read_device_table(path.read_text())
    for key in networks:
        plan.step_ms[key], plan.step_notes[key] = table_step_ms(json.loads(key), table)
    plan.source = (
        f"read from {path.relative_to(project).as_posix()} for the paper's networks (precision and compile auto are "
        "bf16+compile there); nothing measured, and the networks the table does not hold are not estimated"
    )
    return plan


def format_duration(seconds: float | None) -> str:
    """0.4 s, 12 s, 3.4 min, 5.1 h, 3.2 days; 'not estimated' for None."""
    if seconds is None:
        return "not estimated"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def group_time(totals: Mapping[str, float]) -> str:
    """A group's estimated time, with the steps left without an estimate."""
    if totals["unestimated_steps"] == totals["steps"] and totals["steps"]:
        return "not estimated"
    text = format_duration(totals["seconds"])
    return text + (f" + {totals['unestimated_steps']:,.0f} steps not estimated" if totals["unestimated_steps"] else "")


def plan_totals(plan: Plan) -> dict[str, float]:
    """The whole run's runs, steps, seconds and steps without an estimate."""
    groups = plan.groups().values()
    return {key: sum(group[key] for group in groups) for key in ("runs", "steps", "seconds", "unestimated_steps")}


PLAN_RULE = (
    "Steps are each training's max_steps: a target, a divergence or a kept decoder can only stop it earlier. "
    "Times are steps x the time per step, an upper bound of the training time that leaves out evaluations, "
    "encoding, sampling, checkpoints and data loading."
)


def plan_markdown(plan: Plan, command: str) -> str:
    """The plan as data/08_reporting/plan.md: a summary per experiment, then every training."""
    totals = plan_totals(plan)
    lines = [
        f"# Plan of `{command}`",
        "",
        f"Every training the run will do, written before the first one. {PLAN_RULE}",
        "",
        f"Step times: {plan.source}.",
        "",
        "| experiment | trainings | optimiser steps at most | training time at most |",
        "|---|---|---|---|",
    ]
    for group, total in plan.groups().items():
        lines.append(f"| {group_label(group)} | {total['runs']:,.0f} | {total['steps']:,.0f} | {group_time(total)} |")
    lines += [f"| **total** | {totals['runs']:,.0f} | {totals['steps']:,.0f} | {group_time(totals)} |", ""]
    lines += [
        "## Every training",
        "",
        "| experiment | namespace | trainer | what | trainings | steps at most | step time | training time at most |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in plan.trainings:
        ms = plan.step_ms.get(t.network) if t.network else None
        note = plan.step_notes.get(t.network, "") if t.network else ""
        step_time = "" if t.network is None else (f"{ms:.3g} ms ({note})" if ms is not None else note)
        lines.append(
            f"| {group_label(t.group)} | {t.namespace or '(none)'} | {t.trainer} | {t.description} | {t.runs} | {t.steps:,} "
            f"| {step_time} | {format_duration(plan.seconds(t))} |"
        )
    return "\n".join(lines) + "\n"


def plan_log_lines(plan: Plan) -> list[str]:
    """The plan's summary as log lines: one per experiment and the total."""
    totals = plan_totals(plan)
    lines = [
        f"Plan: {totals['runs']:,.0f} trainings, {totals['steps']:,.0f} optimiser steps at most, "
        f"training time at most {group_time(totals)} (evaluations excluded; step times {plan.source.split(':')[0]})"
    ]
    for group, total in plan.groups().items():
        lines.append(
            f"Plan:   {group_label(group)}: {total['runs']:,.0f} trainings, {total['steps']:,.0f} steps at most, "
            f"at most {group_time(total)}"
        )
    return lines


def write_plan(project: Path, text: str) -> Path:
    """Write the plan to <project>/data/08_reporting/plan.md atomically (temporary file + rename); its path."""
    path = project / PLAN_FILE
    write_text_atomically(path, text)
    return path
