"""Real `kedro run`s of the project on the tiny test configuration."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch

from gpe_pipeline.core.training import is_finished, load_checkpoint

from .conftest import kedro, make_project_copy, run_until_checkpoint

STAGES = ["ingest", "train_encoder", "cache_latents", "train_decoder", "train_flow", "evaluate"]
METRICS = [
    "recon_mse",
    "gme_heldout",
    "bilipschitz_p95",
    "local_distortion",
    *(
        f"fd_{features}_{pair}{end}"
        for features in ("pixel", "classifier")
        for pair in ("floor", "gen", "recon")
        for end in ("", "_ci_low", "_ci_high")
    ),
    *(f"kd_{features}_{pair}_std" for features in ("pixel", "classifier") for pair in ("floor", "gen", "recon")),
]
KERNEL_DISTANCES = [f"kd_{features}_{pair}" for features in ("pixel", "classifier") for pair in ("floor", "gen", "recon")]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs(project: Path) -> dict[str, str]:
    files = sorted((project / "data").rglob("*.pt")) + sorted((project / "data").rglob("*.json"))
    return {str(p.relative_to(project)): digest(p) for p in files if "checkpoints" not in p.parts}


def test_registry_lists_every_stage(trained_project):
    listed = kedro(trained_project, "registry", "list").output
    for name in [*STAGES, "gpe_full"]:
        assert f"- {name}" in listed


def test_full_run_writes_every_catalog_entry(trained_project):
    data = trained_project / "data"
    metadata = json.loads((data / "03_primary" / "dataset_metadata.json").read_text())
    assert metadata["shape"] == [1, 8, 8] and metadata["num_train"] == 300 and metadata["num_heldout"] == 100
    assert metadata["num_validation"] == 162  # 10% of the 1617 training digits, drawn before max_train
    latents = torch.load(data / "05_model_input" / "train_latents.pt", weights_only=True)
    assert latents.shape == (300, 16)
    stats = torch.load(data / "05_model_input" / "latent_stats.pt", weights_only=True)
    normalised = stats["scale"] * (latents - stats["mean"])
    assert normalised.square().sum(1).mean().item() == pytest.approx(16, rel=1e-4)
    for model in ("encoder", "decoder", "flow", "feature_classifier"):
        assert (data / "06_models" / f"{model}.pt").exists()
    metrics = json.loads((data / "08_reporting" / "evaluation_metrics.json").read_text())
    assert all(isinstance(metrics[name], float) and metrics[name] >= 0 for name in METRICS)
    assert all(isinstance(metrics[name], float) for name in KERNEL_DISTANCES)  # unbiased: may be below 0
    for name in (f"fd_{features}_{pair}" for features in ("pixel", "classifier") for pair in ("floor", "gen", "recon")):
        assert 0 <= metrics[f"{name}_ci_low"] < metrics[f"{name}_ci_high"], f"{name}: an interval, not a point"
    # 100 held-out and 300 train examples, max_points 50: every set has 50 examples, each kernel subset 20 of them.
    assert metrics["frechet_points"] == 50 and metrics["fd_classifier_floor"] > 0 and metrics["kd_pixel_gen_std"] > 0
    assert metrics["fid_status"].startswith(("skipped: pt_inception", "computed"))
    figures = {p.name for p in (data / "08_reporting" / "figures").iterdir()}
    assert figures == {"reconstructions.png", "samples.png", "interpolation.png", "latent_scatter.png", "loss_curves.png"}
    checkpoints = sorted(p.name for p in (data / "06_models" / "checkpoints").iterdir())
    assert checkpoints == ["decoder.pt", "encoder.pt", "feature_classifier.pt", "flow.pt"], "no temporary file is left"
    assert all(is_finished(load_checkpoint(data / "06_models" / "checkpoints" / name)) for name in checkpoints), (
        "each finished stage leaves its finished training for a re-run to reuse"
    )


def test_one_mlflow_run_holds_parameters_histories_and_models(trained_project):
    mlflow.set_tracking_uri(f"sqlite:///{trained_project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["gpe_pipeline"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["params.train_encoder.training.lr"] == "0.001"
    assert run["params.ingest.dataset"] == "digits"
    client = mlflow.MlflowClient()
    for metric in (
        "train_encoder/train_loss",
        "train_encoder/validation_gme",
        "train_decoder/train_loss",
        "train_decoder/validation_mse",
        "train_flow/validation_cfm",
    ):
        history = client.get_metric_history(run.run_id, metric)
        assert len(history) >= 2, metric
    trainer_metrics = [m for m in runs.columns if m.startswith(("metrics.train_", "metrics.feature_classifier/"))]
    assert not [m for m in trainer_metrics if "heldout" in m], "no trainer measures the held-out split"
    assert run["metrics.train_encoder/final_validation_gme"] >= 0
    steps = [m.step for m in client.get_metric_history(run.run_id, "train_encoder/train_loss")]
    assert steps == [20, 30, 40, 60], "logged at log_every (20) and eval_every (30) steps, not every step"
    assert run["metrics.train_encoder/steps_per_sec"] > 0
    assert run["metrics.cache_latents/latent_scale"] > 0
    for trainer in ("train_encoder", "train_decoder", "train_flow", "feature_classifier"):
        assert run[f"metrics.{trainer}/steps"] >= 1 and run[f"metrics.{trainer}/train_seconds"] > 0, trainer
        assert run[f"tags.{trainer}.stop_reason"], trainer
    logged = {m.removeprefix("metrics.evaluate/") for m in runs.columns if m.startswith("metrics.evaluate/")}
    assert logged >= set(METRICS) | set(KERNEL_DISTANCES)
    artifacts = {a.path for a in client.list_artifacts(run.run_id, "models")}
    assert artifacts == {"models/encoder.pt", "models/decoder.pt", "models/flow.pt"}
    figures = {a.path for a in client.list_artifacts(run.run_id, "figures")}
    assert "figures/samples.png" in figures and "figures/loss_curves.png" in figures
    assert {a.path for a in client.list_artifacts(run.run_id, "evaluation")} == {"evaluation/evaluation_metrics.json"}


def test_the_run_ends_with_a_link_to_its_page_in_the_mlflow_ui(trained_project):
    mlflow.set_tracking_uri(f"sqlite:///{trained_project / 'mlflow.db'}")
    run = mlflow.search_runs(experiment_names=["gpe_pipeline"]).iloc[0]
    output = (trained_project / "kedro_run_output.txt").read_text()
    link = f"http://127.0.0.1:5000/#/experiments/{run.experiment_id}/runs/{run.run_id}?workflowType=machine_learning"
    lines = [line for line in output.splitlines() if "MLflow: this run is at" in line]
    assert len(lines) == 1 and link in lines[0], lines
    assert "mlflow ui --backend-store-uri sqlite:///" in lines[0]


def test_the_mlflow_ui_link_uses_a_tracking_server_address():
    from gpe_pipeline.hooks import mlflow_ui_url

    assert mlflow_ui_url("https://mlflow.example.org/", "3", "abc") == (
        "https://mlflow.example.org/#/experiments/3/runs/abc?workflowType=machine_learning"
    )
    assert mlflow_ui_url("sqlite:////tmp/mlflow.db", "1", "r").startswith("http://127.0.0.1:5000/#/experiments/1/runs/r?")


def test_only_evaluate_reads_the_heldout_split(trained_project):
    """Trainers stop early on the validation split; the held-out split reaches evaluate (through cache_latents) only."""
    from gpe_pipeline.pipelines.evaluate import create_pipeline as evaluate_pipeline
    from gpe_pipeline.pipelines.gpe_full import create_pipeline as full_pipeline

    evaluate_nodes = {node.name for node in evaluate_pipeline().nodes}
    readers = {node.name for node in full_pipeline().nodes if {"heldout_data", "heldout_latents"} & set(node.inputs)}
    assert readers - evaluate_nodes == {"cache_latents"}  # which only encodes it, for evaluate
    cache = next(node for node in full_pipeline().nodes if node.name == "cache_latents")
    assert "heldout_latents" in cache.outputs and "validation_latents" in cache.outputs
    for node in full_pipeline().nodes:
        if node.name in ("train_encoder", "train_decoder", "train_flow"):
            assert {"validation_data", "validation_latents"} & set(node.inputs), node.name

    data = trained_project / "data"
    train = torch.load(data / "03_primary" / "train_data.pt", weights_only=True)["x"]
    validation = torch.load(data / "03_primary" / "validation_data.pt", weights_only=True)
    heldout = torch.load(data / "03_primary" / "heldout_data.pt", weights_only=True)["x"]
    assert validation["x"].shape == (162, 1, 8, 8) and validation["labels"].shape == (162,)
    rows = [{tuple(image.flatten().tolist()) for image in split} for split in (train, validation["x"])]
    # digits holds a few duplicate images, so count rather than require an empty intersection
    assert len(rows[0] & rows[1]) <= 2
    validation_latents = torch.load(data / "05_model_input" / "validation_latents.pt", weights_only=True)
    assert validation_latents.shape == (162, 16) and len(heldout) == 100
    history = pd.read_csv(data / "08_reporting" / "decoder_history.csv")
    assert "validation_mse" in history.columns and not [c for c in history.columns if "heldout" in c]


def test_a_later_stage_runs_alone_from_the_catalog(trained_project):
    before = digest(trained_project / "data" / "06_models" / "encoder.pt")
    result = kedro(trained_project, "run", "--env", "test", "--pipeline=train_decoder")
    assert "Running node: train_decoder" in result.output
    assert "train_encoder step" not in result.output
    assert digest(trained_project / "data" / "06_models" / "encoder.pt") == before


@pytest.mark.parametrize(
    "params, message",
    [
        # One of each kind end to end (test_validation checks every parameter's message in-process, test_cli the bad
        # learning rate's short error): a bad value, an unknown name, a missing data file.
        ("train_encoder.training.batch_size=1", "train_encoder.training.batch_size must be an integer >= 2 for a pairwise loss"),
        ("ingest.dataset=svhn", "unknown dataset 'svhn'"),
        ("ingest.dataset=mnist", "MNIST file not found: expected data/01_raw/MNIST/raw/train-images-idx3-ubyte"),
    ],
)
def test_bad_input_fails_before_training_and_overwrites_nothing(trained_project, params, message):
    before = outputs(trained_project)
    result = kedro(trained_project, "run", "--env", "test", "--pipeline=gpe_full", "--params", params, check=False)
    assert result.returncode != 0
    assert message in " ".join(result.output.split())
    assert "train_encoder step" not in result.output
    assert outputs(trained_project) == before


def test_interrupted_stage_resumes_from_its_checkpoint(tmp_path):
    project = make_project_copy(tmp_path / "project")
    kedro(project, "run", "--env", "test", "--pipeline=ingest")
    checkpoint = project / "data" / "06_models" / "checkpoints" / "encoder.pt"
    long_run = "train_encoder.training.max_steps=1000000,train_encoder.training.checkpoint_every=25"
    step = run_until_checkpoint(
        project, ["run", "--env", "test", "--pipeline=train_encoder", "--params", long_run], checkpoint, 50
    )
    assert step >= 50
    assert not (project / "data" / "06_models" / "encoder.pt").exists()

    finish = f"train_encoder.training.max_steps={step + 10},train_encoder.training.checkpoint_every=25"
    result = kedro(project, "run", "--env", "test", "--pipeline=train_encoder", "--params", finish)
    output = " ".join(result.output.split())
    assert f"resuming from checkpoint data/06_models/checkpoints/encoder.pt at step {step}" in output
    assert f"train_encoder finished at step {step + 10}" in output
    assert (project / "data" / "06_models" / "encoder.pt").exists()


def write_image_folder(folder: Path, per_class: int = 24) -> None:
    """Two classes of 32x32 RGB images (bright squares left or right) as PNG files."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for label, column in (("left", 4), ("right", 18)):
        (folder / label).mkdir(parents=True)
        for index in range(per_class):
            pixels = (torch.rand(32, 32, 3, generator=generator) * 60).to(torch.uint8)
            top = int(torch.randint(2, 20, (1,), generator=generator))
            pixels[top : top + 10, column : column + 10] = 230
            Image.fromarray(pixels.numpy()).save(folder / label / f"{index:03d}.png")


