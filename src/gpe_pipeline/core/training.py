"""The one training loop every trainer uses (encoder, decoder, flow, baselines).

`train(model, loss_fn, data, config, ...)` owns everything that is not the
loss: device, precision, batching by indexing in-memory tensors, Adam, gradient
clipping, periodic evaluation on a validation split with early stopping at a
target (metrics named `validation_<name>`; the held-out split a report uses is
never passed here),
progress lines, metric logging through a callback (MLflow plugs in there),
atomic checkpoints with exact resume, the reuse of a finished training kept in
its checkpoint file, weight snapshots at listed steps and at levels of the
validation metric, and the NaN/inf guard.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from . import distributed
from .errors import UnreadableFileError, UserError
from .files import read_torch_file

logger = logging.getLogger(__name__)

# A step loss returns the scalar to minimise, or a dict of scalars whose "loss" is minimised and whose other
# entries (e.g. a VAE's reconstruction and KL terms) are logged beside it as train_<name>.
LossFn = Callable[[nn.Module, tuple[Tensor, ...]], Tensor | dict[str, Tensor]]
EvaluateFn = Callable[[nn.Module], dict[str, float]]
MetricsCallback = Callable[[dict[str, float], int], None]

PRECISIONS = ("auto", "fp32", "bf16")
DIVERGENCE_RULES = ("raise", "stop")
VALIDATION_PREFIX = "validation_"  # what evaluate(model) returns is logged and stopped on under this prefix
COMPILE_MODES = ("auto", "on", "off")


class NonFiniteLossError(UserError, FloatingPointError):
    """Raised when a training loss becomes NaN or infinite."""


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings of one trainer; validated on construction."""

    max_steps: int
    batch_size: int
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = None
    # Keep an exponential moving average of the weights (evaluated and returned instead); its decay warms up
    # as min(ema_decay, (1 + step) / (10 + step)).
    ema_decay: float | None = None
    log_every: int = 100
    eval_every: int = 500
    checkpoint_every: int = 1000
    checkpoint_path: str | None = None
    # A training that finished leaves its result in checkpoint_path; a re-run with the same fingerprint returns it
    # without a step (false: always train).
    reuse_finished: bool = True
    target_metric: str | None = None
    target: float | None = None  # stop once validation_<target_metric> is at or below it
    # A NaN or infinite loss: "raise" stops the stage with an error; "stop" ends this training and records the step
    # (a sweep that expects some settings to diverge, e.g. the stability study, goes on with the next one).
    on_divergence: str = "raise"
    # A loss above this multiple of the first step's loss also counts as diverged (null: only a non-finite one does).
    # Adam's bounded steps let a quadratic loss explode by orders of magnitude without ever overflowing.
    divergence_factor: float | None = None
    snapshot_steps: tuple[int, ...] = ()  # keep a copy of the (moving-average) weights after these steps
    # Levels of validation_<target_metric>: keep a copy of the evaluated weights at the first evaluation at or below
    # each, so one run that trains to the lowest level serves every level (what a run with target=<level> returns).
    snapshot_at: tuple[float, ...] = ()
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: str = "auto"  # torch.compile the model: auto (on CUDA only) | on | off
    world_size: int = 1  # > 1: data-parallel over this many processes (DDP), on all machines together; the global batch
    backend: str = "auto"  # process-group backend: auto (nccl on CUDA, gloo on CPU) | gloo | nccl
    nodes: int = 1  # machines the world_size processes share evenly (> 1: the others run `python -m gpe_pipeline worker`)
    rendezvous: str | None = None  # HOST:PORT of this (the head) machine, where the others join; needed with nodes > 1
    max_restarts: int = 0  # times torch's elastic agent restarts every process after one fails (they resume from checkpoint)
    rendezvous_timeout: int = 600  # seconds the head waits for every machine to join a stage
    min_batch_size: int = 1
    name: str = "train"
    params_key: str | None = None  # where these settings live in the parameters, for error messages; default: name

    def __post_init__(self) -> None:
        key_root = self.params_key or self.name
        prefix = f"{key_root}." if key_root else ""

        def need(condition: bool, key: str, rule: str) -> None:
            if not condition:
                raise ValueError(f"{prefix}{key} {rule}, got {getattr(self, key)!r}: change {prefix}{key} in the parameters")

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        need(is_int(self.max_steps) and self.max_steps >= 1, "max_steps", "must be an integer >= 1")
        need(
            is_int(self.batch_size) and self.batch_size >= self.min_batch_size,
            "batch_size",
            f"must be an integer >= {self.min_batch_size}" + (" for a pairwise loss" if self.min_batch_size > 1 else ""),
        )
        need(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0, "lr", "must be a positive number")
        self.betas = tuple(float(b) for b in self.betas)
        need(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "must be two numbers in [0, 1)")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "must be null or > 0")
        need(self.ema_decay is None or 0 < self.ema_decay < 1, "ema_decay", "must be null or in (0, 1)")
        for key in ("log_every", "eval_every", "checkpoint_every"):
            need(is_int(getattr(self, key)) and getattr(self, key) >= 1, key, "must be an integer >= 1")
        need(self.precision in PRECISIONS, "precision", f"must be one of {list(PRECISIONS)}")
        need(self.compile in COMPILE_MODES, "compile", f"must be one of {list(COMPILE_MODES)}")
        need(is_int(self.world_size) and self.world_size >= 1, "world_size", "must be an integer >= 1")
        need(self.on_divergence in DIVERGENCE_RULES, "on_divergence", f"must be one of {list(DIVERGENCE_RULES)}")
        need(
            self.divergence_factor is None or (is_number(self.divergence_factor) and self.divergence_factor > 1),
            "divergence_factor",
            "must be null or a number > 1",
        )
        self.snapshot_steps = tuple(self.snapshot_steps or ())
        need(all(is_int(s) and s >= 1 for s in self.snapshot_steps), "snapshot_steps", "must be a list of integers >= 1")
        need(
            all(s <= self.max_steps for s in self.snapshot_steps),
            "snapshot_steps",
            f"must not exceed max_steps ({self.max_steps}), since a later snapshot is never taken",
        )
        levels = () if self.snapshot_at is None else self.snapshot_at
        need(
            isinstance(levels, (list, tuple)) and all(is_number(v) and 0 < v < math.inf for v in levels),
            "snapshot_at",
            "must be a list of positive numbers (levels of the validation metric)",
        )
        self.snapshot_at = tuple(float(v) for v in levels)
        need(
            self.target_metric is not None or not self.snapshot_at,
            "snapshot_at",
            "needs a trainer with a target metric (its levels are values of validation_<target_metric>)",
        )
        need(isinstance(self.reuse_finished, bool), "reuse_finished", "must be true or false")
        need(self.backend in ("auto", "gloo", "nccl"), "backend", "must be auto, gloo or nccl")
        need(
            is_int(self.nodes) and 1 <= self.nodes <= self.world_size,
            "nodes",
            f"must be an integer in 1..world_size ({self.world_size})",
        )
        need(
            self.world_size % self.nodes == 0,
            "nodes",
            f"must divide world_size ({self.world_size}): every machine runs the same number of processes",
        )
        need(self.rendezvous is not None or self.nodes == 1, "rendezvous", "must be HOST:PORT of this machine when nodes > 1")
        need(
            self.rendezvous is None or valid_endpoint(self.rendezvous), "rendezvous", "must be null or HOST:PORT (port 1..65535)"
        )
        need(is_int(self.max_restarts) and self.max_restarts >= 0, "max_restarts", "must be an integer >= 0")
        need(
            is_int(self.rendezvous_timeout) and self.rendezvous_timeout >= 1,
            "rendezvous_timeout",
            "must be a whole number of seconds >= 1",
        )
        need(
            self.batch_size % self.world_size == 0,
            "batch_size",
            f"must be divisible by world_size ({self.world_size}): every process takes an equal share of the global batch",
        )
        need(valid_device(self.device), "device", "must be auto, cpu or cuda[:N]")
        need(
            (self.target is None) == (self.target_metric is None) or self.target is None,
            "target_metric",
            "must be set when a target is set",
        )


