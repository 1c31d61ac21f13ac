"""Data-parallel training on PyTorch's own engine (DDP), launched from inside a process.

`spawn(world_size, backend, function, *args)` starts `world_size` processes
with a process group (NCCL on GPU, gloo on CPU), runs `function(*args)` in each
and returns rank 0's result: the training loop uses it so that `kedro run`
stays the entry point (no re-executed command line, no second launcher).

The pairwise losses (GME, MDS1, MDS2, R_MDS) are not per-example means: each
pair (i, j) couples two examples. `distributed_pairwise_loss` pairs this rank's
rows with the batch gathered from every rank through the differentiable
all-gather, scaled so that DDP's gradient averaging gives exactly the
single-process gradient of the global batch.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from .losses import pairwise_rows_loss

BACKENDS = ("auto", "gloo", "nccl")


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(rows: Tensor, differentiable: bool) -> Tensor:
    """Concatenate every rank's (b, ...) rows in rank order: (world_size * b, ...).

    differentiable=True uses the autograd-aware all-gather, whose backward sends
    each rank the gradient of its own rows.
    """
    if world_size() == 1:
        return rows
    if differentiable:
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(rows))
    parts = [torch.empty_like(rows) for _ in range(world_size())]
    dist.all_gather(parts, rows.contiguous())
    return torch.cat(parts)


def distributed_pairwise_loss(residual, latents: Tensor, data: Tensor) -> Tensor:
    """A pairwise loss (the mean over all B x B pairs of residual^2) of the global batch, from this rank's rows.

    residual: one of losses.PAIRWISE_RESIDUALS. latents (b, d) and data (b, ...)
    are this rank's rows. One process: the batch mean. Several: (sum of this
    rank's rows' squared residuals against the gathered batch) / B^2 * world_size,
    so the sum over ranks is world_size * L and DDP's averaging of gradients leaves grad L.
    """
    world = world_size()
    if world == 1:
        return pairwise_rows_loss(residual, latents, data, latents, data) / latents.shape[0] ** 2
    all_latents = gather_rows(latents, differentiable=True)
    all_data = gather_rows(data, differentiable=False)
    return pairwise_rows_loss(residual, latents, data, all_latents, all_data) * (world / all_latents.shape[0] ** 2)


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's picklable `value`, in rank order ([value] with one process)."""
    if world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def mean_over_ranks(value: Tensor) -> Tensor:
    """The average of a tensor over ranks (itself with one process)."""
    if world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on at least one (keeps ranks stopping together)."""
    if world_size() == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown distributed backend '{backend}': choose one of {list(BACKENDS)}")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    return backend


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(process_rank: int, world: int, backend: str, port: int, result_path: str, function: Callable, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if process_rank == 0:  # only rank 0 reports progress; spawned processes start without logging configured
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if backend == "nccl":
        torch.cuda.set_device(process_rank)
    dist.init_process_group(backend, rank=process_rank, world_size=world)
    try:
        result = function(*args)
        if process_rank == 0:
            torch.save(result, result_path)
        dist.barrier()  # no rank tears the group down while another still uses it
    finally:
        dist.destroy_process_group()


def spawn(world: int, backend: str, function: Callable, *args: Any) -> Any:
    """Run function(*args) in `world` fresh processes joined in a process group; return rank 0's result.

    function and args must be picklable (module-level functions, functools.partial,
    tensors, modules). The result travels back through torch.save in a temporary
    folder, so it must hold tensors and plain Python values.
    """
    backend = resolve_backend(backend)
    if backend == "nccl" and torch.cuda.device_count() < world:
        raise ValueError(f"world_size {world} needs {world} GPUs, {torch.cuda.device_count()} are visible: lower world_size")
    with tempfile.TemporaryDirectory(prefix="gpe-ddp-") as folder:
        result_path = str(Path(folder) / "result.pt")
        mp.start_processes(
            _worker, args=(world, backend, _free_port(), result_path, function, args), nprocs=world, start_method="spawn"
        )
        return torch.load(result_path, weights_only=True)
