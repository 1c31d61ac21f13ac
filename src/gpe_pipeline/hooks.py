"""Project hooks: the run's parameters merged and checked before the first node, and MLflow runs that explain themselves.

`RunParametersHook` computes every variant's sections once (the parameter layer, gpe_pipeline.variants), checks
every section the run reads, and hands the merged sections to the nodes as their namespaced `params:` inputs.
kedro-mlflow opens one MLflow run per `kedro run` (`ProjectMlflowHook`, its hook registered last so that pluggy
calls it first). `MlflowRunsHook` then completes that run: the commit, the dataset, the full command, a readable
name, which earlier runs produced its inputs, and only the parameters the run reads; and it gives every variant
namespace (compare.vae, ...) a child run that holds the variant's merged parameters, its metrics, models and figures.
`PlanHook` logs and writes the plan of a run with variants before its first training (gpe_pipeline.plan).
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from mlflow import MlflowClient
from mlflow.entities import Param, RunStatus

from gpe_pipeline.lineage import read_lineage, record_lineage
from gpe_pipeline.machine import describe_machine
from gpe_pipeline.params import architectures_by_path, used_parameters
from gpe_pipeline.pipelines.build_parameters import record
from gpe_pipeline.pipelines.variant_stages import RUNTIME_PARAMETERS_TAG, RUNTIME_SECTION
from gpe_pipeline.plan import estimate, plan_log_lines, plan_markdown, plan_settings, plan_trainings, write_plan
from gpe_pipeline.validation import pipeline_namespaces, validate_run
from gpe_pipeline.variants import METHODS_KEY, STAGE_SECTIONS, method_label, run_parameters, seed_of

logger = logging.getLogger(__name__)

# The experiment's kind, for MLflow UIs and tools that read it. MLflow 3.17's UI ignores it and opens every experiment
# in its global GenAI view until the user switches to "Model training" or the URL says workflowType=machine_learning.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store by default
MAX_PARAM_LENGTH = 6000  # MLflow 3's limit on a parameter value


class BuildParametersHook:
    """Record the context's parameters (conf, --env and --params) before anything builds the pipelines, whose shape
    (each experiment's seeds) they set (gpe_pipeline.pipelines.build_parameters)."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        record(context.config_loader["parameters"])


class RunParametersHook:
    """Merge every variant's sections once, check every section the run reads, and give the nodes the merged ones.

    Before the first node: a bad parameter fails the run in one line and nothing on disk changes. Inside the
    namespace compare.vae, a stage reads `params:compare.vae.train_encoder`: this hook puts the merged section
    there (conf and --params give only the keys that differ). `resolved` holds the run's merged sections for the
    MLflow hook.
    """

    def __init__(self) -> None:
        self.resolved: dict[str, dict[str, dict[str, Any]]] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        parameters = catalog.load("parameters")
        self.resolved = run_parameters(parameters, pipeline_namespaces(pipeline))
        validate_run(parameters, pipeline, self.resolved)
        inputs = pipeline.inputs()
        for namespace, sections in self.resolved.items():
            for section, value in sections.items():
                if f"params:{namespace}.{section}" in inputs:
                    catalog[f"params:{namespace}.{section}"] = value


def nodes_by_namespace(pipeline: Pipeline) -> dict[str, set[str]]:
    """{namespace ('' outside any): the names of its nodes there, without the namespace}: the plan's view of a pipeline."""
    nodes: dict[str, set[str]] = {}
    for node in pipeline.nodes:
        namespace = node.namespace or ""
        nodes.setdefault(namespace, set()).add(node.name.removeprefix(f"{namespace}.") if namespace else node.name)
    return nodes


def run_plan(
    project: Path, parameters: dict[str, Any], resolved: dict[str, dict[str, Any]], pipeline: Pipeline, command: str
) -> str:
    """The run's plan (gpe_pipeline.plan) with its step times, logged as one block and written to
    data/08_reporting/plan.md; its markdown. resolved: the run's merged variant sections (variants.run_parameters)."""
    settings = plan_settings(parameters)
    plan = estimate(plan_trainings(parameters, resolved, nodes_by_namespace(pipeline)), settings, project)
    text = plan_markdown(plan, command)
    path = write_plan(project, text)
    for line in [*plan_log_lines(plan), f"Plan: every training is listed in {path}"]:
        logger.info(line)
    return text


class PlanHook:
    """Before the first node of a run with variants (compare, an experiment, paper_report): the plan of its trainings,
    their optimiser steps at most and the time they take at most, logged and written (`kedro plan` shows it alone).

    parameters: the run's RunParametersHook, whose merged and checked sections the plan reads.
    """

    def __init__(self, parameters: RunParametersHook) -> None:
        self.parameters = parameters

    @hook_impl(trylast=True)  # after RunParametersHook has merged and checked the sections
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        resolved = self.parameters.resolved
        if not any("train_encoder" in sections for sections in resolved.values()):  # no variant: a stage run
            return
        project = Path(run_params.get("project_path") or Path.cwd())
        run_plan(project, catalog.load("parameters"), resolved, pipeline, command_line())


class ProjectMlflowHook(MlflowHook):
    """kedro-mlflow's hook, except that it logs no node's `params:` inputs: MlflowRunsHook logs the run's parameters
    once, pruned to what the run reads, and each variant's merged sections on its own child run."""

    @hook_impl
    def before_node_run(self, node: Node, catalog: DataCatalog, inputs: dict[str, Any], is_async: bool) -> None:
        data_inputs = {name: value for name, value in inputs.items() if not name.startswith("params:") and name != "parameters"}
        super().before_node_run(node, catalog, data_inputs, is_async)


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}, as kedro-mlflow flattens the parent run's parameters."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):  # an empty one (a variant without overrides) logs nothing, as kedro-mlflow's does
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
    """Tags, readable names, lineage, used parameters and one child run per variant namespace.

    parameters: the run's RunParametersHook, whose merged sections the children log.
    """

    def __init__(self, parameters: RunParametersHook) -> None:
        self.parameters = parameters
        self._reset()

    def _reset(self) -> None:
        self.children: dict[str, str] = {}  # namespace -> child run id
        self.pending_completions: Counter[str] = Counter()  # namespace -> its run-time sections' nodes not yet run
        self.completed_sections: dict[str, dict[str, Any]] = {}  # namespace -> the sections those nodes completed
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
        run = mlflow.active_run()
        if run is None:  # tracking is off for this pipeline
            return
        parameters = catalog.load("parameters")
        resolved = self.parameters.resolved
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
        self._log_parameters(client, run.info.run_id, run_parameter_view(parameters, resolved, pipeline))
        completers = [node.namespace for node in pipeline.nodes if RUNTIME_PARAMETERS_TAG in node.tags]
        completed_at_run_time = set(completers)
        self.pending_completions = Counter(completers)
        for namespace, sections in resolved.items():
            if "train_encoder" not in sections:  # an experiment's own dataset, not a variant
                continue
            sections = {**sections, "ingest": sections.get("ingest") or parameters.get("ingest") or {}}
            self.children[namespace] = self._create_child(client, run, namespace, sections, shared_tags)
            if namespace not in completed_at_run_time:
                self._log_parameters(client, self.children[namespace], variant_parameter_view(sections))

    def _mark_experiment(self, client: MlflowClient, experiment_id: str) -> None:
        """An experiment created before conf/base/mlflow.yml set its kind gets the tag too."""
        experiment = client.get_experiment(experiment_id)
        for key, value in EXPERIMENT_KIND.items():
            if experiment.tags.get(key) != value:
                client.set_experiment_tag(experiment_id, key, value)

    def _upstream_tags(self, pipeline: Pipeline) -> dict[str, str]:
        """For each input this run reads but does not produce: the run that wrote it (from the project's lineage)."""
        lineage = read_lineage(self.project)
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
            **({"seed": str(seed_of(namespace))} if seed_of(namespace) is not None else {}),
            "method": method_label(sections["train_encoder"]),
        }
        return client.create_run(parent.info.experiment_id, tags=tags).info.run_id

    def _log_parameters(self, client: MlflowClient, run_id: str, view: dict[str, Any]) -> None:
        """Parameters flattened to dotted keys (train_encoder.training.lr, ...) on one run."""
        params = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in flatten(view).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            client.log_batch(run_id, params=params[start : start + 100])

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        """A variant whose sections nodes complete at run time: log them on its child once the last of those ran."""
        child = self.children.get(node.namespace or "")
        if child is None or RUNTIME_PARAMETERS_TAG not in node.tags or mlflow.active_run() is None:
            return
        suffix = RUNTIME_SECTION.format("")
        completed = self.completed_sections.setdefault(node.namespace, {})
        completed.update({name.rsplit(".", 1)[-1].removesuffix(suffix): value for name, value in outputs.items()})
        self.pending_completions[node.namespace] -= 1
        if self.pending_completions[node.namespace]:
            return
        sections = {**self.parameters.resolved[node.namespace], **completed}
        sections.setdefault("ingest", self.catalog.load("parameters").get("ingest") or {})
        self._log_parameters(MlflowClient(), child, variant_parameter_view(sections))

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
            record_lineage(self.project, self.saved)


