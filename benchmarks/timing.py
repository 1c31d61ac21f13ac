"""What every benchmark shares: wall time between step ends (CUDA synchronised at both marks), the machine, markdown tables, report files."""

from __future__ import annotations

import datetime
import math
import os
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gpe_pipeline.core.files import write_text_atomically
from gpe_pipeline.machine import describe_machine
from gpe_pipeline.paper import PAPER_SECONDS_PER_ITERATION, PAPER_TABLE2_DATASETS

# The paper's Table 2, seconds per iteration on a V100: (encoder, decoder), by dataset.
PAPER_TABLE2 = {
    dataset: (PAPER_SECONDS_PER_ITERATION["GPE encoder"][i], PAPER_SECONDS_PER_ITERATION["GPE decoder"][i])
    for i, dataset in enumerate(PAPER_TABLE2_DATASETS)
}
RESULTS = Path(__file__).resolve().parent / "results"


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so a timer read covers it; nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class WindowDone(Exception):
    """Raised by a StepClock made with stop=True when its window closes: ends the loop it times there."""


class StepClock:
    """An on_step_end callback: wall time from the end of step `first` to the end of step `last`.

    With `seconds`, the window also closes at the first step end that many seconds after step `first`'s. With `stop`,
    the clock raises WindowDone where the window closes, so `train` ends there, before its final bookkeeping (which
    moves the model to the CPU). Step 1 is marked too when it comes before the window: first_step_s (compilation).
    """

    def __init__(self, device: torch.device, first: int, last: int, seconds: float = math.inf, stop: bool = False):
        self.device, self.first, self.last, self.seconds, self.stop = device, first, last, seconds, stop
        self.created = time.perf_counter()
        self.marks: dict[int, float] = {}
        self.end: int | None = None  # the step the window closed at

    def __call__(self, step: int) -> None:
        if self.end is not None:
            return
        if step == self.first or step == 1 < self.first:
            self.mark(step)
        elif step > self.first and (step == self.last or time.perf_counter() - self.marks[self.first] >= self.seconds):
            self.mark(step)
            self.end = step
            if self.stop:
                raise WindowDone

    def mark(self, step: int) -> None:
        sync(self.device)  # only at marks: a per-step synchronisation would change what is measured
        self.marks[step] = time.perf_counter()

    @property
    def steps(self) -> int:
        """Steps inside the closed window."""
        return self.end - self.first

    @property
    def first_step_s(self) -> float:
        """Seconds from the clock's creation to the end of step 1."""
        return self.marks[1] - self.created

    def ms_per_step(self) -> float:
        return 1000 * (self.marks[self.end] - self.marks[self.first]) / self.steps


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


def emit(text: str) -> None:
    print(text, flush=True)  # noqa: T201


def results_path(machine_name: str, prefix: str = "", suffix: str = "") -> Path:
    """benchmarks/results/<prefix><machine name, lower case, runs of other characters as one dash>-<date><suffix>.md"""
    slug = re.sub(r"[^a-z0-9]+", "-", machine_name.lower()).strip("-")
    return RESULTS / f"{prefix}{slug}-{datetime.date.today().isoformat()}{suffix}.md"


write_atomically = write_text_atomically  # a run stopped mid-write leaves the previous report whole
