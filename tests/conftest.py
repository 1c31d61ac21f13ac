"""Shared fixtures: a throw-away copy of the project for real `kedro run`s."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))
# Every node of gpe_full, by name.
PIPELINE_NODES = {
    "ingest_dataset",
    "train_encoder",
    "cache_latents",
    "train_decoder",
    "train_flow",
    "train_feature_classifier",
    "reconstruct_heldout",
    "generate_samples",
    "compute_metrics",
    "make_figures",
}


def make_project_copy(destination: Path) -> Path:
    """conf/, pyproject.toml and empty src/ and data/ trees: a project whose runs cannot touch the real one."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf", ignore=shutil.ignore_patterns("local"))
    (destination / "conf" / "local").mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination / "pyproject.toml")
    (destination / "src").mkdir()  # kedro wants the folder; the package itself comes from the editable install
    for layer in ("01_raw", "03_primary", "05_model_input", "06_models", "08_reporting"):
        (destination / "data" / layer).mkdir(parents=True)
    return destination


def kedro(project: Path, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run the kedro CLI in `project` and return the finished process (stdout and stderr merged)."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "250", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([KEDRO, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)
    result.output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"kedro {' '.join(args)} failed ({result.returncode}):\n{result.output[-6000:]}")
    return result


def environment_config(env: str, key: str = "parameters") -> dict:
    """conf/<env> merged over conf/base the way `kedro run --env <env>` merges them (the project's CONFIG_LOADER_ARGS)."""
    from kedro.config import OmegaConfigLoader

    from gpe_pipeline.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env}, env=env)
    return loader[key]


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> Path:
    """A project copy on which the four core stages ran once with the tiny test settings."""
    project = make_project_copy(tmp_path_factory.mktemp("project"))
    kedro(project, "run", "--env", "test", "--pipeline=gpe_full")
    return project
