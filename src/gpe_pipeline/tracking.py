"""MLflow logging for the training nodes: the metrics callback the core training loop calls."""

from __future__ import annotations

import math

import mlflow

from gpe_pipeline.core.training import MetricsCallback, TrainResult


def log_metrics(prefix: str, metrics: dict[str, float], step: int | None = None) -> None:
    """Log finite `{prefix}/{name}` metrics to the active MLflow run; nothing happens without one."""
    if mlflow.active_run() is None:
        return
    mlflow.log_metrics({f"{prefix}/{k}": float(v) for k, v in metrics.items() if math.isfinite(v)}, step=step)


def mlflow_metrics_logger(prefix: str) -> MetricsCallback:
    """The training loop's metrics callback, logging under `prefix`."""
    return lambda metrics, step: log_metrics(prefix, metrics, step)


def log_training_summary(prefix: str, result: TrainResult) -> None:
    """Final step count, wall-clock and held-out metrics of a trainer, as MLflow metrics and a tag."""
    if mlflow.active_run() is None:
        return
    summary = {
        "steps": result.steps,
        "train_seconds": result.seconds,
        **{f"final_{k}": v for k, v in result.final_metrics.items()},
    }
    mlflow.log_metrics({f"{prefix}/{k}": float(v) for k, v in summary.items()})
    mlflow.set_tag(f"{prefix}.stop_reason", result.stop_reason)


def train_and_log(
    section: str,
    model,
    loss_fn,
    data,
    training_params: dict,
    evaluate=None,
    target_metric: str | None = None,
    min_batch_size: int = 1,
):
    """Run the core training loop with MLflow logging; returns the trained model and its history table.

    section: the parameter section ("train_encoder"), used in error messages,
    progress lines, checkpoint fingerprints and as the MLflow metric prefix.
    """
    import pandas as pd

    from gpe_pipeline.core.training import TrainConfig, train

    config = TrainConfig(
        name=section,
        params_key=f"{section}.training",
        target_metric=target_metric,
        min_batch_size=min_batch_size,
        **training_params,
    )
    result = train(model, loss_fn, data, config, evaluate=evaluate, log_metrics=mlflow_metrics_logger(section))
    log_training_summary(section, result)
    return result.model, pd.DataFrame(result.history)
