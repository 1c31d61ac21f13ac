"""The DAG builds in kedro-viz, and the notebook runs against a finished tiny run."""

from __future__ import annotations

import json

import nbformat
from nbclient import NotebookClient

from .conftest import PIPELINE_NODES, PROJECT_ROOT, kedro, make_project_copy


def test_kedro_viz_static_build_holds_the_whole_dag(tmp_path):
    project = make_project_copy(tmp_path / "project")
    kedro(project, "viz", "build")
    main = json.loads((project / "build" / "api" / "main").read_text())
    tasks = {n["name"] for n in main["nodes"] if n["type"] == "task"}
    assert tasks == PIPELINE_NODES
    layers = {n["name"]: n.get("layer") for n in main["nodes"] if n["type"] == "data"}
    assert (
        layers["encoder"] == "models" and layers["train_latents"] == "model_input" and layers["evaluation_figures"] == "reporting"
    )
    ids = {n["id"]: n["name"] for n in main["nodes"]}
    edges = {(ids[e["source"]], ids[e["target"]]) for e in main["edges"]}
    assert ("train_latents", "train_decoder") in edges and ("encoder", "train_decoder") not in edges, (
        "the decoder never sees the encoder"
    )
    assert (project / "build" / "api" / "pipelines" / "gpe_full").exists()


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
