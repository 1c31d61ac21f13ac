"""MLflow logging for the nodes: the training loop's metrics callback, run summaries, one-off metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Iterator
from contextvars import ContextVar
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric
from torch import Tensor, nn

from gpe_pipeline.core.training import EvaluateFn, LossFn, TrainConfig, TrainResult, train

MLFLOW_BATCH_LIMIT = 1000  # metrics per log_batch request (MLflow's limit)
# Logged whatever a logger's `only` list says: events of the run rather than curves to compare (how often torch's
# elastic agent restarted a stage's processes, training.max_restarts).
ALWAYS_LOGGED = frozenset({"restarts"})

# Set inside mlflow_logging_paused(): trainings there are not the run's own (e.g. a learning-rate probe).
_PAUSED: ContextVar[bool] = ContextVar("mlflow_logging_paused", default=False)


@contextlib.contextmanager
def mlflow_logging_paused() -> Iterator[None]:
    """Within it, loggers made here (MlflowMetricsLogger, log_metrics, log_training_summary) log nothing.

    For trainings inside a node whose curves must not mix with the run's own under the same metric names, e.g. a
    learning-rate probe that runs the train_encoder node function in the variant's MLflow run before the real stage.
    A logger made before the pause keeps logging; one made inside stays silent, also in spawned DDP ranks.
    """
    token = _PAUSED.set(True)
    try:
        yield
    finally:
        _PAUSED.reset(token)


class MlflowMetricsLogger:
    """Logs `{prefix}/{name}` metrics to the MLflow run active when it was made; nothing without one.

    Non-finite values are logged too (MLflow keeps NaN; its SQL store writes +-inf as +-max float), so a run whose
    loss diverged keeps the metric names of its siblings, with NaN where its diverged model measured nothing.

    It holds the run id and tracking URI rather than relying on the active run,
    so it pickles into spawned DDP ranks and rank 0 logs into the same run.
    only: log just these names (None: all), so runs of different methods can share one set of metric names;
    ALWAYS_LOGGED's names pass regardless.
    """

    def __init__(self, prefix: str, only: Collection[str] | None = None):
        run = None if _PAUSED.get() else mlflow.active_run()
        self.prefix = prefix
        self.only = None if only is None else frozenset(only)
        self.run_id = run.info.run_id if run is not None else None
        self.tracking_uri = mlflow.get_tracking_uri()

    def __call__(self, metrics: dict[str, float], step: int = 0) -> None:
        self.log_records([(metrics, step)])

    def log_records(self, records: list[tuple[dict[str, float], int]]) -> None:
        """Log many (metrics, step) records at once, in as few requests as MLflow's batch limit allows."""
        if self.run_id is None:
            return
        timestamp = int(time.time() * 1000)
        batch = [
            Metric(f"{self.prefix}/{k}", float(v), timestamp, step)
            for metrics, step in records
            for k, v in metrics.items()
            if self.only is None or k in self.only or k in ALWAYS_LOGGED
        ]
        client = MlflowClient(self.tracking_uri)
        for start in range(0, len(batch), MLFLOW_BATCH_LIMIT):
            client.log_batch(self.run_id, metrics=batch[start : start + MLFLOW_BATCH_LIMIT])


def log_metrics(prefix: str, metrics: dict[str, float], step: int = 0) -> None:
    """Log `{prefix}/{name}` metrics to the active MLflow run; nothing happens without one."""
    MlflowMetricsLogger(prefix)(metrics, step)


def log_training_summary(
    prefix: str,
    steps: int,
    seconds: float,
    final_metrics: dict[str, float],
    stop_reason: str,
    only: Collection[str] | None = None,
) -> None:
    """Final step count, training seconds and final validation metrics of a trainer, as MLflow metrics and a tag."""
    MlflowMetricsLogger(prefix, only)(
        {"steps": steps, "train_seconds": seconds, **{f"final_{k}": v for k, v in final_metrics.items()}}
    )
    if mlflow.active_run() is not None and not _PAUSED.get():
        mlflow.set_tag(f"{prefix}.stop_reason", stop_reason)


def train_and_log(*args: Any, **kwargs: Any) -> tuple[nn.Module, pd.DataFrame]:
    """train_and_log_result, returning the trained model and its history table (what most nodes hand on)."""
    result = train_and_log_result(*args, **kwargs)
    return result.model, pd.DataFrame(result.history)


def train_and_log_result(
    section: str,
    model: nn.Module,
    loss_fn: LossFn,
    data: list[Tensor],
    training_params: dict[str, Any],
    evaluate: EvaluateFn | None = None,
    target_metric: str | None = None,
    min_batch_size: int = 1,
    mlflow_metrics: Collection[str] | None = None,
    params_key: str | None = None,
) -> TrainResult:
    """Run the core training loop with MLflow logging; returns its TrainResult (model, history, snapshots ...).

    loss_fn and evaluate must pickle (module-level functions or functools.partial)
    so that training.world_size > 1 can hand them to spawned processes.

    section: the parameter section ("train_encoder"), used in error messages,
    progress lines, checkpoint fingerprints and as the MLflow metric prefix.
    mlflow_metrics: the metric names (without the prefix) to log; None logs all. The history keeps everything.
    params_key: where training_params live, for error messages (default `<section>.training`).
    """
    config = TrainConfig(
        name=section,
        params_key=params_key or f"{section}.training",
        target_metric=target_metric,
        min_batch_size=min_batch_size,
        **training_params,
    )
    result = train(model, loss_fn, data, config, evaluate=evaluate, log_metrics=MlflowMetricsLogger(section, mlflow_metrics))
    log_training_summary(section, result.steps, result.seconds, result.final_metrics, result.stop_reason, mlflow_metrics)
    return result
