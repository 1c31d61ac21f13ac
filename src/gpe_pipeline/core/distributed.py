"""Data-parallel training on PyTorch's own engines: DDP, launched by torch's elastic agent from inside a process.

`launch(plan, function, *args)` runs function in `plan.world_size` processes with a
process group (NCCL on GPU, gloo on CPU), on this machine or on `plan.nodes` machines
that meet at a c10d rendezvous, and returns rank 0's result: the training loop uses it
so that `kedro run` stays the entry point (no re-executed command line). Every other
machine runs `serve_stages` (`python -m gpe_pipeline worker`), which joins each stage
the head machine announces. torch's agent restarts every machine's processes after
one fails (max_restarts); the loop then resumes from its last checkpoint.

The pairwise losses (GME, MDS1, MDS2, R_MDS) are not per-example means: each
pair (i, j) couples two examples. `distributed_pairwise_loss` pairs this rank's
rows with the batch gathered from every rank through the differentiable
all-gather, scaled so that DDP's gradient averaging gives exactly the
single-process gradient of the global batch.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import pickle
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, record
from torch.distributed.elastic.rendezvous.api import RendezvousClosedError, RendezvousTimeoutError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from .errors import UserError
from .losses import pairwise_rows_loss

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 (the head machine's first process), or the only process: the one that logs and writes."""
    return rank() == 0


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


def local_rank() -> int:
    """This process's index among its machine's processes (the GPU it drives); 0 outside a process group."""
    return int(os.environ.get("LOCAL_RANK", 0)) if world_size() > 1 else 0


def restarts() -> int:
    """How often torch's elastic agents restarted this stage's processes so far (the largest count among the machines)."""
    return _restarts


_restarts = 0  # set by _elastic_rank in every launched process


class MachinesMissingError(UserError):
    """The head machine's rendezvous timed out before every machine of the stage joined."""


@dataclass(frozen=True)
class Launch:
    """Where a stage's processes run and how lost ones come back (TrainConfig's world_size ... rendezvous_timeout).

    rendezvous: HOST:PORT of the head machine (the one running `kedro run`); None on one machine: a free port
    on 127.0.0.1. key_root: where these settings live in the parameters, for messages.
    """

    name: str
    world_size: int
    nodes: int = 1
    backend: str = "auto"
    rendezvous: str | None = None
    max_restarts: int = 0
    rendezvous_timeout: int = 600
    key_root: str = "train"

    @property
    def nproc_per_node(self) -> int:
        return self.world_size // self.nodes


def launch(plan: Launch, function: Callable, *args: Any, **main_only: Any) -> Any:
    """Run function(*args, **main_only) in plan.world_size processes on plan.nodes machines; return rank 0's result.

    torch's elastic agent starts this machine's processes (and restarts every machine's from scratch after a
    failure, up to plan.max_restarts times); rank 0 is this machine's first process, the only one that receives
    main_only's values (every other rank gets None for each). With nodes > 1 each other machine runs
    `python -m gpe_pipeline worker --rendezvous HOST:PORT` (serve_stages), whose processes receive function and
    args from rank 0. Everything must pickle; the result travels back through torch.save in a temporary folder,
    so it must hold tensors and plain Python values. A UserError raised in rank 0 is raised here.
    """
    backend = resolve_backend(plan.backend)
    if backend == "nccl" and torch.cuda.device_count() < plan.nproc_per_node:
        raise ValueError(
            f"{plan.nproc_per_node} processes per machine need as many GPUs under NCCL, "
            f"{torch.cuda.device_count()} are visible: lower {plan.key_root}.world_size"
        )
    endpoint = plan.rendezvous or f"127.0.0.1:{_free_port()}"
    stage = {
        "run_id": plan.name,
        "nodes": plan.nodes,
        "nproc_per_node": plan.nproc_per_node,
        "max_restarts": plan.max_restarts,
        "join_timeout": plan.rendezvous_timeout,
    }
    board = _StageBoard.of(endpoint, plan) if plan.nodes > 1 else None
    if board is not None:
        stage["run_id"] = board.announce(stage)
    with tempfile.TemporaryDirectory(prefix="gpe-ddp-") as folder:
        try:
            with _fresh_store_every_attempt():
                elastic_launch(_launch_config(stage, endpoint, is_host=True), _elastic_rank)(
                    (function, args, main_only, backend), folder
                )
        except RendezvousTimeoutError:
            joined = 1 + board.joined(stage["run_id"]) if board is not None else 1
            raise MachinesMissingError(
                f"{plan.name}: {joined} of {plan.nodes} machines joined the rendezvous at {endpoint} within "
                f"{plan.rendezvous_timeout} s: run `python -m gpe_pipeline worker --rendezvous {endpoint}` on each other "
                f"machine, or raise {plan.key_root}.rendezvous_timeout"
            ) from None
        except ChildFailedError as failure:
            _raise_saved_user_error(folder, failure)
            raise
        _raise_saved_user_error(folder)
        return torch.load(Path(folder) / RESULT_FILE, weights_only=True)


