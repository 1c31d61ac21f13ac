"""Project hooks."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from gpe_pipeline.validation import validate_parameters


class ValidateParametersHook:
    """Fail a run on a bad parameter before its first node starts, so nothing on disk is overwritten."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog) -> None:
        validate_parameters(catalog.load("parameters"), {node.name.split(".")[-1] for node in pipeline.nodes})
