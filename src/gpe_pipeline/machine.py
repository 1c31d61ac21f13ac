"""What a number was measured on: the CPU, cores, GPU and software (no Kedro, so benchmarks and hooks share it)."""

from __future__ import annotations

import os
import platform
import socket

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine() -> dict[str, str]:
    """Host, CPU model and cores, GPU (or none), torch and Python versions."""
    return {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_cores": str(os.cpu_count()),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
