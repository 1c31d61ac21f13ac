"""Shared fixtures: a throw-away copy of the project for real `kedro run`s."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

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


def command_line(
    project: Path, command: list[str], timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `command` in `project` as CI would (output captured, no COLUMNS) and return it (stdout and stderr merged)."""
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1", **(env or {})}
    environment.pop("COLUMNS", None)  # the width a terminal would give: runs must read well without one
    result = subprocess.run(command, cwd=project, env=environment, capture_output=True, text=True, timeout=timeout)
    result.output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.output[-6000:]}")
    return result


def kedro(
    project: Path, *args: str, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the kedro CLI in `project` (see command_line)."""
    return command_line(project, [KEDRO, *args], timeout=timeout, check=check, env=env)


def environment_config(env: str, key: str = "parameters") -> dict:
    """conf/<env> merged over conf/base the way `kedro run --env <env>` merges them (the project's CONFIG_LOADER_ARGS)."""
    from kedro.config import OmegaConfigLoader

    from gpe_pipeline.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env}, env=env)
    return loader[key]


@pytest.fixture(autouse=True)
def fresh_build_parameters():
    """Each test builds pipelines from its own parameters: none recorded by an earlier test (build_parameters.record)."""
    from gpe_pipeline.pipelines import build_parameters

    yield
    build_parameters._recorded = None


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> Path:
    """A project copy on which the four core stages ran once with the tiny test settings."""
    project = make_project_copy(tmp_path_factory.mktemp("project"))
    run = kedro(project, "run", "--env", "test", "--pipeline=gpe_full")
    (project / "kedro_run_output.txt").write_text(run.output)  # what the user saw, for tests of the log lines
    return project


@pytest.fixture
def params() -> dict:
    """conf/base's parameters, every parameters_*.yml merged (what a run without an environment reads)."""
    merged = {}
    for path in (PROJECT_ROOT / "conf" / "base").glob("parameters_*.yml"):
        merged.update(yaml.safe_load(path.read_text()))
    return merged


def with_value(params: dict, dotted: str, value) -> dict:
    """A deep copy of params with the dotted key set to value (missing parents are added as dicts)."""
    changed = copy.deepcopy(params)
    *parents, leaf = dotted.split(".")
    node = changed
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return changed


def interrupted_step(checkpoint: Path) -> int:
    """The step of the resumable checkpoint at `checkpoint`; 0 when there is none or it is a finished training's."""
    if not checkpoint.exists():
        return 0
    state = torch.load(checkpoint, weights_only=True)
    return 0 if state.get("finished") else int(state["step"])


def run_until_checkpoint(project: Path, args: list[str], checkpoint: Path, step: int, timeout: float = 180) -> int:
    """Start `kedro <args>`, kill it (SIGKILL: no clean-up runs) once `checkpoint` holds a step >= step; that step.

    A finished training's checkpoint (of an earlier run, kept for reuse) does not count: the run trains afresh.
    """
    kill_when(project, args, lambda: interrupted_step(checkpoint) >= step, timeout)
    return int(torch.load(checkpoint, weights_only=True)["step"])


def kill_when(project: Path, args: list[str], condition, timeout: float = 180, poll: float = 0.2) -> None:
    """Start `kedro <args>` in `project` and kill it (SIGKILL: no clean-up runs) once condition() holds, the run
    ended, or timeout seconds passed."""
    process = subprocess.Popen(
        [KEDRO, *args],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and process.poll() is None and not condition():
            time.sleep(poll)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
