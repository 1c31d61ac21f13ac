"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Each stage's pipeline, gpe_full (their sum) and __default__ (= gpe_full).

    `kedro run --pipeline=NAME` makes find_pipelines load only NAME, so
    __default__ is added only when gpe_full was loaded.
    """
    pipelines = find_pipelines(raise_errors=True)
    if "gpe_full" in pipelines:
        pipelines["__default__"] = pipelines["gpe_full"]
    return pipelines
