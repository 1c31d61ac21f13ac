"""The DAG builds in kedro-viz, and the notebook runs against a finished tiny run."""

from __future__ import annotations

import json

import nbformat
from nbclient import NotebookClient

from gpe_pipeline.pipelines.compare.pipeline import VARIANTS
from gpe_pipeline.pipelines.paper_report.pipeline import EXPERIMENTS

from .conftest import PIPELINE_NODES, PROJECT_ROOT, kedro, make_project_copy

# The stage (pipeline) that tags each node, so kedro-viz's Tags filter shows one stage in one click.
NODE_STAGES = {
    "ingest_dataset": "ingest",
    "train_encoder": "train_encoder",
    "cache_latents": "cache_latents",
    "train_decoder": "train_decoder",
    "train_flow": "train_flow",
    **{
        node: "evaluate"
        for node in PIPELINE_NODES - {"ingest_dataset", "train_encoder", "cache_latents", "train_decoder", "train_flow"}
    },
}
# The catalog's layers in the order data flows through them (conf/base/catalog.yml says why).
LAYERS = ["primary", "calibration", "encoder_model", "model_input", "models", "model_output", "reporting"]


def test_kedro_viz_static_build_holds_the_whole_dag_in_layers_and_tagged_stages(tmp_path):
    project = make_project_copy(tmp_path / "project")
    result = kedro(project, "viz", "build")
    assert "circular dependency" not in result.output, "a layer cycle switches every kedro-viz layer off"
    main = json.loads((project / "build" / "api" / "main").read_text())
    tasks = {n["name"]: n for n in main["nodes"] if n["type"] == "task"}
    assert set(tasks) == PIPELINE_NODES
    assert main["layers"] == LAYERS
    layers = {n["name"]: n.get("layer") for n in main["nodes"] if n["type"] == "data"}
    assert layers["encoder"] == "encoder_model" and layers["train_latents"] == "model_input" and layers["decoder"] == "models"
    assert layers["evaluation_figures"] == "reporting"
    # Every registered pipeline's tags: the stages, E5's node that applies its probed rates, each summary's pipeline.
    summaries = {"runtime_parameters", "compare", "paper_report", *EXPERIMENTS}
    assert {tag["id"] for tag in main["tags"]} == {*NODE_STAGES.values(), *summaries}
    assert {name: task["tags"] for name, task in tasks.items()} == {name: [stage] for name, stage in NODE_STAGES.items()}
    ids = {n["id"]: n["name"] for n in main["nodes"]}
    edges = {(ids[e["source"]], ids[e["target"]]) for e in main["edges"]}
    assert ("train_latents", "train_decoder") in edges and ("encoder", "train_decoder") not in edges, (
        "the decoder never sees the encoder"
    )
    assert (project / "build" / "api" / "pipelines" / "gpe_full").exists()
    compare = json.loads((project / "build" / "api" / "pipelines" / "compare").read_text())
    groups = compare["modular_pipelines"]
    ids = {n["id"]: n["name"] for n in compare["nodes"]}
    for variant in VARIANTS:  # each variant is a collapsible group holding its own copy of every stage
        names = {ids.get(child["id"]) for child in groups[f"compare.{variant}"]["children"]}
        assert {"train_encoder", "train_decoder", f"compare.{variant}.encoder", f"compare.{variant}.train_latents"} <= names
    assert {n["layer"] for n in compare["nodes"] if n["name"] == "compare.vae.encoder"} == {"encoder_model"}


def test_notebook_executes_on_the_last_run(trained_project, monkeypatch):
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "inspect_run.ipynb", as_version=4)
    monkeypatch.setenv("GPE_PROJECT_PATH", str(trained_project))
    monkeypatch.setenv("GPE_KEDRO_ENV", "test")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(trained_project)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "x its real-vs-real floor" in text and "held-out GME on" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    assert any("text/html" in o.get("data", {}) and "fd_classifier_gen" in o["data"]["text/html"] for o in outputs)
