"""MLflow logging of the training metrics."""

import math
from types import SimpleNamespace

import gpe_pipeline.tracking as tracking
from gpe_pipeline.tracking import MlflowMetricsLogger


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
