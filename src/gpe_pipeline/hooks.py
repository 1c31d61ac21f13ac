"""Project hooks: parameter checks before the first node, and MLflow runs that explain themselves.

kedro-mlflow opens one MLflow run per `kedro run` (its hooks run before these: plugins register after the
project, and pluggy calls the last registered first). `MlflowRunsHook` then completes that run: the commit, the
dataset, the full command, a readable name, which earlier runs produced its inputs, and only the parameters the
run reads; and it gives every variant namespace (compare.vae, ...) a child run that holds the variant's merged
parameters, its metrics, models and figures.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline
from mlflow import MlflowClient
from mlflow.entities import Param, RunStatus

from gpe_pipeline.machine import describe_machine
from gpe_pipeline.params import architectures_by_path, used_parameters
from gpe_pipeline.pipelines.variant_stages import MERGED_SECTION, PARAMETER_NODE_TAG
from gpe_pipeline.validation import ParameterError, namespace_parameters, validate_run
from gpe_pipeline.variants import STAGE_SECTIONS, method_label

logger = logging.getLogger(__name__)

LINEAGE_FILE = Path("data") / "lineage.json"  # which MLflow run last wrote each persisted catalog entry
# The experiment's kind, for MLflow UIs and tools that read it. MLflow 3.17's UI ignores it and opens every experiment
# in its global GenAI view until the user switches to "Model training" or the URL says workflowType=machine_learning.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store by default
MAX_PARAM_LENGTH = 6000  # MLflow 3's limit on a parameter value


class ValidateParametersHook:
    """Fail a run on a bad parameter before its first node starts, so nothing on disk is overwritten."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        validate_run(catalog.load("parameters"), pipeline)


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}, as kedro-mlflow flattens the parent run's parameters."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def git_state(project: Path) -> dict[str, str]:
    """The commit and whether the working tree differs from it; empty outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"mlflow.source.git.commit": commit, "git.dirty": "true" if dirty else "false"}


def mlflow_ui_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of one run, in the model-training view (a tracking server's own address, else `mlflow ui`'s)."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def command_line() -> str:
    """The command as typed: `kedro run --pipeline=gpe_full --params ...` (the program's name, not its path)."""
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


class MlflowRunsHook:
    """Tags, readable names, lineage, used parameters and one child run per variant namespace."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.children: dict[str, str] = {}  # namespace -> child run id
        # namespace -> its ingest section, for a variant whose parameters depend on a dataset (a learning-rate probe's
        # result): its child's parameters are logged when its parameter node has computed them.
        self.parameters_pending: dict[str, dict[str, Any]] = {}
        self.unsaved_outputs: dict[str, set[str]] = {}  # node name -> outputs not saved yet, while its child is active
        self.saved: dict[str, str] = {}  # persisted dataset -> run id that wrote it
        self.catalog: DataCatalog | None = None
        self.project = Path.cwd()
        self.run_link = ""  # the run's page in the MLflow UI, logged when the run ends

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        self._reset()
        self.catalog = catalog
        self.project = Path(run_params.get("project_path") or Path.cwd())
        parameters = catalog.load("parameters")
        merged = namespace_parameters(parameters, pipeline)
        variants = {namespace: sections for namespace, sections in merged.items() if "train_encoder" in sections}
        self._keep_used_parameters(parameters, merged, catalog, pipeline)
        run = mlflow.active_run()
        if run is None:  # tracking is off for this pipeline
            return
        client = MlflowClient()
        self._mark_experiment(client, run.info.experiment_id)
        self.run_link = mlflow_ui_url(mlflow.get_tracking_uri(), run.info.experiment_id, run.info.run_id)
        dataset = str((parameters.get("ingest") or {}).get("dataset", "unknown"))
        pipelines = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]
        shared_tags = {**git_state(self.project), "dataset": dataset, "kedro_command": command_line()}
        tags = {**shared_tags, "runner": str(run_params.get("runner", "")).split(" object")[0].strip("<").split(".")[-1]}
        tags.update(self._upstream_tags(pipeline))
        if run.info.run_name == "+".join(pipelines):  # kedro-mlflow's default: no name was given in mlflow.yml
            tags["mlflow.runName"] = f"{'+'.join(pipelines)} · {dataset}"
        mlflow.set_tags(tags)
        # Before the run such a variant's parameter node sees None for its dataset inputs (namespace_parameters).
        read_datasets = {
            node.namespace
            for node in pipeline.nodes
            if PARAMETER_NODE_TAG in node.tags and any(not name.startswith("params:") for name in node.inputs)
        }
        for namespace, sections in variants.items():
            ingest = sections.get("ingest") or parameters.get("ingest") or {}  # E1's variants: their experiment's gmm
            child = self._create_child(client, run, namespace, {**sections, "ingest": ingest}, shared_tags)
            self.children[namespace] = child
            if namespace in read_datasets:
                self.parameters_pending[namespace] = ingest
            else:
                self._log_parameters(client, child, {**sections, "ingest": ingest})

    def _mark_experiment(self, client: MlflowClient, experiment_id: str) -> None:
        """An experiment created before conf/base/mlflow.yml set its kind gets the tag too."""
        experiment = client.get_experiment(experiment_id)
        for key, value in EXPERIMENT_KIND.items():
            if experiment.tags.get(key) != value:
                client.set_experiment_tag(experiment_id, key, value)

    def _keep_used_parameters(
        self, parameters: dict[str, Any], merged: dict[str, dict[str, Any]], catalog: DataCatalog, pipeline: Pipeline
    ) -> None:
        """Replace each params:<section> entry by the part the run reads, so only that reaches nodes and MLflow.

        merged: each namespace's merged sections; every architecture and dataset one of them uses keeps its keys.
        Nodes then read the pruned sections: when a variant's overrides name options the pruning left out (options of
        an architecture no variant uses), the variants would no longer merge, so every section is left whole.
        """
        in_use: dict[str, set[str]] = {}
        for sections in merged.values():
            for path, names in architectures_by_path(sections).items():
                in_use.setdefault(path, set()).update(names)
        datasets = {sections["ingest"].get("dataset") for sections in merged.values() if "ingest" in sections}
        pruned = {
            section: used_parameters(section, value, in_use, datasets)
            for section, value in parameters.items()
            if isinstance(value, dict) and catalog.get(f"params:{section}") is not None
        }
        try:
            namespace_parameters({**parameters, **pruned}, pipeline)  # what the variants' parameter nodes will compute
        except ParameterError as err:
            logger.info("keeping every parameter for this run's nodes and MLflow: %s", err)
            return
        for section, value in pruned.items():
            catalog.get(f"params:{section}").save(value)  # a memory dataset: saving into it replaces the value quietly

    def _upstream_tags(self, pipeline: Pipeline) -> dict[str, str]:
        """For each input this run reads but does not produce: the run that wrote it (from data/lineage.json)."""
        lineage = self._read_lineage()
        tags = {
            f"upstream.{name}": lineage[name]
            for name in sorted(pipeline.inputs())
            if not name.startswith("params:") and name != "parameters" and name in lineage
        }
        if tags:
            tags["upstream_runs"] = ",".join(sorted(set(tags.values())))
        return tags

    def _create_child(
        self, client: MlflowClient, parent: Any, namespace: str, sections: dict[str, Any], shared_tags: dict[str, str]
    ) -> str:
        """A child run of the parent for one variant, with its tags (its parameters: _log_parameters)."""
        group, _, variant = namespace.rpartition(".")
        dataset = str(sections["ingest"].get("dataset", shared_tags["dataset"]))
        tags = {
            **shared_tags,
            "dataset": dataset,
            "mlflow.parentRunId": parent.info.run_id,
            "mlflow.runName": f"{variant} · {dataset}",
            "variant": variant,
            "variant_group": group,
            "method": method_label(sections["train_encoder"]),
        }
        return client.create_run(parent.info.experiment_id, tags=tags).info.run_id

    def _log_parameters(self, client: MlflowClient, run_id: str, sections: dict[str, Any]) -> None:
        """A variant's merged, used parameters (its stage sections and ingest) on its child run."""
        used = {section: used_parameters(section, sections[section]) for section in (*STAGE_SECTIONS, "ingest")}
        params = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in flatten(used).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            client.log_batch(run_id, params=params[start : start + 100])

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        """A variant whose parameters waited for a dataset: log them now that its parameter node computed them."""
        ingest = self.parameters_pending.get(node.namespace or "")
        if ingest is None or PARAMETER_NODE_TAG not in node.tags or mlflow.active_run() is None:
            return
        suffix = MERGED_SECTION.format("")
        sections = {name.rsplit(".", 1)[-1].removesuffix(suffix): value for name, value in outputs.items()}
        self._log_parameters(MlflowClient(), self.children[node.namespace], {**sections, "ingest": ingest})
        del self.parameters_pending[node.namespace]

    @hook_impl(trylast=True)
    def before_node_run(self, node: Node, catalog: DataCatalog, inputs: dict[str, Any], is_async: bool) -> None:
        child = self.children.get(node.namespace or "")
        if child is not None and mlflow.active_run() is not None:
            mlflow.start_run(run_id=child, nested=True)
            self.unsaved_outputs[node.name] = set(node.outputs)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Node) -> None:
        run = mlflow.active_run()
        if (
            run is not None
            and self.catalog is not None
            and not str(self.catalog.get_type(dataset_name)).endswith("MemoryDataset")
        ):
            self.saved[dataset_name] = run.info.run_id
        pending = self.unsaved_outputs.get(node.name)
        if pending is not None:
            pending.discard(dataset_name)
            if not pending:  # the node's last output is saved (and uploaded to the child): back to the parent run
                del self.unsaved_outputs[node.name]
                mlflow.end_run()

    @hook_impl
    def on_node_error(self, error: Exception, node: Node, catalog: DataCatalog, inputs: dict[str, Any], is_async: bool) -> None:
        if self.unsaved_outputs.pop(node.name, None) is not None:
            mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        self._finish("FINISHED")
        if self.run_link:
            uri = mlflow.get_tracking_uri()
            serve = "" if self.run_link.startswith(uri.rstrip("/")) else f" (after `mlflow ui --backend-store-uri {uri}`)"
            logger.info("MLflow: this run is at %s%s", self.run_link, serve)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        self._finish("KILLED")

    def _finish(self, status_of_open_children: str) -> None:
        """Close children left open (a failed run's later variants), and record what this run wrote."""
        client = MlflowClient()
        for run_id in self.children.values():
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, status_of_open_children)
        if self.saved:
            lineage = {**self._read_lineage(), **self.saved}
            path = self.project / LINEAGE_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            temporary.write_text(json.dumps(lineage, indent=1, sort_keys=True))
            os.replace(temporary, path)

    def _read_lineage(self) -> dict[str, str]:
        path = self.project / LINEAGE_FILE
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except (OSError, json.JSONDecodeError):
            logger.warning("ignoring the unreadable lineage file %s", path)
            return {}


class RunContextHook:
    """Gives a node that asks for `run_context` what only the run knows: the command, the commit, the machine, and
    the wall-clock seconds of every node finished so far (the paper report reads it; no node runs git or times others).
    """

    DATASET = "run_context"

    def __init__(self) -> None:
        self.context: dict[str, Any] | None = None
        self.started: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        self.context = None
        if self.DATASET not in pipeline.inputs():
            return
        git = git_state(Path(run_params.get("project_path") or Path.cwd()))
        self.context = {
            "command": command_line(),
            "environment": run_params.get("env") or "base",
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": git.get("mlflow.source.git.commit", "not a git checkout"),
            "dirty": git.get("git.dirty", "unknown"),
            "machine": describe_machine(),
            "node_seconds": {},
        }
        catalog[self.DATASET] = self.context

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        self.started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node, catalog: DataCatalog) -> None:
        if self.context is not None and node.name in self.started:
            self.context["node_seconds"][node.name] = time.perf_counter() - self.started.pop(node.name)
            catalog.get(self.DATASET).save(self.context)