def test_convolutional_run_on_an_image_folder_keeps_uint8_images(tmp_path):
    project = make_project_copy(tmp_path / "project")
    write_image_folder(project / "data" / "01_raw" / "shapes")
    params = ",".join(
        [
            "ingest.dataset=image_folder",
            "ingest.path=data/01_raw/shapes",
            "ingest.image_size=32",
            "ingest.heldout_fraction=0.25",
            "train_encoder.architecture=conv32",
            "train_decoder.architecture=conv32",
            "train_encoder.augment.hflip=true",
            "train_encoder.augment.crop_scale=0.9",
            "train_encoder.training.batch_size=8",
            "train_decoder.training.batch_size=8",
            "evaluate.classifier.training.batch_size=8",
            "evaluate.max_points=6",
            "evaluate.distortion_points=4",
            "evaluate.neighbours=2",
        ]
        + [
            f"{stage}.model_options.conv32.{key}={value}"
            for stage in ("train_encoder", "train_decoder")
            for key, value in (("width", 4), ("max_channels", 16))
        ]
    )
    result = kedro(project, "run", "--env", "test", "--pipeline=gpe_full", "--params", params)
    assert "train_flow finished" in " ".join(result.output.split())
    train = torch.load(project / "data" / "03_primary" / "train_data.pt", weights_only=True)
    assert train["x"].dtype == torch.uint8 and train["x"].shape[1:] == (3, 32, 32) and set(train["labels"].tolist()) == {0, 1}
    metrics = json.loads((project / "data" / "08_reporting" / "evaluation_metrics.json").read_text())
    assert metrics["frechet_points"] == 6 and metrics["recon_mse"] < 2.0 and "fd_classifier_gen" in metrics
    samples = torch.load(project / "data" / "07_model_output" / "generated_samples.pt", weights_only=True)
    assert samples.dtype == torch.float32 and samples.shape[1:] == (3, 32, 32) and samples.abs().max() <= 1


