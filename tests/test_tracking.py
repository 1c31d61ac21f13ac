"""MLflow logging from nodes: metric names and values as logged, and a paused block (a learning-rate probe's trainings) that logs nothing."""

from __future__ import annotations

import math
from types import SimpleNamespace

import mlflow
import pytest
import torch
from torch import nn

import gpe_pipeline.tracking as tracking
from gpe_pipeline.tracking import MlflowMetricsLogger, log_metrics, mlflow_logging_paused, train_and_log

TRAINING = {"max_steps": 4, "batch_size": 4, "lr": 1e-2, "log_every": 2, "eval_every": 2, "checkpoint_path": None}


def mse(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    x, y = batch
    return (model(x) - y).square().mean()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating one takes seconds)."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")
    yield
    mlflow.set_tracking_uri(None)


@pytest.fixture
def run(store):
    with mlflow.start_run() as active:
        yield active


def logged(run_id: str) -> tuple[set[str], set[str]]:
    """The metric names and the tags (without MLflow's own) of a run."""
    data = mlflow.MlflowClient().get_run(run_id).data
    return set(data.metrics), {tag for tag in data.tags if not tag.startswith("mlflow.")}


def train_once() -> None:
    torch.manual_seed(0)
    data = [torch.randn(8, 3), torch.randn(8, 1)]
    train_and_log("probe_stage", nn.Linear(3, 1), mse, data, TRAINING, evaluate=lambda model: {"mse": 1.0}, target_metric="mse")


def test_a_paused_training_logs_no_metric_and_no_tag_into_the_active_run(run):
    with mlflow_logging_paused():
        train_once()
        log_metrics("probe_stage", {"extra": 1.0})
    assert logged(run.info.run_id) == (set(), set())
    train_once()  # the pause ended with the block: the same call now logs
    metrics, tags = logged(run.info.run_id)
    assert {"probe_stage/train_loss", "probe_stage/validation_mse", "probe_stage/train_seconds"} <= metrics
    assert tags == {"probe_stage.stop_reason"}


def test_a_logger_made_before_the_pause_keeps_logging_and_the_pause_ends_on_error(run):
    before = MlflowMetricsLogger("outer")
    with pytest.raises(RuntimeError), mlflow_logging_paused():
        before({"kept": 1.0})
        raise RuntimeError("a failed probe")
    MlflowMetricsLogger("after")({"logged": 2.0})
    assert logged(run.info.run_id)[0] == {"outer/kept", "after/logged"}


def test_non_finite_metrics_are_logged_so_a_diverged_run_keeps_its_metric_names(monkeypatch):
    logged = []

    class Client:
        def __init__(self, uri):
            pass

        def log_batch(self, run_id, metrics):
            logged.extend(metrics)

    monkeypatch.setattr(tracking.mlflow, "active_run", lambda: SimpleNamespace(info=SimpleNamespace(run_id="run")))
    monkeypatch.setattr(tracking, "MlflowClient", Client)
    MlflowMetricsLogger("train_encoder", only={"validation_gme", "train_loss"})(
        {"validation_gme": math.nan, "train_loss": math.inf, "steps_per_sec": 1.0}, step=5
    )
    values = {metric.key: metric.value for metric in logged}
    assert set(values) == {"train_encoder/validation_gme", "train_encoder/train_loss"}
    assert math.isnan(values["train_encoder/validation_gme"]) and values["train_encoder/train_loss"] == math.inf


def test_a_whole_history_is_logged_in_requests_within_mlflows_batch_limit(run):
    records = [({"train_loss": float(step), "validation_mse": 1.0 / step}, step) for step in range(1, 701)]  # 1,400 values
    MlflowMetricsLogger("train_decoder").log_records(records)
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run.info.run_id, "train_decoder/train_loss")
    assert sorted((m.step, m.value) for m in history) == [(step, float(step)) for step in range(1, 701)]
    assert len(client.get_metric_history(run.info.run_id, "train_decoder/validation_mse")) == 700
