"""The compare pipeline: six variants of the same stages in one `kedro run`, one MLflow child run per variant."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from gpe_pipeline.pipelines.compare.pipeline import VARIANTS

from .conftest import kedro, make_project_copy, run_until_checkpoint


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    """A project copy (a git checkout, so runs record a commit) after one tiny `kedro run --pipeline=compare`."""
    project = make_project_copy(tmp_path_factory.mktemp("compare"))
    for command in (
        ["init", "-q"],
        ["add", "conf", "pyproject.toml"],
        ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *command], cwd=project, check=True, capture_output=True)
    kedro(project, "run", "--env", "test", "--pipeline=compare", timeout=900)
    return project


def runs(project: Path) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["gpe_pipeline"])


def test_compare_writes_the_summary_and_its_figures(compared):
    folder = compared / "data" / "08_reporting" / "compare"
    table = pd.read_csv(folder / "summary.csv")
    assert list(table["variant"]) == list(VARIANTS)
    assert list(table["method"]) == ["gpe", "vae", "vae", "ae", "vae+mds", "ae+mds"]
    for column in ("encoder_s", "decoder_s", "flow_s", "recon_mse", "gme_heldout", "bilipschitz_p95", "local_distortion"):
        assert table[column].notna().all(), column
    assert (table["fd_classifier_floor"] > 0).all() and "fd_pixel_gen" in table
    assert (table.set_index("variant").loc[["vae", "ae"], "decoder_steps"] == 0).all(), "baselines keep their joint decoder"
    assert table.set_index("variant").loc["gpe", "decoder_steps"] > 0
    assert "| vae_mds | vae+mds |" in (folder / "summary.md").read_text()
    assert {p.name for p in (folder / "figures").iterdir()} == {"reconstruction_vs_seconds.png", "samples.png", "latents.png"}


def test_each_variant_keeps_its_own_files(compared):
    for variant in VARIANTS:
        for entry in ("06_models/{}/encoder.pt", "06_models/{}/decoder.pt", "08_reporting/{}/evaluation_metrics.json"):
            assert (compared / "data" / entry.format(f"compare.{variant}")).exists()
    metrics = json.loads((compared / "data" / "08_reporting" / "compare.vae" / "evaluation_metrics.json").read_text())
    assert metrics["recon_mse"] > 0


def test_mlflow_holds_one_parent_and_one_child_per_variant_with_identical_metric_names(compared):
    table = runs(compared)
    parents = table[table["tags.mlflow.parentRunId"].isna()]
    children = table[table["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 1 and len(children) == len(VARIANTS)
    parent = parents.iloc[0]
    assert (children["tags.mlflow.parentRunId"] == parent.run_id).all()
    assert sorted(children["tags.variant"]) == sorted(VARIANTS)
    assert set(children["tags.dataset"]) == {"digits"} and (children["status"] == "FINISHED").all()
    assert dict(zip(children["tags.variant"], children["tags.method"], strict=True))["ae_mds"] == "ae+mds"
    metric_sets = {
        frozenset(c for c in table.columns if c.startswith("metrics.") and row[c] == row[c]) for _, row in children.iterrows()
    }
    assert len(metric_sets) == 1, "every child has the same metric names"
    names = next(iter(metric_sets))
    assert {"metrics.train_decoder/validation_mse", "metrics.evaluate/recon_mse", "metrics.train_encoder/validation_gme"} <= names
    param_sets = {
        frozenset(c for c in table.columns if c.startswith("params.") and isinstance(row[c], str))
        for _, row in children.iterrows()
    }
    assert len(param_sets) == 1, "every child holds its merged parameters under the same keys"
    checkpoints = set(children["params.train_encoder.training.checkpoint_path"])
    assert checkpoints == {f"data/06_models/checkpoints/compare.{variant}/encoder.pt" for variant in VARIANTS}
    betas = dict(zip(children["tags.variant"], children["params.train_encoder.beta"], strict=True))
    assert betas["vae"] == "0.1" and betas["beta_vae"] == "1.0" and betas["ae"] == "0.0"
    client = mlflow.MlflowClient()
    for run_id in children.run_id:
        assert {a.path for a in client.list_artifacts(run_id, "models")} == {
            "models/encoder.pt",
            "models/decoder.pt",
            "models/flow.pt",
        }
        assert any(a.path == "figures" for a in client.list_artifacts(run_id))
    assert {a.path for a in client.list_artifacts(parent.run_id, "compare")} >= {"compare/summary.csv", "compare/summary.md"}


def test_runs_explain_themselves(compared):
    table = runs(compared)
    parent = table[table["tags.mlflow.parentRunId"].isna()].iloc[0]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=compared, capture_output=True, text=True).stdout.strip()
    assert parent["tags.mlflow.source.git.commit"] == commit and parent["tags.git.dirty"] == "false"
    assert parent["tags.mlflow.runName"] == "compare · digits" and parent["tags.dataset"] == "digits"
    assert parent["tags.kedro_command"] == "kedro run --env test --pipeline=compare"
    assert parent["tags.runner"] == "SequentialRunner"
    used = [c for c in table.columns if c.startswith("params.") and isinstance(parent[c], str)]
    assert "params.train_encoder.model_options.mlp.hidden" in used
    assert not [c for c in used if ".model_options.conv" in c or c.startswith("params.ingest.gmm")], "unused parameters"
    experiment = mlflow.MlflowClient().get_experiment_by_name("gpe_pipeline")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_later_run_names_the_run_that_produced_its_inputs(compared):
    before = set(runs(compared).run_id)
    # One stage of one variant (the parameter layer gives it its sections without any node of its own).
    kedro(compared, "run", "--env", "test", "--pipeline=compare", "--nodes", "compare.ae.train_flow")
    table = runs(compared)
    new = table[~table.run_id.isin(before) & table["tags.mlflow.parentRunId"].isna()].iloc[0]
    producer = table[table["tags.variant"] == "ae"].sort_values("start_time").iloc[0].run_id
    assert new["tags.upstream.compare.ae.train_latents"] == producer
    assert producer in new["tags.upstream_runs"].split(",")


def test_one_interrupted_variant_resumes_alone(compared):
    others = {v: (compared / "data" / "06_models" / f"compare.{v}" / "decoder.pt").read_bytes() for v in VARIANTS if v != "vae"}
    checkpoint = compared / "data" / "06_models" / "checkpoints" / "compare.vae" / "encoder.pt"
    # The joint trainer runs on the decoder stage's budget (train_decoder.training).
    long_run = "compare.vae.train_decoder.training.max_steps=1000000,compare.vae.train_decoder.training.checkpoint_every=25"
    args = ["run", "--env", "test", "--pipeline=compare", "--namespaces", "compare.vae", "--params", long_run]
    step = run_until_checkpoint(compared, args, checkpoint, 50)
    finish = f"compare.vae.train_decoder.training.max_steps={step + 10},compare.vae.train_decoder.training.checkpoint_every=25"
    result = kedro(compared, "run", "--env", "test", "--pipeline=compare", "--namespaces", "compare.vae", "--params", finish)
    output = " ".join(result.output.split())
    assert f"resuming from checkpoint data/06_models/checkpoints/compare.vae/encoder.pt at step {step}" in output
    assert output.count("resuming from checkpoint") == 1
    assert {v: (compared / "data" / "06_models" / f"compare.{v}" / "decoder.pt").read_bytes() for v in others} == others


@pytest.mark.parametrize(
    "params, message",
    [
        ("compare.vea.train_encoder.beta=0.2", "compare.vea is not a variant of the compare pipeline"),
        ("compare.vae.train_encoder.beta=-1", "train_encoder.beta must be a number >= 0"),
        ("compare.vae_mds.train_encoder.mds_weight=-0.5", "train_encoder.mds_weight must be a number >= 0"),
        ("compare.vae.train_encoder.betta=0.2", "compare.vae.train_encoder.betta overrides a key the stage does not have"),
    ],
)
def test_bad_variant_parameters_fail_before_any_node(compared, params, message):
    result = kedro(compared, "run", "--env", "test", "--pipeline=compare", "--params", params, check=False)
    assert result.returncode != 0
    assert message in " ".join(result.output.split())
    assert "Running node" not in result.output
