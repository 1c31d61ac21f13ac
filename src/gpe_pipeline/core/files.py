"""Reading back the torch files this project writes (checkpoints, models, tensors), safely; writing text files whole."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import UnreadableFileError


def read_torch_file(file: Any, mmap: bool = False) -> Any:
    """torch.load(file, weights_only=True) onto the CPU; a damaged file raises UnreadableFileError.

    torch's own message for such a file advises loading it with weights_only=False, which would run whatever
    code the file holds: the error names what went wrong instead (torch's message stays in its __cause__).
    """
    try:
        return torch.load(file, map_location="cpu", weights_only=True, **({"mmap": True} if mmap else {}))
    except (FileNotFoundError, PermissionError, IsADirectoryError):  # not damage: the caller decides
        raise
    except Exception as err:  # truncated (RuntimeError, OSError EINVAL), random bytes (UnpicklingError), empty (EOFError)
        raise UnreadableFileError(f"truncated, damaged or not a file this project wrote: {type(err).__name__}") from err


def write_text_atomically(path: Path, text: str) -> None:
    """Write text through a temporary file and a rename, so an interrupted write leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)