RESULT_FILE, ERROR_FILE = "result.pt", "user_error.pkl"


def _raise_saved_user_error(folder: str, cause: BaseException | None = None) -> None:
    path = Path(folder) / ERROR_FILE
    if path.exists():
        raise pickle.loads(path.read_bytes()) from cause


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """HOST:PORT (or [IPv6]:PORT) as (host, port); ValueError when it is not one."""
    host, _, port = endpoint.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"'{endpoint}' is not HOST:PORT with a port in 1..65535")
    return host, int(port)


@contextlib.contextmanager
def _fresh_store_every_attempt() -> Iterator[None]:
    """Within it, torch's agents give every attempt (start or restart) a new store for the processes' group.

    By default the agents share one store across a stage's restarts, and a restarted process group then reads
    the addresses the previous attempt's processes left in it (connection refused, the restart fails). With
    sharing off, the first process of each attempt hosts a new store on a free port.
    """
    before = os.environ.get(NO_SHARED_STORE_VARIABLE)
    os.environ[NO_SHARED_STORE_VARIABLE] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[NO_SHARED_STORE_VARIABLE]
        else:
            os.environ[NO_SHARED_STORE_VARIABLE] = before


NO_SHARED_STORE_VARIABLE = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"
LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"  # the project's plain console lines


def _first_line(error: BaseException) -> str:
    """What went wrong, in one line: for torch's ChildFailedError, its first failed process's message."""
    message = str(error)
    if isinstance(error, ChildFailedError):
        failure = error.get_first_failure()[1].message
        message = failure.get("message", "") if isinstance(failure, dict) else str(failure)
    return (message.strip().splitlines() or [type(error).__name__])[-1]


def _launch_config(stage: dict[str, Any], endpoint: str, is_host: bool) -> LaunchConfig:
    """torch's elastic launch settings of one stage, the same on every machine but for who hosts the rendezvous store."""
    return LaunchConfig(
        min_nodes=stage["nodes"],
        max_nodes=stage["nodes"],
        nproc_per_node=stage["nproc_per_node"],
        run_id=stage["run_id"],
        rdzv_backend="c10d",
        rdzv_endpoint=endpoint,
        # is_host set on both sides: on loopback every agent's hostname matches the endpoint's, and a worker
        # started first must not take the head's port
        rdzv_configs={"join_timeout": stage["join_timeout"], "is_host": is_host},
        max_restarts=stage["max_restarts"],
        start_method="spawn",
    )


class _StageBoard:
    """The head machine's announcements of its stages, in a torch TCPStore on the rendezvous port.

    The store lives as long as the head's process and the elastic rendezvous of every stage shares it (torch's
    c10d rendezvous opens its store multi-tenant): a worker machine reads stage n's settings (run id, machines,
    processes per machine, restarts, timeout) under STAGE_KEY, joins that stage's rendezvous, and reads "done"
    under the next number when the head's process exits (which waits up to GOODBYE_SECONDS for every connected
    worker to have read it).
    """

    STAGE_KEY = "gpe_pipeline/stage/{}"
    LATEST_KEY = "gpe_pipeline/latest_stage"
    DONE = "done"
    WORKERS_KEY, LEFT_KEY = "gpe_pipeline/workers", "gpe_pipeline/workers_left"  # counts of connected and departed
    GOODBYE_SECONDS = 10
    _open: dict[str, _StageBoard] = {}

    def __init__(self, store: dist.TCPStore):
        self.store = store
        self.count = 0

    @classmethod
    def of(cls, endpoint: str, plan: Launch) -> _StageBoard:
        if endpoint not in cls._open:
            host, port = split_endpoint(endpoint)
            try:
                store = dist.TCPStore(host, port, is_master=True, multi_tenant=True, wait_for_workers=False)
            except (RuntimeError, ValueError) as err:
                raise UserError(
                    f"{plan.name}: cannot open the rendezvous port {port} on this machine ({str(err).splitlines()[0]}): "
                    f"run kedro on the machine {plan.key_root}.rendezvous names, or choose a free port there"
                ) from err
            cls._open[endpoint] = board = cls(store)
            atexit.register(board.close)
        return cls._open[endpoint]

    def announce(self, stage: dict[str, Any]) -> str:
        """Publish the next stage's settings; its rendezvous run id."""
        self.count += 1
        run_id = f"{stage['run_id']}-{self.count}"
        self.store.set(self.STAGE_KEY.format(self.count), json.dumps({**stage, "run_id": run_id}))
        self.store.set(self.LATEST_KEY, str(self.count))
        return run_id

    def joined(self, run_id: str) -> int:
        """How many worker machines took up the stage with this run id."""
        return int(self.store.add(f"{run_id}/joined", 0))

    def close(self) -> None:
        """Say the run ended, and keep the store up until every connected worker has read it (at most 10 s)."""
        self.store.set(self.STAGE_KEY.format(self.count + 1), self.DONE)
        deadline = time.monotonic() + self.GOODBYE_SECONDS
        while self.store.add(self.LEFT_KEY, 0) < self.store.add(self.WORKERS_KEY, 0) and time.monotonic() < deadline:
            time.sleep(0.1)


