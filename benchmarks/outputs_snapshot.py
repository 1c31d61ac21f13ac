"""What a tiny `compare` and a tiny `paper_report` write, apart from seconds: `python -m benchmarks.outputs_snapshot OUT`.

Runs both pipelines with `--env test` in a throw-away copy of the project and writes, under OUT, one normalised text
file per output: every CSV, JSON and markdown file under data/08_reporting (timings masked), a hash of every tensor of
every model under data/06_models, the list of figures, and per MLflow run its parameters, metric names and values, and
tag names. Two snapshots of two commits that should behave the same compare with `diff -r BEFORE AFTER`: a refactor
that changes nothing a user sees leaves no difference.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from tests.conftest import make_project_copy

PIPELINES = ("compare", "paper_report")
# Keys and columns that hold a duration, a rate or a moment: they change from one run to the next by design.
TIMING_NAME = re.compile(r"second|elapsed|_s$|_s_|per_sec|s_per_iter|_ms$|_ms_|ms_per|duration|started|time", re.IGNORECASE)
# In text: a number with a unit of time, a date-time, a commit hash.
TIMING_TEXT = re.compile(r"\d[\d,]*(\.\d+)?\s?(s|ms|min|sec)\b|\d{4}-\d\d-\d\dT[\d:+]+|\b[0-9a-f]{40}\b|\b\d+ min \d+ s\b")
MASK = "<t>"
# Readings computed from seconds (E5: the lowest loss each method had reached by a time; a ratio of seconds per step).
FROM_TIMINGS = re.compile(r"(within the first <t>)[^|\"\n]*|ratio \d+(\.\d+)?")


def mask_text(text: str) -> str:
    """Timings, and the readings computed from them, replaced by MASK."""
    return FROM_TIMINGS.sub(lambda m: (m.group(1) or "ratio") + " " + MASK, TIMING_TEXT.sub(MASK, text))


def masked(value: Any, name: str = "") -> Any:
    """value with every timing entry (by its key) replaced by MASK, recursively."""
    if TIMING_NAME.search(name):
        return MASK
    if isinstance(value, dict):
        return {key: masked(item, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item, name) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def masked_markdown(text: str) -> str:
    """Text with timings masked, and in every markdown table the cells under a timing column's header."""
    lines, headers = text.splitlines(), None
    for index, line in enumerate(lines):
        cells = line.split("|")
        if not line.startswith("|"):
            headers = None
        elif headers is None:
            headers = [cell.strip() for cell in cells]
        elif len(cells) == len(headers) and not set(line) <= set("|-: "):
            lines[index] = "|".join(MASK if TIMING_NAME.search(h) else c for h, c in zip(headers, cells, strict=True))
        lines[index] = mask_text(lines[index])
    return "\n".join(lines) + "\n"


def tensor_digest(value: Any, digest: Any) -> None:
    if isinstance(value, torch.Tensor):
        digest.update(str((value.dtype, tuple(value.shape))).encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            digest.update(str(key).encode())
            tensor_digest(value[key], digest)
    elif isinstance(value, (list, tuple)):
        for item in value:
            tensor_digest(item, digest)
    else:
        digest.update(json.dumps(masked(value), sort_keys=True, default=str).encode())


def normalised_file(path: Path) -> str | None:
    if path.name == "lineage.json":  # dataset -> the MLflow run id that wrote it: the ids differ by design
        return "\n".join(sorted(json.loads(path.read_text())))
    if path.suffix == ".json":
        return json.dumps(masked(json.loads(path.read_text())), indent=1, sort_keys=True)
    if path.suffix == ".csv":
        table = pd.read_csv(path)
        for column in table.columns:
            if TIMING_NAME.search(str(column)):
                table[column] = MASK
            elif table[column].dtype == object:
                table[column] = table[column].map(lambda v: mask_text(v) if isinstance(v, str) else v)
        return table.to_csv(index=False, float_format="%.10g")
    if path.suffix in (".md", ".txt"):
        return masked_markdown(path.read_text())
    if path.suffix == ".pt":
        digest = hashlib.sha256()
        tensor_digest(torch.load(path, weights_only=True, map_location="cpu"), digest)
        return digest.hexdigest()
    return None


def mlflow_runs(project: Path) -> dict[str, Any]:
    """Per run (by name, children under their parent's name): params, metrics (timings masked) and tag names."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=10_000)
    names = {run.info.run_id: run.info.run_name for run in runs}
    snapshot: dict[str, Any] = {}
    for run in runs:
        parent = names.get(run.data.tags.get("mlflow.parentRunId", ""), "")
        key = f"{parent} / {run.info.run_name}" if parent else run.info.run_name
        ignored_tags = {"mlflow.source.git.commit", "git.dirty", "mlflow.source.name", "mlflow.user", "mlflow.parentRunId"}
        snapshot[key] = {
            "params": masked({k: v for k, v in run.data.params.items()}),
            "metrics": {k: masked(v, k) for k, v in run.data.metrics.items()},
            "tags": sorted(k for k in run.data.tags if k not in ignored_tags and not k.startswith("upstream")),
            "status": run.info.status,
            "artifacts": sorted(a.path for a in client.list_artifacts(run.info.run_id)),
        }
    return snapshot


def snapshot(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="gpe-snapshot-") as tmp:
        project = make_project_copy(Path(tmp) / "project")
        kedro = str(Path(sys.executable).with_name("kedro"))
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
        for pipeline in PIPELINES:
            done = subprocess.run(
                [kedro, "run", "--env", "test", f"--pipeline={pipeline}"], cwd=project, env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise SystemExit(f"kedro run --pipeline={pipeline} failed:\n{(done.stdout + done.stderr)[-4000:]}")
        out.mkdir(parents=True, exist_ok=True)
        figures = []
        for path in sorted((project / "data").rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(project / "data")
            if path.suffix == ".png":
                figures.append(str(relative))
                continue
            if "checkpoints" in relative.parts:
                continue
            text = normalised_file(path)
            if text is not None:
                target = out / "data" / f"{relative}.txt"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        (out / "figures.txt").write_text("\n".join(figures) + "\n")
        (out / "mlflow.json").write_text(json.dumps(mlflow_runs(project), indent=1, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m benchmarks.outputs_snapshot OUT_FOLDER")
    snapshot(Path(sys.argv[1]))