def test_the_gmm_environment_reconstructs_unbounded_vectors(tmp_path):
    """conf/gmm (a linear decoder output) on a tiny mixture: coordinates beyond +-1 come back with a small error."""
    project = make_project_copy(tmp_path / "project")
    tiny = {
        "ingest.gmm.n_samples": 600,
        "ingest.gmm.dim": 40,
        "train_encoder.model_options.mlp.hidden": "[64]",
        "train_encoder.training.max_steps": 300,
        "train_encoder.training.eval_every": 100,
        "train_decoder.model_options.mlp.hidden": "[64]",
        "train_decoder.training.max_steps": 600,
        "train_decoder.training.eval_every": 100,
        "train_flow.model_options.mlp.hidden": "[32]",
        "train_flow.training.max_steps": 100,
        "evaluate.max_points": 50,
        "evaluate.distortion_points": 20,
        "evaluate.sampling.steps": 4,
        "evaluate.classifier.training.max_steps": 50,
    }
    params = ",".join(f"{key}={value}" for key, value in tiny.items())
    kedro(project, "run", "--env", "gmm", "--pipeline=gpe_full", "--params", params)
    data = project / "data"
    metadata = json.loads((data / "03_primary" / "dataset_metadata.json").read_text())
    assert metadata["dataset"] == "gmm" and metadata["value_range"][1] > 2, "the mixture reaches beyond a tanh's range"
    heldout = torch.load(data / "03_primary" / "heldout_data.pt", weights_only=True)["x"]
    reconstructions = torch.load(data / "07_model_output" / "heldout_reconstructions.pt", weights_only=True)
    assert reconstructions.abs().max() > 1.5
    metrics = json.loads((data / "08_reporting" / "evaluation_metrics.json").read_text())
    variance_per_coordinate = float(heldout.var(0).mean())  # what predicting the mean would cost
    assert math.isfinite(metrics["recon_mse"]) and metrics["recon_mse"] < 0.1 * variance_per_coordinate