def serve_stages(endpoint: str, wait_seconds: int = 600) -> int:
    """A worker machine: join every stage the head at `endpoint` announces, until its run ends; the exit status.

    Waits up to wait_seconds for the head's store to accept connections. Returns 0 when the head's process said
    it ended and every stage this machine joined finished; 1 otherwise (a stage failed here, the head's process
    vanished without saying so, or a SIGTERM, e.g. from scancel, stopped this machine).
    """
    host, port = split_endpoint(endpoint)
    deadline = time.monotonic() + wait_seconds
    while not _accepts_connections(host, port):  # a plain probe: torch's store client logs every failed try
        if time.monotonic() > deadline:
            raise UserError(f"no head machine answered at {endpoint} within {wait_seconds} s: start its kedro run first")
        time.sleep(1)
    board = dist.TCPStore(host, port, is_master=False, timeout=timedelta(seconds=wait_seconds))
    board.add(_StageBoard.WORKERS_KEY, 1)
    number = int(board.get(_StageBoard.LATEST_KEY)) if board.check([_StageBoard.LATEST_KEY]) else 1
    failures = 0
    try:
        while (text := _announcement(board, _StageBoard.STAGE_KEY.format(number))) != _StageBoard.DONE:
            if text is None:
                logger.error("the head machine's store at %s closed before it announced its end: its run was stopped", endpoint)
                return 1
            if not _serve_stage(json.loads(text), endpoint, board):
                failures += 1
            number += 1
    except SignalException as stop:  # torch's agent turns SIGTERM into this, from the first stage on
        logger.warning("leaving: %s", stop)
        return 1
    board.add(_StageBoard.LEFT_KEY, 1)
    logger.info("the head machine's run ended: %d stage(s) failed on this machine", failures)
    return 1 if failures else 0


def _announcement(board: dist.TCPStore, key: str) -> str | None:
    """What the head published under key, once it has; None when its store went away first."""
    try:
        while not board.check([key]):  # polled: a blocking wait would hold off SIGTERM and Ctrl-C
            time.sleep(1)
        return board.get(key).decode()
    except dist.DistError:
        return None


def _serve_stage(stage: dict[str, Any], endpoint: str, board: dist.TCPStore) -> bool:
    """Join one announced stage with this machine's processes; whether it went well here."""
    board.add(f"{stage['run_id']}/joined", 1)
    logger.info("joining stage %s (%d processes here)", stage["run_id"], stage["nproc_per_node"])
    try:
        with _fresh_store_every_attempt():
            elastic_launch(_launch_config(stage, endpoint, is_host=False), _elastic_rank)(None, None)
    except RendezvousClosedError:
        logger.info("stage %s had ended before this machine joined it", stage["run_id"])
    except SignalException:
        raise
    except Exception as err:  # this stage failed here; the head reports why, and its next stage may still run
        logger.error("stage %s failed on this machine: %s", stage["run_id"], _first_line(err))
        return False
    else:
        logger.info("stage %s finished", stage["run_id"])
    return True


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


@record
def _elastic_rank(payload: tuple | None, folder: str | None) -> None:
    """Every launched process: join the training group as its rank (the head's first process is 0), run the function.

    payload: (function, args, main_only, backend) on the head machine's processes, None on other machines'
    (they receive it from rank 0). folder: where rank 0 saves the result (the head's temporary folder).
    """
    global _restarts
    # Whole plain lines on stdout, one process per machine at INFO: a spawned process re-imports its parent's main
    # module and so may configure logging anew (Kedro's `rich` handler, which wraps every line at 80 columns).
    level = logging.INFO if int(os.environ["LOCAL_RANK"]) == 0 else logging.WARNING
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stdout, force=True)
    if "OMP_NUM_THREADS" not in os.environ:  # the machine's cores shared out (torchrun sets 1): not all cores each
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["LOCAL_WORLD_SIZE"])))
    store, elastic_rank, world = next(dist.rendezvous("env://"))  # torch's agent set RANK, MASTER_ADDR ... for it
    rank, payload, prefix, _restarts = _take_places(store, elastic_rank, world, payload)
    function, args, main_only, backend = payload
    if rank != 0:
        main_only = dict.fromkeys(main_only)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend, store=dist.PrefixStore(f"gpe_pipeline/{prefix}", store), rank=rank, world_size=world)
    try:
        if rank == 0:
            for name in (RESULT_FILE, ERROR_FILE):  # an earlier attempt's
                (Path(folder) / name).unlink(missing_ok=True)
        try:
            result = function(*args, **main_only)
        except UserError as error:  # a bad parameter or file, not a lost process: the head raises it as it is
            if rank == 0:
                (Path(folder) / ERROR_FILE).write_bytes(pickle.dumps(error))
            return
        if rank == 0:
            torch.save(result, Path(folder) / RESULT_FILE)
        dist.barrier()  # no rank tears the group down while another still uses it
    finally:
        dist.destroy_process_group()


