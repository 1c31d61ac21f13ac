"""`kedro plan`: the plan that `kedro run` with the same options logs before its first training, without the run.

A project command, Kedro's way to add one (`kedro plan --pipeline=paper_report --env mnist`): it reads the
parameters through the project's own config loader as `kedro run` does (--env, --params, --conf-source) and takes
the pipeline from the registry, but opens no session and runs no hook, so nothing trains, no MLflow run is created
and nothing is written but data/08_reporting/plan.md. The step times are measured here unless
plan.device_table names a GPU table (gpe_pipeline.plan).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import pipelines as registered_pipelines
from kedro.framework.project import settings
from kedro.pipeline import Pipeline

from gpe_pipeline.core.errors import UserError
from gpe_pipeline.hooks import command_line, run_plan
from gpe_pipeline.pipelines.build_parameters import record
from gpe_pipeline.validation import pipeline_namespaces, validate_run
from gpe_pipeline.variants import run_parameters

# `kedro run`'s own options for what the plan depends on, so that both commands parse them alike.
PLAN_OPTIONS = [option for option in kedro_run.params if option.name in ("pipeline", "pipelines", "env", "conf_source", "params")]


def show_plan(
    pipeline: str | None, pipelines: list[str], env: str | None, conf_source: str | None, params: dict[str, Any]
) -> None:
    """Print the plan of `kedro run` with these options and write data/08_reporting/plan.md; nothing is trained."""
    metadata = click.get_current_context().obj
    project = Path(getattr(metadata, "project_path", None) or Path.cwd())
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=conf_source or str(project / settings.CONF_SOURCE),
        env=env,
        runtime_params=params,
        **settings.CONFIG_LOADER_ARGS,
    )
    parameters = loader["parameters"]
    record(parameters)  # before the pipelines are built: their seeds come from these parameters
    names = [pipeline] if pipeline else list(pipelines) or ["__default__"]
    missing = [name for name in names if registered_pipelines.get(name) is None]
    if missing:
        raise UserError(f"there is no pipeline named {missing[0]!r}: the pipelines are {sorted(registered_pipelines)}")
    chosen = sum((registered_pipelines[name] for name in names), Pipeline([]))
    resolved = run_parameters(parameters, pipeline_namespaces(chosen))
    validate_run(parameters, chosen, resolved)  # the checks `kedro run` makes before its first node
    click.echo(run_plan(project, parameters, resolved, chosen, command_line()))
