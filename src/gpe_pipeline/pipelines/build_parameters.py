"""The parameters that shape the pipelines: how many seeds each experiment runs (a seed is a namespace per variant).

Kedro builds the pipelines (register_pipelines) before it hands parameters to nodes, but every Kedro command makes
its context, with --env and --params applied, first: hooks.BuildParametersHook records that context's parameters
here and the experiments' create_pipeline read them, so `--params paper_report.seeds=5` changes the pipeline.
Outside a Kedro command (a test, a notebook) the project's conf is read, with KEDRO_ENV as the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.project import settings

from gpe_pipeline.variants import seed_count

_recorded: dict[str, Any] | None = None


def record(parameters: Mapping[str, Any]) -> None:
    """The parameters of the command about to build the pipelines (its context's, --env and --params applied)."""
    global _recorded
    _recorded = dict(parameters)


def build_parameters() -> Mapping[str, Any]:
    """The recorded parameters, else those of the project's conf in the working directory (none outside a project)."""
    if _recorded is not None:
        return _recorded
    conf = Path.cwd() / settings.CONF_SOURCE
    if not conf.is_dir():
        return {}
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(conf), env=os.environ.get("KEDRO_ENV"), **settings.CONFIG_LOADER_ARGS
    )
    try:
        return loader["parameters"]
    except MissingConfigException:
        return {}


def experiment_seeds(experiment: str) -> int:
    """The number of seeds the experiment's pipeline is built with (variants.seed_count of the build parameters)."""
    return seed_count(build_parameters(), experiment)