def _take_places(store: dist.Store, elastic_rank: int, world: int, payload: tuple | None) -> tuple[int, tuple, str, int]:
    """In a gloo group with torch's ranks: (this process's training rank, the payload, a fresh key prefix, restarts).

    torch's agent numbers the machines by sorted host name, so the head may not come first: the training ranks
    order the processes head first, then by machine and local rank. The head's first process sends the payload to
    the other machines' processes, and a key prefix that keeps the training group's keys apart from every earlier
    attempt's. restarts: the largest restart count among the machines' agents (an agent that restarted because
    another machine's process failed, rather than one of its own, does not count that restart).
    """
    dist.init_process_group("gloo", store=store, rank=elastic_rank, world_size=world)  # CPU: the backend is in the payload
    try:
        me = {
            "head": payload is not None,
            "machine": int(os.environ["GROUP_RANK"]),
            "local": int(os.environ["LOCAL_RANK"]),
            "restarts": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
        }
        everyone = all_gather_objects(me)
        order = sorted(range(world), key=lambda r: (not everyone[r]["head"], everyone[r]["machine"], everyone[r]["local"]))
        source = order[0]
        header = [{"backend": payload[3], "prefix": uuid.uuid4().hex} if elastic_rank == source else None]
        dist.broadcast_object_list(header, src=source)
        remote = [r for r in range(world) if not everyone[r]["head"]]
        if remote:
            group = dist.new_group([source, *remote])
            if elastic_rank == source:
                function, args, main_only, _ = payload
                _broadcast_arguments((function, args, dict.fromkeys(main_only)), source, group)
            elif payload is None:
                payload = (*_broadcast_arguments(None, source, group), header[0]["backend"])
    finally:
        dist.destroy_process_group()
    return order.index(elastic_rank), payload, header[0]["prefix"], max(entry["restarts"] for entry in everyone)


class _TensorSlot(NamedTuple):
    index: int
    shape: tuple[int, ...]
    dtype: torch.dtype


BROADCAST_CHUNK_BYTES = 1 << 28


def _broadcast_arguments(value: tuple | None, source: int, group) -> tuple:
    """Rank `source`'s (function, args, main_only keys) on every member of group; None on the receivers.

    Tensors among args (and lists of them, the training data) travel as tensors in 256 MB chunks rather than
    inside the pickle, so a large data set is not held twice in memory on either side.
    """
    tensors: list[Tensor] = []

    def hollow(item: Any) -> Any:
        if isinstance(item, Tensor):
            tensors.append(item.contiguous())
            return _TensorSlot(len(tensors) - 1, tuple(item.shape), item.dtype)
        if isinstance(item, list) and item and all(isinstance(t, Tensor) for t in item):
            return [hollow(t) for t in item]
        return item

    def fill(item: Any) -> Any:
        if isinstance(item, _TensorSlot):
            return tensors[item.index]
        if isinstance(item, list) and item and all(isinstance(t, _TensorSlot) for t in item):
            return [fill(t) for t in item]
        return item

    sending = value is not None
    skeleton = [None]
    if sending:
        function, args, keys = value
        skeleton = [(function, tuple(hollow(a) for a in args), keys)]
    dist.broadcast_object_list(skeleton, src=source, group=group)
    function, args, keys = skeleton[0]
    slots = [s for a in args for s in (a if isinstance(a, list) else [a]) if isinstance(s, _TensorSlot)]
    if not sending:
        tensors = [torch.empty(s.shape, dtype=s.dtype) for s in slots]
    for tensor in tensors:
        flat = tensor.view(-1).view(torch.uint8)  # bytes: gloo carries every dtype that way
        for start in range(0, flat.numel(), BROADCAST_CHUNK_BYTES):
            dist.broadcast(flat[start : start + BROADCAST_CHUNK_BYTES], src=source, group=group)
    return function, tuple(fill(a) for a in args), keys