def run_parameter_view(
    parameters: dict[str, Any], resolved: dict[str, dict[str, dict[str, Any]]], pipeline: Pipeline
) -> dict[str, Any]:
    """The parameters a run reads, as configured, for its parent run: each top-level section a shared node reads,
    and for a run with variants the shared stage sections, the method definitions and the variants' groups (compare,
    the experiments), all pruned to what the run uses (other architectures' options, other datasets' keys out).

    Every architecture and dataset some variant uses keeps its keys in the shared sections.
    """
    namespaces = pipeline_namespaces(pipeline)
    keys = set()
    for name in pipeline.inputs():
        if name.startswith("params:") and not any(name.startswith(f"params:{ns}.") for ns in resolved):
            keys.add(name.removeprefix("params:").split(".")[0])
    if resolved:
        keys |= {*STAGE_SECTIONS, METHODS_KEY, *(namespace.split(".")[0] for namespace in namespaces)}
    in_use: dict[str, set[str]] = {}
    for sections in resolved.values():
        for path, names in architectures_by_path(sections).items():
            in_use.setdefault(path, set()).update(names)
    datasets = {sections["ingest"].get("dataset") for sections in resolved.values() if "ingest" in sections}
    return {
        key: used_parameters(key, parameters[key], in_use, datasets)
        for key in sorted(keys)
        if isinstance(parameters.get(key), dict)
    }


def variant_parameter_view(sections: dict[str, Any]) -> dict[str, Any]:
    """A variant's merged stage sections and ingest, pruned to what it uses, for its child run."""
    return {section: used_parameters(section, sections[section]) for section in (*STAGE_SECTIONS, "ingest")}


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
        # Handed over by reference, not copied: the seconds this hook adds after each node reach the reading node.
        catalog[self.DATASET] = MemoryDataset(self.context, copy_mode="assign")

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        self.started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        if self.context is not None and node.name in self.started:
            self.context["node_seconds"][node.name] = time.perf_counter() - self.started.pop(node.name)
