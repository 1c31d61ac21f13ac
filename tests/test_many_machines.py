"""Training past one machine: the head's real `kedro run` and a worker command, two "machines" on loopback.

Each "machine" is one process group member with gloo on the CPU; the rendezvous is torch's elastic c10d
rendezvous on 127.0.0.1. The worker runs in an empty folder of its own, so anything it wrote would show there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
import torch

from gpe_pipeline.core.training import is_finished, load_checkpoint
from gpe_pipeline.datasets import TorchModelDataset, TorchTensorDataset
from gpe_pipeline.pipelines.train_encoder.nodes import train_encoder

from .conftest import KEDRO, command_line, environment_config, kedro, make_project_copy
from .test_cli import TRACEBACK_MARKS
from .test_run import outputs

TRAINING = "train_encoder.training"
ENCODER = Path("data") / "06_models" / "encoder.pt"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    project = make_project_copy(tmp_path_factory.mktemp("ingested"))
    kedro(project, "run", "--env", "test", "--pipeline=ingest")
    return project


@pytest.fixture
def project(ingested, tmp_path) -> Path:
    """A copy of the ingested project and nothing else: no model, no MLflow store."""
    copy = tmp_path / "head"
    shutil.copytree(ingested, copy, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "info.log*"))
    return copy


def two_machine_params(port: int, **extra) -> str:
    settings = {"world_size": 2, "nodes": 2, "rendezvous": f"127.0.0.1:{port}", "backend": "gloo", "device": "cpu", **extra}
    return ",".join(f"{TRAINING}.{key}={value}" for key, value in settings.items())


def start_worker(port: int, folder: Path) -> subprocess.Popen:
    """`python -m gpe_pipeline worker` in an empty folder of its own, output to folder/../worker.log."""
    folder.mkdir()
    log = open(folder.parent / "worker.log", "w")  # noqa: SIM115 - closed with the process in finish_worker
    command = [sys.executable, "-m", "gpe_pipeline", "worker", "--rendezvous", f"127.0.0.1:{port}", "--wait", "120"]
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen(command, cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT)
    worker.log = log
    return worker


def finish_worker(worker: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    """The worker's exit status and output, once it has exited (killed after timeout seconds)."""
    try:
        status = worker.wait(timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        status = worker.wait()
    worker.log.close()
    return status, Path(worker.log.name).read_text()


def one_process_encoder(project: Path, tmp_path: Path) -> torch.nn.Module:
    """The train_encoder node run in this process on the project's ingested data, with one process."""
    params = environment_config("test")
    training = params["train_encoder"]["training"]
    training.update(checkpoint_path=str(tmp_path / "one-process" / "encoder.pt"), device="cpu")
    train, validation = (primary(project, name) for name in ("train_data", "validation_data"))
    metadata = {"shape": list(train["x"].shape[1:])}
    encoder, _, _, _ = train_encoder(train, validation, metadata, params["train_encoder"], params["train_decoder"])
    return encoder


def primary(project: Path, name: str) -> dict:
    return TorchTensorDataset(filepath=str(project / "data" / "03_primary" / f"{name}.pt")).load()


def mlflow_runs(project: Path):
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gpe_pipeline")
    return client, client.search_runs([experiment.experiment_id])


def test_two_machines_train_the_one_process_encoder_and_only_the_head_writes(project, tmp_path):
    port = free_port()
    worker = start_worker(port, tmp_path / "worker")
    head = kedro(project, "run", "--env", "test", "--pipeline=train_encoder", "--params", two_machine_params(port))
    status, worker_output = finish_worker(worker)
    assert status == 0, worker_output[-3000:]
    assert "stage train_encoder-1 finished" in worker_output and "the head machine's run ended" in worker_output
    assert "training on 2 processes over 2 machines" in head.output
    assert list((tmp_path / "worker").iterdir()) == [], "the worker wrote nothing: no catalog file, no MLflow store, no log"

    trained = TorchModelDataset(filepath=str(project / ENCODER)).load()
    reference = one_process_encoder(project, tmp_path)
    points = primary(project, "validation_data")["x"][:50]
    *body, (latent_bias_name, _) = list(reference.state_dict().items())
    for name, value in body:
        assert torch.allclose(trained.state_dict()[name], value, atol=1e-5, rtol=0), name
    # GME only sees distances between latents, so the latent layer's bias gets a gradient of rounding noise, which
    # Adam turns into steps of +-lr: that bias differs between any two runs; the map up to that shift does not.
    assert latent_bias_name.endswith("bias")
    with torch.no_grad():
        shifted = [model(points) - model(points).mean(0) for model in (trained, reference)]
    assert torch.allclose(shifted[0], shifted[1], atol=1e-5, rtol=0)

    client, runs = mlflow_runs(project)
    assert len(runs) == 1, "the head's one run; the worker opens none"
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train_encoder/train_loss")]
    assert steps == [20, 30, 40, 60], "each record logged once, by rank 0"
    assert "train_encoder/restarts" not in runs[0].data.metrics


def training_processes(parent: int) -> list[int]:
    """The processes torch's elastic agent started under `parent` (spawned: their command line runs spawn_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat, command = (entry / "stat").read_text(), (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def kill_worker_training_after_first_checkpoint(worker: subprocess.Popen, checkpoint: Path, killed: list) -> None:
    """Freeze the worker's training process at the first checkpoint (the head then waits for it), then kill -9 it."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if torch.load(checkpoint, weights_only=True)["step"] > 0:
                break
        except (FileNotFoundError, RuntimeError, EOFError):
            pass
        time.sleep(0.02)
    for pid in training_processes(worker.pid):
        os.kill(pid, signal.SIGSTOP)  # no more steps anywhere: every step needs this process's all-reduce
        killed.append((pid, int(torch.load(checkpoint, weights_only=True)["step"])))
    time.sleep(0.5)
    for pid, _ in killed:
        os.kill(pid, signal.SIGKILL)


def test_a_killed_worker_process_is_restarted_and_the_stage_resumes_from_its_checkpoint(project, tmp_path):
    port = free_port()
    checkpoint = (project / "data" / "06_models" / "checkpoints" / "encoder.pt").resolve()
    worker = start_worker(port, tmp_path / "worker")
    killed: list[tuple[int, int]] = []
    killer = threading.Thread(target=kill_worker_training_after_first_checkpoint, args=(worker, checkpoint, killed))
    killer.start()
    params = two_machine_params(port, max_restarts=1, max_steps=100, checkpoint_every=10)
    head = kedro(project, "run", "--env", "test", "--pipeline=train_encoder", "--params", params)
    killer.join()
    status, worker_output = finish_worker(worker)
    assert len(killed) == 1, "the worker machine ran one training process"
    output = " ".join(head.output.split())
    assert "torch's elastic agent restarted the processes (restart 1 of at most 1): resuming from the last checkpoint" in output
    resumed = int(output.split(f"resuming from checkpoint {checkpoint} at step ")[1].split()[0])
    assert killed[0][1] <= resumed < 100, "the stage went on from the checkpoint written before the kill"
    assert "train_encoder finished at step 100" in output
    assert (project / ENCODER).exists() and is_finished(load_checkpoint(checkpoint)), "rank 0 wrote the finished training"
    assert status == 0, worker_output[-3000:]

    client, runs = mlflow_runs(project)
    assert runs[0].data.metrics["train_encoder/restarts"] == 1


def test_a_machine_that_never_joins_ends_the_stage_after_the_timeout_and_the_catalog_is_unchanged(project):
    port, timeout = free_port(), 10
    before = outputs(project)
    params = two_machine_params(port, rendezvous_timeout=timeout)
    command = [KEDRO, "run", "--env", "test", "--pipeline=train_encoder", "--params", params]
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
    environment.pop("COLUMNS", None)
    head = subprocess.Popen(command, cwd=project, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, launched = [], None
    for line in head.stdout:  # when the node starts the rendezvous, by the clock of this test
        lines.append(line)
        if launched is None and "training on 2 processes over 2 machines" in line:
            launched = time.monotonic()
    head.wait(120)
    ended = time.monotonic()
    assert launched is not None, "".join(lines)[-3000:]
    assert timeout <= ended - launched < timeout + 15, "the rendezvous timeout, plus torch's 5 s to leave it and the exit"
    output = "".join(lines)
    assert head.returncode == 1 and not [mark for mark in TRACEBACK_MARKS if mark in output], output[-3000:]
    message = (
        f"Error: train_encoder: 1 of 2 machines joined the rendezvous at 127.0.0.1:{port} within {timeout} s: "
        f"run `python -m gpe_pipeline worker --rendezvous 127.0.0.1:{port}` on each other machine, "
        f"or raise {TRAINING}.rendezvous_timeout"
    )
    assert output.splitlines()[-2:] == [message, "(GPE_TRACEBACK=1 shows the traceback)"]
    assert outputs(project) == before and not (project / ENCODER).exists()


HEAD_OF_TWO_STAGES = """
import sys
from functools import partial

import torch

from gpe_pipeline.core.models import build_model
from gpe_pipeline.core.step_losses import encoder_step_loss
from gpe_pipeline.core.training import TrainConfig, train

images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
for stage in ("first", "second"):
    encoder = build_model("encoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[16])
    settings = dict(world_size=2, nodes=2, rendezvous=sys.argv[1], backend="gloo", device="cpu")
    config = TrainConfig(name=stage, max_steps=5, batch_size=16, lr=1e-3, log_every=5, **settings)
    print(stage, "trained", train(encoder, partial(encoder_step_loss, loss_name="gme"), [images], config).steps, "steps")
"""


def test_one_worker_serves_every_stage_of_the_heads_run_and_leaves_when_it_ends(tmp_path):
    port = free_port()
    worker = start_worker(port, tmp_path / "worker")
    head = command_line(tmp_path, [sys.executable, "-c", HEAD_OF_TWO_STAGES, f"127.0.0.1:{port}"])
    status, worker_output = finish_worker(worker)
    assert "first trained 5 steps" in head.output and "second trained 5 steps" in head.output
    assert status == 0, worker_output[-3000:]
    assert "stage first-1 finished" in worker_output and "stage second-2 finished" in worker_output
    assert "the head machine's run ended: 0 stage(s) failed on this machine" in worker_output


def test_a_worker_without_a_head_ends_with_one_line(tmp_path):
    command = [sys.executable, "-m", "gpe_pipeline", "worker", "--rendezvous", f"127.0.0.1:{free_port()}", "--wait", "2"]
    result = command_line(tmp_path, command, check=False)
    assert result.returncode == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: no head machine answered at {command[5]} within 2 s: start its kedro run first"
    )
