"""What every section shares: wall time between step ends (CUDA synchronised at both marks), the machine, markdown tables."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch

from gpe_pipeline.machine import describe_machine
from gpe_pipeline.paper import PAPER_SECONDS_PER_ITERATION, PAPER_TABLE2_DATASETS

# The paper's Table 2, seconds per iteration on a V100: (encoder, decoder), by dataset.
PAPER_TABLE2 = {
    dataset: (PAPER_SECONDS_PER_ITERATION["GPE encoder"][i], PAPER_SECONDS_PER_ITERATION["GPE decoder"][i])
    for i, dataset in enumerate(PAPER_TABLE2_DATASETS)
}


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so a timer read covers it; nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock:
    """An on_step_end callback: wall time from the end of step `first` to the end of step `last`."""

    def __init__(self, device: torch.device, first: int, last: int):
        self.device, self.first, self.last = device, first, last
        self.marks: dict[int, float] = {}

    def __call__(self, step: int) -> None:
        if step in (self.first, self.last):  # synchronise only here: a per-step sync would change what is measured
            sync(self.device)
            self.marks[step] = time.perf_counter()

    def ms_per_step(self) -> float:
        return 1000 * (self.marks[self.last] - self.marks[self.first]) / (self.last - self.first)


def time_steps(step_fn: Callable[[], object], device: torch.device, warmup: int, steps: int) -> float:
    """Milliseconds per call of step_fn over `steps` calls that follow `warmup` untimed ones."""
    clock = StepClock(device, warmup, warmup + steps)
    clock(0)
    for step in range(1, warmup + steps + 1):
        step_fn()
        clock(step)
    return clock.ms_per_step()


def interleaved(repeats: int, *measures: Callable[[], float]) -> list[list[float]]:
    """Run the measurements in turn (a, b, a, b, ...) `repeats` times; the samples of each."""
    samples: list[list[float]] = [[] for _ in measures]
    for _ in range(repeats):
        for sample, measure in zip(samples, measures, strict=True):
            sample.append(measure())
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def busy_cpu_seconds() -> float:
    """CPU seconds all cores of the machine have spent busy since boot (/proc/stat; nan where it is missing)."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in stat.readline().split()[1:9])
    except OSError:
        return float("nan")
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds used by this process and its finished children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class OtherLoad:
    """How much CPU other processes took while the suite ran: the machine's busy time less this process's own."""

    def __init__(self):
        self.start = (time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds())

    def fraction(self) -> float:
        """Other processes' CPU time as a fraction of all cores over the elapsed wall time."""
        now = (time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds())
        wall, busy, own = (b - a for a, b in zip(self.start, now, strict=True))
        return max(busy - own, 0.0) / (wall * (os.cpu_count() or 1))


def machine() -> dict[str, str]:
    """What the numbers were measured on: gpe_pipeline.machine's description, plus the threads and device used."""
    described = describe_machine()
    return {
        "host": described["host"],
        "CPU": described["cpu"],
        "CPU cores (os.cpu_count)": described["cpu_cores"],
        "torch": described["torch"],
        "torch.get_num_threads()": str(torch.get_num_threads()),
        "CUDA device": described["gpu"],
        "device used": "cuda" if torch.cuda.is_available() else "cpu",
        "python": described["python"],
    }


def table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
