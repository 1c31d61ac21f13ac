"""Step time of one and of two loopback "machines": the project's train() under torch's elastic launcher, side by side.

    .venv/bin/python -m benchmarks.many_machines [--repeats 3] [--steps 300] [--backend gloo|nccl]

Three launches of the same training, in turn, `--repeats` times: one process; two processes on one machine
(nodes 1); two "machines" of one process each on 127.0.0.1 (nodes 2: this process is the head, a
`python -m gpe_pipeline worker` subprocess the other machine, serving every repeat as the next stage). Each
launch trains an encoder on the GME loss (global batch 64) for `--steps` steps of random data, for two
network sizes. ms/step is the training steps' own time (the loop's train_elapsed_s between its first and last
record, so start-up, evaluations and checkpoints are left out); start-up is the rest of the call's wall time
(processes, rendezvous, sending the model and data, joining the group). On loopback both multi-process
launches exchange gradients over the same local TCP stack, so what this measures is what the two-machine
machinery adds, not what a network costs. `--backend nccl` needs a GPU per process (NCCL refuses two ranks
on one GPU): two GPUs on one machine stand for the two machines.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from functools import partial

import torch

from gpe_pipeline.core.models import build_model
from gpe_pipeline.core.step_losses import encoder_step_loss
from gpe_pipeline.core.training import TrainConfig, train

from .timing import OtherLoad, machine, median, table

SIZES = {  # name: (image shape, hidden widths)
    "tiny (8x8, MLP [32])": ([1, 8, 8], [32]),
    "MNIST-sized (28x28, MLP [256, 256])": ([1, 28, 28], [256, 256]),
}
BATCH, LATENT_DIM, EXAMPLES = 64, 16, 2048
LAUNCHES = {  # name: (world_size, nodes)
    "1 process": (1, 1),
    "1 machine x 2 processes": (2, 1),
    "2 machines x 1 process": (2, 2),
}


def emit(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(
    shape: list[int], hidden: list[int], world_size: int, nodes: int, settings: argparse.Namespace
) -> tuple[float, float]:
    """(ms per training step, start-up seconds) of one launch."""
    images = torch.randint(0, 256, (EXAMPLES, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    encoder = build_model("encoder", "mlp", data_shape=shape, latent_dim=LATENT_DIM, hidden=hidden)
    device = "cuda" if settings.backend == "nccl" else "cpu"
    distributed = {"world_size": world_size, "nodes": nodes, "backend": settings.backend}
    if nodes > 1:
        distributed["rendezvous"] = settings.rendezvous
    log_every = settings.steps // 3
    config = TrainConfig(
        name=f"bench-{world_size}x{nodes}",
        max_steps=settings.steps,
        batch_size=BATCH,
        lr=1e-3,
        log_every=log_every,
        eval_every=settings.steps,
        checkpoint_every=settings.steps,
        device=device,
        compile="off",
        **distributed,
    )
    start = time.perf_counter()
    result = train(encoder, partial(encoder_step_loss, loss_name="gme"), [images], config)
    wall = time.perf_counter() - start
    first, last = result.history[0], result.history[-1]  # the first record leaves the warm-up steps out
    ms_per_step = 1000 * (last["train_elapsed_s"] - first["train_elapsed_s"]) / (last["step"] - first["step"])
    return ms_per_step, wall - last["train_elapsed_s"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.many_machines", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every launch (default 3)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per launch (default 300)")
    parser.add_argument("--backend", choices=["gloo", "nccl"], default="gloo", help="process-group backend (default gloo)")
    settings = parser.parse_args(argv)
    settings.rendezvous = f"127.0.0.1:{free_port()}"
    # Every launched process gets half the cores, whichever "machine" it is on: the two loopback machines share this
    # one, and each would otherwise take all of its cores (the one-process launch keeps them all, in this process).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // 2)))
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "gpe_pipeline", "worker", "--rendezvous", settings.rendezvous]
    worker = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    load = OtherLoad()
    samples = {(size, launch): [] for size in SIZES for launch in LAUNCHES}
    for repeat in range(settings.repeats):
        for size, (shape, hidden) in SIZES.items():
            for launch, (world_size, nodes) in LAUNCHES.items():
                samples[size, launch].append(measure(shape, hidden, world_size, nodes, settings))
                ms, startup = samples[size, launch][-1]
                emit(f"repeat {repeat + 1}: {size}, {launch}: {ms:.2f} ms/step, start-up {startup:.1f} s")
    rows = []
    for (size, launch), runs in samples.items():
        ms = [run[0] for run in runs]
        reference = median([run[0] for run in samples[size, "1 machine x 2 processes"]])
        rows.append(
            [
                size,
                launch,
                f"{median(ms):.2f} ({min(ms):.2f}-{max(ms):.2f})",
                f"{median(ms) / reference:.2f}" if LAUNCHES[launch][0] > 1 else "",
                f"{median([run[1] for run in runs]):.1f}",
            ]
        )
    worker.terminate()  # it would also leave when this process exits (the head's store then says the run ended)
    worker.wait()
    emit()
    emit(table(["machine", ""], [[k, v] for k, v in machine().items()]))
    emit(f"\nCPU taken by other processes during the run: {load.fraction():.0%} of all cores")
    emit(
        f"{settings.steps} steps per launch, global batch {BATCH}, {settings.backend}, {settings.repeats} interleaved repeats; "
        f"{torch.get_num_threads()} threads in the one process, {os.environ['OMP_NUM_THREADS']} in each of two\n"
    )
    header = ["network", "launch", "ms/step median (min-max)", "vs 1 machine x 2", "start-up s (median)"]
    emit(table(header, rows))


if __name__ == "__main__":
    main()