@dataclass
class TrainResult:
    """What a finished training run returns."""

    model: nn.Module
    history: list[dict[str, float]]
    steps: int
    seconds: float
    stop_reason: str
    final_metrics: dict[str, float]
    snapshots: dict[int, dict[str, Tensor]] = field(default_factory=dict)  # step -> weights (config.snapshot_steps)
    # The step whose loss was not finite (or above divergence_factor times the first step's), under on_divergence "stop".
    diverged_step: int | None = None
    # level -> {"step", "value", "weights"} at the first evaluation at or below it (config.snapshot_at); unreached: absent
    level_snapshots: dict[float, dict[str, Any]] = field(default_factory=dict)


def valid_device(device: Any) -> bool:
    """Whether resolve_device accepts the name: auto, cpu, cuda or cuda:N."""
    return isinstance(device, str) and (device == "auto" or device.split(":")[0] in ("cpu", "cuda"))


def valid_endpoint(endpoint: Any) -> bool:
    """Whether a rendezvous endpoint is HOST:PORT."""
    try:
        distributed.split_endpoint(endpoint)
    except (ValueError, AttributeError):
        return False
    return True


def resolve_device(device: str = "auto") -> torch.device:
    """CUDA when present, else CPU; an explicit 'cpu' or 'cuda:N' is kept."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def compiles(config: TrainConfig, device: torch.device) -> bool:
    """Whether the loop torch.compiles the model: compile on, or auto on CUDA."""
    return config.compile == "on" or (config.compile == "auto" and device.type == "cuda")


def allow_tf32() -> None:
    """TF32 for CUDA matmuls and convolutions (float32 range, ~8x the fp32 rate); pairwise distances opt out (losses.full_float32)."""
    # The fp32_precision switches, not the legacy allow_tf32 flags: torch refuses to mix the two APIs.
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.cudnn.conv.fp32_precision = "tf32"


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast on CUDA when asked (or 'auto'); nothing on CPU, so CPU results never change."""
    use_bf16 = device.type == "cuda" and precision in ("auto", "bf16")
    if use_bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class BatchSampler:
    """Random batches without replacement within an epoch, drawn by indexing in-memory tensors.

    The permutation is drawn on the CPU (the same order on every device and after a resume) and moved to `device`
    once per epoch: indices on the GPU cost no host-to-device copy per step, and such a copy from pageable memory
    would make the host wait for the GPU at every step.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        if num_items < batch_size:
            raise ValueError(f"batch_size {batch_size} is larger than the {num_items} training examples: lower batch_size")
        self.num_items = num_items
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.order = self._permutation()
        self.position = 0

    def _permutation(self) -> Tensor:
        return torch.randperm(self.num_items, generator=self.generator).to(self.device)

    def next_indices(self) -> Tensor:
        """The next batch's indices (batch_size,), on the sampler's device."""
        if self.position + self.batch_size > self.num_items:  # drop the ragged tail: every batch is full
            self.order = self._permutation()
            self.position = 0
        indices = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return indices

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order.cpu(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].to(self.device)
        self.position = int(state["position"])


def ema_decay_at(decay: float, step: int) -> float:
    """The moving average's decay after `step` optimiser steps: min(decay, (1 + step) / (10 + step)).

    It grows from 2/11 at the first step towards `decay`, so a short run's average is not mostly its random
    initial weights (with a fixed 0.999, 1000 steps would still weigh the initial weights by 0.999^1000 = 0.37).
    """
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema_model: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """ema <- d * ema + (1 - d) * weights with d = ema_decay_at(decay, step); buffers (batch-norm statistics) are copied.

    step: the optimiser steps taken so far, this one included (1 at the first update); a resumed run continues
    from the checkpoint's step, so its average is the uninterrupted one.
    """
    ema_params, params = list(ema_model.parameters()), list(model.parameters())
    torch._foreach_lerp_(ema_params, params, 1.0 - ema_decay_at(decay, step))
    for ema_buffer, buffer in zip(ema_model.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


def place_data(data: Sequence[Tensor], device: torch.device, max_fraction_of_free: float = 0.5) -> list[Tensor]:
    """Training tensors on the GPU when they fit in a fraction of its free memory, else pinned on the host.

    Either way batches are drawn by indexing one tensor; only the host case pays a copy per batch.
    """
    if device.type != "cuda":
        return [t.to(device) for t in data]
    free, _ = torch.cuda.mem_get_info(device)
    size = sum(t.numel() * t.element_size() for t in data)
    if size <= max_fraction_of_free * free:
        return [t.to(device) for t in data]
    logger.info("training data (%.1f GB) stays in pinned host memory: it exceeds half the GPU's free memory", size / 1e9)
    return [t.pin_memory() for t in data]


# Stopping rules, bookkeeping and where the run executes may change between an interruption and the re-run.
FINGERPRINT_IGNORED_SETTINGS = (
    "params_key",
    "max_steps",
    "target",
    "target_metric",
    "log_every",
    "eval_every",
    "checkpoint_every",
    "checkpoint_path",
    "device",
    "world_size",
    "backend",
    "nodes",
    "rendezvous",
    "max_restarts",
    "rendezvous_timeout",
    "compile",
    "on_divergence",
    "divergence_factor",
    "snapshot_steps",
    "snapshot_at",  # a level reached before the checkpoint without a snapshot refuses the resume instead (_resume)
    "reuse_finished",
)
# What else shapes a finished training's result (its weights, history, metrics and snapshots): a finished
# checkpoint is reused only when these match too. nodes, rendezvous and the restart settings change nothing.
RESULT_SETTINGS = (
    "max_steps",
    "target",
    "target_metric",
    "snapshot_steps",
    "snapshot_at",
    "log_every",
    "eval_every",
    "checkpoint_every",  # a checkpoint step adds a history record
    "on_divergence",
    "divergence_factor",
    "world_size",  # each rank draws its own noise
)
FINGERPRINT_PART_NAMES = {
    "settings": "training settings",
    "model_build_spec": "model build spec",
    "model_layers": "model layers",
    "loss": "loss",
    "data": "training data",
    "result_settings": "stop and record settings",
    "evaluation": "validation function",
}


def describe_callable(function: Any) -> Any:
    """A plain, process-independent description of a loss or evaluation function: its qualified name and bound options.

    functools.partial is unwrapped (its keywords are the loss's options, e.g. loss_name, augment, weights);
    callables inside become their qualified names, so the description is the same in every process; tensors (an
    evaluation's validation points) become their summary.
    """
    if isinstance(function, Tensor):
        return tensor_summary(function)
    if isinstance(function, partial):
        inner = describe_callable(function.func)
        description = inner if isinstance(inner, dict) else {"function": inner}
        arguments = {f"arg{i}": describe_callable(a) for i, a in enumerate(function.args)}
        return {**description, **arguments, **{k: describe_callable(v) for k, v in function.keywords.items()}}
    if isinstance(function, dict):
        return {str(k): describe_callable(v) for k, v in function.items()}
    if isinstance(function, (list, tuple)):
        return [describe_callable(v) for v in function]
    if function is None or isinstance(function, (bool, int, float, str)):
        return function
    if callable(function) and hasattr(function, "__qualname__"):
        return f"{getattr(function, '__module__', '')}.{function.__qualname__}"
    return f"{type(function).__module__}.{type(function).__qualname__}"


def tensor_summary(tensor: Tensor) -> dict[str, Any]:
    """Shape, dtype and the float64 sum of the first 256 rows: what tells one data set from another, cheaply."""
    return {
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype),
        "first_rows_sum": float(tensor[: min(len(tensor), 256)].double().sum()),
    }


def fingerprint_parts(config: TrainConfig, model: nn.Module, loss_fn: LossFn, data: Sequence[Tensor]) -> dict[str, Any]:
    """Everything that makes a checkpoint belong to this run, by named part (plain JSON values).

    Parts: settings (optimisation settings that shape the trajectory), model_build_spec (architecture and
    options, activations included), model_layers (the module tree and parameter shapes), loss (the loss
    function and its bound options: loss name, weights, augmentation), data (shapes, dtypes and a sum of the
    first rows). Call it on the CPU tensors, before they move to a device, so that the data's summary is the
    same on every machine.
    """
    loss = describe_callable(loss_fn)
    spec = getattr(model, "build_spec", None)
    spec_dict = spec.as_dict() if spec is not None else None
    parts: dict[str, Any] = {
        "settings": {k: v for k, v in asdict(config).items() if k not in FINGERPRINT_IGNORED_SETTINGS},
        "model_build_spec": (
            {"role": spec_dict["role"], "architecture": spec_dict["architecture"], **spec_dict["kwargs"]} if spec_dict else None
        ),
        "model_layers": {"modules": repr(model), "parameters": {n: list(p.shape) for n, p in model.state_dict().items()}},
        "loss": loss if isinstance(loss, dict) else {"function": loss},
        "data": [tensor_summary(t) for t in data],
    }
    return _plain(parts)


def _plain(value: Any) -> Any:
    """JSON values only: tuples become lists, so a fingerprint compares equal to itself after a reload."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def finished_fingerprint(
    parts: dict[str, Any], config: TrainConfig, evaluate: EvaluateFn | None, device: torch.device
) -> dict[str, Any]:
    """What a finished training's checkpoint must match to be reused: `parts` (fingerprint_parts) and what else
    shapes its result: the stop and record settings, where it computes, and the validation function with its inputs."""
    result_settings = {
        **{k: getattr(config, k) for k in RESULT_SETTINGS},
        "device_type": device.type,
        "compiled": compiles(config, device),
    }
    return {**parts, **_plain({"result_settings": result_settings, "evaluation": describe_callable(evaluate)})}


def _changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two fingerprint values differ, as 'key old -> new' lines (long values are only named)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _changes(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found += _changes(a, b, f"{path}[{index}]")
        return found
    if old == new:
        return []
    old_text, new_text = json.dumps(old, default=str), json.dumps(new, default=str)
    if len(old_text) + len(new_text) > 120:
        return [f"{path or 'value'} changed"]
    return [f"{path + ' ' if path else ''}{old_text} -> {new_text}"]


def fingerprint_differences(stored: Any, current: dict[str, Any]) -> list[str]:
    """Why a checkpoint's fingerprint is not this run's, one reason per differing part; [] when they match."""
    if not isinstance(stored, dict):
        return ["format: written by an older version of the training loop"]
    reasons = []
    for part in sorted(set(stored) | set(current), key=lambda p: (list(FINGERPRINT_PART_NAMES) + [p]).index(p)):
        changes = _changes(stored.get(part), current.get(part))
        if changes:
            shown = "; ".join(changes[:3]) + (f" (and {len(changes) - 3} more)" if len(changes) > 3 else "")
            reasons.append(f"{FINGERPRINT_PART_NAMES.get(part, part)}: {shown}")
    return reasons


def checkpoint_state(
    fingerprint: dict[str, Any],
    step: int,
    model: nn.Module,
    ema_model: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    sampler: BatchSampler,
    rng_states: list[dict[str, Tensor]],
    history: list[dict[str, float]],
    elapsed: float,
    snapshots: dict[int, dict[str, Tensor]] | None = None,
    initial_loss: float | None = None,
    level_snapshots: dict[float, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything a resumed run needs: weights, optimiser, sampler position, every rank's RNG state, history, seconds.

    rng_states: one entry per rank, in rank order (distributed.all_gather_objects of each rank's rng_state).
    snapshots: the weight snapshots taken so far (TrainConfig.snapshot_steps).
    initial_loss: the first step's loss, the reference of TrainConfig.divergence_factor.
    level_snapshots: the snapshots of the levels reached so far (TrainConfig.snapshot_at).
    """
    return {
        "fingerprint": json.dumps(fingerprint, sort_keys=True),  # a string: weights_only loading takes it as it is
        "step": step,
        "model": model.state_dict(),
        "ema_model": ema_model.state_dict() if ema_model is not None else None,
        "optimizer": optimizer.state_dict(),
        "sampler": sampler.state_dict(),
        "rng": rng_states,
        "history": history,
        "elapsed": elapsed,
        "snapshots": snapshots or {},
        "initial_loss": initial_loss,
        "level_snapshots": level_snapshots or {},
    }


def finished_checkpoint_state(fingerprint: dict[str, Any], result: TrainResult) -> dict[str, Any]:
    """A finished training: everything its TrainResult holds (the returned model's weights) and finished_fingerprint.

    No optimiser or sampler state: it is never resumed, only handed back whole (reused_training).
    """
    return {
        "fingerprint": json.dumps(fingerprint, sort_keys=True),
        "finished": True,
        "step": result.steps,
        "model": result.model.state_dict(),
        "history": result.history,
        "seconds": result.seconds,
        "stop_reason": result.stop_reason,
        "final_metrics": result.final_metrics,
        "snapshots": result.snapshots,
        "level_snapshots": result.level_snapshots,
        "diverged_step": result.diverged_step,
    }


def finished_result(checkpoint: dict[str, Any], model: nn.Module) -> TrainResult:
    """The TrainResult a finished checkpoint holds, its weights loaded into `model` (on the CPU, in eval mode)."""
    model.cpu().load_state_dict(checkpoint["model"])
    return TrainResult(
        model.eval(),
        list(checkpoint["history"]),
        int(checkpoint["step"]),
        float(checkpoint["seconds"]),
        checkpoint["stop_reason"],
        dict(checkpoint["final_metrics"]),
        dict(checkpoint["snapshots"]),
        checkpoint["diverged_step"],
        dict(checkpoint["level_snapshots"]),
    )


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _stored_fingerprint(checkpoint: dict[str, Any]) -> Any:
    """The fingerprint parts a checkpoint holds (None for an older checkpoint's bare hash)."""
    try:
        return json.loads(checkpoint.get("fingerprint", ""))
    except (TypeError, ValueError):
        return None


CHECKPOINT_KEYS = ("fingerprint", "step", "model", "optimizer", "sampler", "rng", "history", "elapsed")
FINISHED_CHECKPOINT_KEYS = (
    "fingerprint",
    "finished",
    "step",
    "model",
    "history",
    "seconds",
    "stop_reason",
    "final_metrics",
    "snapshots",
    "level_snapshots",
    "diverged_step",
)


def is_finished(checkpoint: Any) -> bool:
    """Whether a loaded checkpoint is a finished training's (finished_checkpoint_state) rather than a resumable one."""
    return isinstance(checkpoint, dict) and checkpoint.get("finished") is True


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None when there is none; UnreadableFileError when it cannot be read."""
    try:
        checkpoint = read_torch_file(path)
    except FileNotFoundError:  # none, or another rank moved a damaged one aside meanwhile
        return None
    keys = FINISHED_CHECKPOINT_KEYS if is_finished(checkpoint) else CHECKPOINT_KEYS
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in keys):
        raise UnreadableFileError("not a training checkpoint: its keys are not those train() writes")
    return checkpoint


def load_checkpoint_or_move_aside(path: Path, name: str, is_main: bool) -> dict[str, Any] | None:
    """load_checkpoint, except that an unreadable checkpoint is renamed (never deleted) and None returned.

    The main process renames it to <name>.corrupt-<timestamp> beside it and warns with both paths; the
    stage then trains from the start.
    """
    try:
        return load_checkpoint(path)
    except UnreadableFileError as err:
        if is_main:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = path.with_name(f"{path.name}.corrupt-{stamp}")
            for attempt in range(1, 1000):
                if not aside.exists():
                    break
                aside = path.with_name(f"{path.name}.corrupt-{stamp}-{attempt}")
            os.replace(path, aside)
            logger.warning("%s: checkpoint %s cannot be read (%s): moved it to %s and starting fresh", name, path, err, aside)
        return None


def last_validation(history: list[dict[str, float]]) -> dict[str, float]:
    """The validation metrics of the last record that has any ({} when none has)."""
    for record in reversed(history):
        measured = {k: v for k, v in record.items() if k.startswith(VALIDATION_PREFIX)}
        if measured:
            return measured
    return {}


def rng_state(device: torch.device) -> dict[str, Tensor]:
    """This process's global generators: the CPU one and, on CUDA, the device's."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _log_progress(name: str, record: dict[str, float], max_steps: int) -> None:
    """One progress line: step, loss, validation metrics, rate and ETA."""
    held = "".join(f" | {k} {v:.4g}" for k, v in record.items() if k.startswith(VALIDATION_PREFIX))
    rate = record["steps_per_sec"]
    eta = _format_eta((max_steps - record["step"]) / max(rate, 1e-9))
    logger.info(
        "%s step %d/%d | loss %.4g%s | %.1f it/s | ETA %s", name, record["step"], max_steps, record["train_loss"], held, rate, eta
    )


@dataclass
class _Run:
    """One training run's state between steps: what the loop's named parts below read and update."""

    config: TrainConfig
    model: nn.Module  # the weights the optimiser updates
    step_model: nn.Module  # what the loss calls: the model, under DDP and torch.compile when they apply
    ema_model: nn.Module | None
    optimizer: torch.optim.Optimizer
    sampler: BatchSampler
    data: list[Tensor]
    device: torch.device
    rank: int
    world: int
    fingerprint: dict[str, Any]
    finished_fingerprint: dict[str, Any]  # what the finished checkpoint stores (the main process's: it has evaluate)
    checkpoint_path: Path | None
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: dict[int, dict[str, Tensor]] = field(default_factory=dict)
    level_snapshots: dict[float, dict[str, Any]] = field(default_factory=dict)
    initial_loss: float | None = None  # the first step's loss (divergence_factor's reference), kept across a resume
    elapsed_before: float = 0.0  # seconds of the interrupted run this one resumes
    last_good_checkpoint: int = 0  # the step of the last checkpoint written or resumed (0: none)
    # Losses stay on the device between records: one host sync per record, not per step.
    pending_losses: list[Tensor] = field(default_factory=list)  # one (1 + extra terms,) vector per step
    pending_first_step: int = 1
    term_names: list[str] = field(default_factory=list)
    # Seconds spent in training steps, without evaluations and checkpoints: what a wall-clock comparison counts.
    train_seconds: float = 0.0
    start: float = 0.0
    window_start: float = 0.0  # the training-steps window that steps_per_sec measures
    window_start_step: int = 0
    diverged: tuple[int, str] | None = None  # (step, loss and why) of a diverged loss under on_divergence "stop"
    stop_reason: str = "max_steps"
    final_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def evaluated_model(self) -> nn.Module:
        """What evaluate() sees, snapshots copy and train() returns: the moving average when there is one."""
        return self.ema_model if self.ema_model is not None else self.model


def _set_up(
    model: nn.Module, data: Sequence[Tensor], config: TrainConfig, fingerprint: dict[str, Any], finished: dict[str, Any]
) -> _Run:
    """Device, seeds, the model (DDP, compiled), data placement, sampler, Adam and the moving average.

    fingerprint, finished: fingerprint_parts and finished_fingerprint of this run.
    """
    rank, world = distributed.rank(), distributed.world_size()
    device = resolve_device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", distributed.local_rank() if world > 1 else (device.index or 0))
        allow_tf32()
    torch.manual_seed(config.seed + rank)  # every rank draws its own noise; rank 0 matches a single process
    model.to(device)
    if world > 1 and device.type == "cuda":  # batch statistics of the global batch, as one process would compute them
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    data = place_data(data, device)
    # The same seed on every rank: one global batch, of which each rank takes its slice.
    sampler = BatchSampler(len(data[0]), config.batch_size, config.seed, device=data[0].device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    step_model: nn.Module = model
    if world > 1:
        step_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if compiles(config, device):
        step_model = torch.compile(step_model)
    ema_model = copy.deepcopy(model).requires_grad_(False) if config.ema_decay is not None else None
    checkpoint_path = Path(config.checkpoint_path) if config.checkpoint_path else None
    return _Run(
        config,
        model,
        step_model,
        ema_model,
        optimizer,
        sampler,
        data,
        device,
        rank,
        world,
        fingerprint,
        finished,
        checkpoint_path,
    )


def _read_checkpoint(config: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint at config.checkpoint_path (interrupted or finished); None without one or when it cannot be read."""
    if config.checkpoint_path is None:
        return None
    return load_checkpoint_or_move_aside(Path(config.checkpoint_path), config.name, distributed.is_main_process())


def _warn_starting_fresh(name: str, path: Any, why: str | list[str]) -> None:
    """The warning of a checkpoint not used; why: a reason, or the fingerprint differences of another run's checkpoint."""
    reason = f"it belongs to another run ({'; '.join(why)})" if isinstance(why, list) else why
    logger.warning("%s: ignoring checkpoint %s and starting fresh: %s", name, path, reason)


def _reuses(config: TrainConfig, checkpoint: dict[str, Any] | None, fingerprint: dict[str, Any]) -> bool:
    """Whether `checkpoint` is a finished training with this fingerprint (finished_fingerprint) to hand back; says why not."""
    if not is_finished(checkpoint):
        return False
    if not config.reuse_finished:
        logger.info(
            "%s: reuse_finished is false, so the finished training in %s is trained again", config.name, config.checkpoint_path
        )
        return False
    reasons = fingerprint_differences(_stored_fingerprint(checkpoint), fingerprint)
    if reasons:
        _warn_starting_fresh(config.name, config.checkpoint_path, reasons)
    return not reasons


def reused_training(
    model: nn.Module,
    config: TrainConfig,
    checkpoint: dict[str, Any] | None,
    fingerprint: dict[str, Any],
    log_metrics: MetricsCallback | None,
) -> TrainResult | None:
    """The finished training in `checkpoint` when it is this very one (same finished_fingerprint), else None.

    The main process decides for every rank (only it has the evaluation, part of the fingerprint). Its history is
    replayed through log_metrics, so the logged curves are those of the training it stands for.
    """
    decided = distributed.is_main_process() and _reuses(config, checkpoint, fingerprint)
    if not distributed.all_gather_objects(decided)[0]:
        return None
    result = finished_result(checkpoint, model)
    if distributed.is_main_process():
        logger.info(
            "%s: reusing the finished training in %s (same fingerprint): %s steps, 0 trained now",
            config.name,
            config.checkpoint_path,
            f"{result.steps:,}",
        )
        if log_metrics is not None:
            records = [(_logged(record), int(record["step"])) for record in result.history]
            # One batched write when the callback takes many records (tracking.MlflowMetricsLogger), not one per record.
            log_records = getattr(log_metrics, "log_records", None)
            if log_records is not None:
                log_records(records)
            else:
                for metrics, step in records:
                    log_metrics(metrics, step)
    return result


def _resume(run: _Run, checkpoint: dict[str, Any] | None) -> None:
    """Continue from an interrupted run's checkpoint when it belongs to this run; one of another run is ignored, with why.

    A finished checkpoint is not resumed (reused_training handled it).
    """
    name, path = run.config.name, run.checkpoint_path
    if checkpoint is None or is_finished(checkpoint):
        return
    reasons = fingerprint_differences(_stored_fingerprint(checkpoint), run.fingerprint)
    if reasons:
        if run.is_main:
            _warn_starting_fresh(name, path, reasons)
        return
    missed = _levels_reached_without_snapshot(run.config, checkpoint)
    if missed:
        if run.is_main:
            _warn_starting_fresh(
                name, path, f"snapshot_at levels {missed} were reached before its step {checkpoint['step']} with no snapshot kept"
            )
        return
    run.model.load_state_dict(checkpoint["model"])
    if run.ema_model is not None:
        run.ema_model.load_state_dict(checkpoint["ema_model"])
    run.optimizer.load_state_dict(checkpoint["optimizer"])
    run.sampler.load_state_dict(checkpoint["sampler"])
    saved_states = checkpoint["rng"]  # one per rank of the interrupted run
    if run.rank < len(saved_states):
        set_rng_state(saved_states[run.rank], run.device)
    else:  # more processes than the interrupted run had: this one's noise cannot continue a stream
        torch.manual_seed(run.config.seed + run.rank + 1_000_003 * int(checkpoint["step"]))
    run.step = int(checkpoint["step"])
    run.history = list(checkpoint["history"])
    run.elapsed_before = float(checkpoint["elapsed"])
    run.snapshots = dict(checkpoint.get("snapshots") or {})
    kept_levels = checkpoint.get("level_snapshots") or {}
    run.level_snapshots = {level: kept_levels[level] for level in run.config.snapshot_at if level in kept_levels}
    run.initial_loss = checkpoint.get("initial_loss")
    run.last_good_checkpoint = run.step
    if run.is_main:
        logger.info("%s: resuming from checkpoint %s at step %d", name, path, run.step)


def _levels_reached_without_snapshot(config: TrainConfig, checkpoint: dict[str, Any]) -> list[float]:
    """The snapshot_at levels an interrupted run's history already reached but it kept no snapshot of (asked for later)."""
    key = f"{VALIDATION_PREFIX}{config.target_metric}"
    kept = checkpoint.get("level_snapshots") or {}
    reached = [record[key] for record in checkpoint["history"] if key in record]
    return [level for level in config.snapshot_at if level not in kept and any(value <= level for value in reached)]


def _start_clocks(run: _Run) -> None:
    """Time from here (set-up and resume left out); a resumed run goes on counting its training seconds."""
    run.train_seconds = float(run.history[-1].get("train_elapsed_s", 0.0)) if run.history else 0.0
    run.pending_first_step = run.step + 1
    run.start = run.window_start = time.perf_counter()
    run.window_start_step = run.step


def _take_step(run: _Run, loss_fn: LossFn) -> None:
    """One optimiser step on the next batch (this rank's slice of it), the moving average and the listed snapshots."""
    config = run.config
    run.step += 1
    local_batch = config.batch_size // run.world
    indices = run.sampler.next_indices()[run.rank * local_batch : (run.rank + 1) * local_batch]
    batch = tuple(t[indices].to(run.device, non_blocking=True) for t in run.data)
    with autocast_context(run.device, config.precision):
        loss = loss_fn(run.step_model, batch)
    terms: list[Tensor] = []
    if isinstance(loss, dict):
        run.term_names = [key for key in loss if key != "loss"]
        loss, terms = loss["loss"], [loss[key] for key in run.term_names]
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip is not None:
        nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
    run.optimizer.step()
    if run.ema_model is not None:
        update_ema(run.ema_model, run.model, config.ema_decay, run.step)
    run.pending_losses.append(torch.stack([value.detach().float() for value in (loss, *terms)]))
    if run.step in config.snapshot_steps and run.is_main:
        run.snapshots[run.step] = _evaluated_weights(run)


def _evaluated_weights(run: _Run) -> dict[str, Tensor]:
    """A CPU copy of the weights evaluate() sees (the moving average when there is one)."""
    return {k: v.detach().cpu().clone() for k, v in run.evaluated_model.state_dict().items()}


def _snapshot_levels(run: _Run, record: dict[str, float]) -> None:
    """Keep the evaluated weights for every snapshot_at level this record's validation_<target_metric> first reaches.

    Diverged weights never count (a run with that target would not stop on them either).
    """
    key = f"{VALIDATION_PREFIX}{run.config.target_metric}"
    if run.diverged is not None or key not in record:
        return
    for level in run.config.snapshot_at:
        if level not in run.level_snapshots and record[key] <= level:
            run.level_snapshots[level] = {"step": run.step, "value": record[key], "weights": _evaluated_weights(run)}


def _flush_losses(run: _Run) -> dict[str, float]:
    """The mean loss (and extra terms) since the last flush, over steps and ranks: train_loss, train_<term>.

    A non-finite (or exploded) loss among them stops the run: NonFiniteLossError, or run.diverged under "stop".
    """
    config = run.config
    if not run.pending_losses:
        return {"train_loss": float("nan")}
    stacked = distributed.mean_over_ranks(torch.stack(run.pending_losses)).cpu()  # (steps, 1 + terms), the global batch
    values = stacked[:, 0]
    if run.initial_loss is None and run.pending_first_step == 1:
        run.initial_loss = float(values[0])
    initial_loss = run.initial_loss
    exploded = torch.zeros_like(values, dtype=torch.bool)
    if config.divergence_factor is not None and initial_loss is not None and 0 < initial_loss < math.inf:
        exploded = values > config.divergence_factor * initial_loss
    bad = (~torch.isfinite(values) | exploded).nonzero()
    if len(bad):
        bad_step, bad_loss = run.pending_first_step + int(bad[0]), float(values[bad[0]])
        why = f" (above {config.divergence_factor:g} times the first step's {initial_loss:.4g})" if exploded[bad[0]] else ""
        if config.on_divergence == "stop":
            run.diverged = (bad_step, f"{bad_loss}{why}")
        else:
            kept = (
                f"; the last good checkpoint (step {run.last_good_checkpoint}) is kept at {run.checkpoint_path}"
                if run.last_good_checkpoint
                else ""
            )
            key_root = config.params_key or config.name
            raise NonFiniteLossError(
                f"{config.name}: the loss became {bad_loss}{why} at step {bad_step}{kept}: "
                f"lower {key_root}.lr or set {key_root}.grad_clip"
            )
    run.pending_losses = []
    run.pending_first_step = run.step + 1
    means = stacked.mean(0).tolist()
    return {"train_loss": means[0], **{f"train_{term}": value for term, value in zip(run.term_names, means[1:], strict=True)}}


def _evaluate(run: _Run, evaluate: EvaluateFn | None) -> dict[str, float]:
    """validation_<metric> of evaluate(model) in eval mode, on the main process only ({} elsewhere or without evaluate)."""
    if evaluate is None or not run.is_main:
        return {}
    evaluated = run.evaluated_model
    evaluated.eval()
    with torch.no_grad(), autocast_context(run.device, run.config.precision):
        metrics = {f"{VALIDATION_PREFIX}{k}": float(v) for k, v in evaluate(evaluated).items()}
    run.model.train()
    return metrics


def _validation_metrics(record: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in record.items() if k.startswith(VALIDATION_PREFIX)}


def _record(run: _Run, evaluate: EvaluateFn | None, is_last: bool) -> dict[str, float]:
    """The history record of this step: mean losses, rate, validation metrics when due, seconds; appended to history."""
    record: dict[str, float] = {"step": run.step, **_flush_losses(run)}
    now = time.perf_counter()
    record["steps_per_sec"] = (run.step - run.window_start_step) / max(now - run.window_start, 1e-9)
    run.train_seconds += now - run.window_start
    due = run.diverged is None and (run.step % run.config.eval_every == 0 or is_last)
    # Diverged weights are measured only by a run that diverged before its first evaluation, so that its
    # metric names match its siblings'; their values never become the run's final metrics.
    if due or (run.diverged is not None and not last_validation(run.history)):
        record.update(_evaluate(run, evaluate))
    record["elapsed_s"] = run.elapsed_before + now - run.start
    record["train_elapsed_s"] = run.train_seconds
    if run.diverged is not None:
        record["diverged_step"] = run.diverged[0]
    run.history.append(record)
    return record


def _report(run: _Run, record: dict[str, float], log_metrics: MetricsCallback | None) -> None:
    """The record to the metrics callback (MLflow) and as a progress line, on the main process."""
    if run.is_main:
        if log_metrics is not None:
            log_metrics(_logged(record), run.step)
        _log_progress(run.config.name, record, run.config.max_steps)


def _logged(record: dict[str, float]) -> dict[str, float]:
    """What the metrics callback receives of a history record (its step goes as the step)."""
    return {k: v for k, v in record.items() if k != "step"}


def _stops_here(run: _Run, record: dict[str, float]) -> bool:
    """Whether the run ends at this record (a diverged loss, or the validation target reached); sets why and its metrics."""
    config = run.config
    if run.diverged is not None:  # every rank sees the same mean loss, so every rank stops here
        step, loss = run.diverged
        run.stop_reason = f"diverged: the loss became {loss} at step {step}"
        # The last evaluation before the loss diverged; NaN under the same names when there was none.
        run.final_metrics = last_validation(run.history[:-1]) or {k: math.nan for k in last_validation(run.history)}
        logger.warning("%s %s; on_divergence is stop, so training ends here", config.name, run.stop_reason)
        return True
    target_key = f"{VALIDATION_PREFIX}{config.target_metric}"
    reached = config.target is not None and target_key in record and record[target_key] <= config.target
    if distributed.any_rank(reached, run.device):  # rank 0 evaluates; every rank stops at the same step
        run.stop_reason = f"{target_key} {record.get(target_key, float('nan')):.4g} <= target {config.target:g}"
        run.final_metrics = _validation_metrics(record)
        return True
    return False


def _checkpoint(run: _Run) -> None:
    """Write everything an exact resume needs; every rank sends its RNG state, the main process writes."""
    rng_states = distributed.all_gather_objects(rng_state(run.device))
    if run.is_main:
        elapsed = run.elapsed_before + time.perf_counter() - run.start
        state = checkpoint_state(
            run.fingerprint,
            run.step,
            run.model,
            run.ema_model,
            run.optimizer,
            run.sampler,
            rng_states,
            run.history,
            elapsed,
            run.snapshots,
            run.initial_loss,
            run.level_snapshots,
        )
        save_checkpoint(run.checkpoint_path, state)
    run.last_good_checkpoint = run.step


def _finish(run: _Run) -> TrainResult:
    """The result; with a checkpoint_path the main process replaces the checkpoint by the finished one, for a re-run."""
    seconds = run.elapsed_before + time.perf_counter() - run.start
    if run.is_main:
        logger.info("%s finished at step %d in %.1f s (%s)", run.config.name, run.step, seconds, run.stop_reason)
    result = TrainResult(
        model=run.evaluated_model.eval().cpu(),
        history=run.history,
        steps=run.step,
        seconds=seconds,
        stop_reason=run.stop_reason,
        final_metrics=run.final_metrics,
        snapshots=run.snapshots,
        diverged_step=run.diverged[0] if run.diverged is not None else None,
        level_snapshots=run.level_snapshots,
    )
    if run.checkpoint_path is not None and run.is_main:
        save_checkpoint(run.checkpoint_path, finished_checkpoint_state(run.finished_fingerprint, result))
    return result


def train(
    model: nn.Module,
    loss_fn: LossFn,
    data: Sequence[Tensor],
    config: TrainConfig,
    evaluate: EvaluateFn | None = None,
    log_metrics: MetricsCallback | None = None,
    on_step_end: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train `model` on in-memory tensors until max_steps or the validation target.

    data: tensors sharing their first dimension (N, ...); each step draws a
    batch of indices and calls loss_fn(model, batch) -> scalar loss.
    evaluate(model) -> {metric: value} measures the validation split every eval_every steps in eval mode
    (on the moving-average weights when config.ema_decay is set; those are returned too); its metrics are
    recorded as validation_<metric> and config.target applies to validation_<config.target_metric>.
    log_metrics(metrics, step) receives losses, validation metrics and rate.
    With config.checkpoint_path, a finished training leaves its result there; called again with the same
    finished_fingerprint (config.reuse_finished), train returns it without a step and replays its history to log_metrics.
    """
    sizes = {len(t) for t in data}
    if len(sizes) != 1:
        raise ValueError(f"training tensors must share their first dimension, got sizes {sorted(sizes)}")
    fingerprint = fingerprint_parts(config, model, loss_fn, data)  # on the CPU, before anything moves to a device
    finished = finished_fingerprint(fingerprint, config, evaluate, resolve_device(config.device))
    checkpoint = _read_checkpoint(config)
    reused = reused_training(model, config, checkpoint, finished, log_metrics)
    if reused is not None:
        return reused
    if config.world_size > 1 and distributed.world_size() == 1:
        del checkpoint  # the processes read it themselves: no copy of it stays in memory while they train
        return _train_spawned(model, loss_fn, data, config, evaluate, log_metrics)
    run = _set_up(model, data, config, fingerprint, finished)
    _resume(run, checkpoint)
    _start_clocks(run)
    run.model.train()
    while run.step < config.max_steps:
        _take_step(run, loss_fn)
        if on_step_end is not None:
            on_step_end(run.step)
        is_last = run.step == config.max_steps
        # A record at every log, evaluation and checkpoint step (checkpoint steps only when there is a file to write).
        checkpoint_due = run.checkpoint_path is not None and run.step % config.checkpoint_every == 0
        if not (run.step % config.log_every == 0 or run.step % config.eval_every == 0 or checkpoint_due or is_last):
            continue
        record = _record(run, evaluate, is_last)
        _snapshot_levels(run, record)
        _report(run, record, log_metrics)
        if _stops_here(run, record):
            break
        if is_last:
            run.final_metrics = _validation_metrics(record)
        if checkpoint_due and not is_last:
            _checkpoint(run)
        run.window_start, run.window_start_step = time.perf_counter(), run.step  # the rate counts training steps only
    return _finish(run)


def _train_in_process_group(model, loss_fn, data, config, evaluate=None, log_metrics=None) -> dict[str, Any]:
    """What every launched rank runs: the ordinary loop (it sees the process group), returning plain values.

    evaluate and log_metrics reach rank 0 only (distributed.launch), so no other process measures or logs.
    """
    # The head machine's ranks receive the parent's CPU weights in one shared-memory storage: without a private copy,
    # on the CPU every rank's optimiser would update the same tensors and each step would be applied world times.
    model = copy.deepcopy(model)
    if distributed.restarts() and distributed.is_main_process():
        logger.warning(
            "%s: torch's elastic agent restarted the processes (restart %d of at most %d): %s",
            config.name,
            distributed.restarts(),
            config.max_restarts,
            "resuming from the last checkpoint" if config.checkpoint_path else "starting over, since no checkpoint_path is set",
        )
        if log_metrics is not None:
            log_metrics({"restarts": distributed.restarts()}, 0)
    if config.nodes > 1 and config.checkpoint_path:
        _check_checkpoint_folder_is_shared(config)
    result = train(model, loss_fn, data, config, evaluate, log_metrics)
    return {
        "model": result.model.state_dict(),
        "history": result.history,
        "steps": result.steps,
        "seconds": result.seconds,
        "stop_reason": result.stop_reason,
        "final_metrics": result.final_metrics,
        "snapshots": result.snapshots,
        "diverged_step": result.diverged_step,
        "level_snapshots": result.level_snapshots,
    }


def _check_checkpoint_folder_is_shared(config: TrainConfig) -> None:
    """UserError on every rank unless every machine sees the file rank 0 writes in the checkpoint folder.

    Every rank reads the checkpoint on resume: a machine that cannot see it would start over while the others
    resume, so this is found out at the start of the stage rather than after the first restart.
    """
    folder = Path(config.checkpoint_path).parent
    marker = folder / f".shared-check-{distributed.all_gather_objects(os.getpid())[0]}"
    if distributed.is_main_process():
        folder.mkdir(parents=True, exist_ok=True)
        marker.touch()
    distributed.all_gather_objects(None)  # the marker exists before anyone looks
    blind = [rank for rank, seen in enumerate(distributed.all_gather_objects(marker.exists())) if not seen]
    if distributed.is_main_process():
        marker.unlink()
    if blind:
        key_root = config.params_key or config.name
        raise UserError(
            f"{config.name}: the checkpoint folder {folder} is not shared by every machine (rank(s) {blind} cannot see "
            f"a file rank 0 wrote there): set {key_root}.checkpoint_path to the same path on a filesystem all machines mount"
        )


def _train_spawned(model, loss_fn, data, config, evaluate, log_metrics) -> TrainResult:
    """Run the loop in config.world_size processes on config.nodes machines under DDP; rank 0's model comes back into `model`."""
    logger.info(
        "%s: training on %d processes%s (DDP, %s)",
        config.name,
        config.world_size,
        f" over {config.nodes} machines, rendezvous at {config.rendezvous}" if config.nodes > 1 else "",
        distributed.resolve_backend(config.backend),
    )
    if config.nodes > 1 and config.checkpoint_path:  # the other machines' processes run elsewhere: no relative path
        config = replace(config, checkpoint_path=str(Path(config.checkpoint_path).resolve()))
    plan = distributed.Launch(
        name=config.name,
        world_size=config.world_size,
        nodes=config.nodes,
        backend=config.backend,
        rendezvous=config.rendezvous,
        max_restarts=config.max_restarts,
        rendezvous_timeout=config.rendezvous_timeout,
        key_root=config.params_key or config.name,
    )
    payload = distributed.launch(
        plan, _train_in_process_group, model.cpu(), loss_fn, list(data), config, evaluate=evaluate, log_metrics=log_metrics
    )
    model.load_state_dict(payload.pop("model"))
    return TrainResult(model.eval(), **payload)
