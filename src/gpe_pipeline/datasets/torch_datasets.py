"""Catalog entries for torch objects, saved with `torch.save` and loaded with `weights_only=True`.

`TorchModelDataset` stores a model's state dict together with the architecture
name and arguments that rebuild it (`model.build_spec`), so loading needs no
code beyond the catalog entry. `TorchTensorDataset` stores a tensor or a dict
or list of tensors and plain values (cached latents, splits, scale statistics).
Paths go through fsspec, so `s3://`, `gs://` and other remote stores work.
`load_args: {mmap: true}` memory-maps a local file instead of reading it into memory:
a set too large to hold twice (CelebA-HQ at 256x256 is 5.9 GB as uint8) is then paged
in from the file ingest wrote once, and batches index it directly.
A file that cannot be read (truncated, overwritten) fails with one line that names it
and the pipeline that rebuilds it (`rebuilt_by:` in the catalog entry).
"""

from __future__ import annotations

import io
import os
from pathlib import PurePosixPath
from typing import Any

import fsspec
import torch
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_filepath_str, get_protocol_and_path
from torch import nn

from gpe_pipeline.core.errors import UnreadableFileError
from gpe_pipeline.core.files import read_torch_file
from gpe_pipeline.core.models import NoModel, model_from_spec


class UnreadableCatalogFileError(UnreadableFileError, DatasetError):
    """A catalog entry's file cannot be read; the message names it and the pipeline that rebuilds it.

    A DatasetError too, so Kedro's load wrapper passes it on as it is.
    """


class _TorchFileDataset(AbstractVersionedDataset):
    kind = "torch file"  # what the file holds, for error messages

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        load_args: dict[str, Any] | None = None,
        rebuilt_by: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """rebuilt_by: the pipeline whose run writes this file, named when the file cannot be read."""
        if rebuilt_by is not None and not isinstance(rebuilt_by, str):
            raise DatasetError(f"{filepath}: rebuilt_by must be a pipeline name, got {rebuilt_by!r}")
        self._rebuilt_by = rebuilt_by
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._load_args = dict(load_args or {})
        unknown = set(self._load_args) - {"mmap"}
        if unknown:
            raise DatasetError(f"{filepath}: unknown load_args {sorted(unknown)}; the only one is mmap (true or false)")
        if self._load_args.get("mmap") and protocol != "file":
            raise DatasetError(f"{filepath}: load_args mmap needs a local file, not {protocol}://; set mmap: false")
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _read_payload(self) -> Any:
        path = get_filepath_str(self._get_load_path(), self._protocol)
        try:
            if self._load_args.get("mmap"):  # storages stay in the file; pages are read when touched
                return read_torch_file(path, mmap=True)
            with self._fs.open(path, "rb") as f:
                return read_torch_file(io.BytesIO(f.read()))
        except UnreadableFileError as err:
            raise self.unreadable(path) from err

    def unreadable(self, path: str) -> UnreadableCatalogFileError:
        """The one-line error for a file that cannot be read: which file, and how to rebuild it."""
        if self._protocol == "file" and os.path.isabs(path) and path.startswith(os.getcwd() + os.sep):
            path = os.path.relpath(path)  # data/06_models/encoder.pt, as the catalog names it
        rebuild = (
            f"re-run `kedro run --pipeline={self._rebuilt_by}` to rebuild it"
            if self._rebuilt_by
            else "re-run the pipeline that writes it to rebuild it"
        )
        return UnreadableCatalogFileError(f"{path} cannot be read (truncated or not a {self.kind}): {rebuild}")

    def _write_payload(self, payload: Any) -> None:
        path = get_filepath_str(self._get_save_path(), self._protocol)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        if self._protocol == "file":  # local files are replaced atomically so a crash never leaves half a model
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(buffer.getvalue())
            os.replace(tmp, path)
        else:
            with self._fs.open(path, "wb") as f:
                f.write(buffer.getvalue())
        self._invalidate_cache()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "version": self._version,
            "load_args": self._load_args,
            "rebuilt_by": self._rebuilt_by,
        }

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(path)

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))


class TorchModelDataset(_TorchFileDataset):
    """An `nn.Module` built by `gpe_pipeline.core.models.build_model`, saved as spec + state dict.

    A `NoModel` (a stage with no model to hand on) is stored as an explicit "no model" record and loads as NoModel.
    """

    kind = "model file"

    def load(self) -> nn.Module:
        payload = self._read_payload()
        if not isinstance(payload, dict) or "spec" not in payload or "state_dict" not in payload:
            raise self.unreadable(get_filepath_str(self._get_load_path(), self._protocol))
        if payload["spec"] is None:
            return NoModel()
        try:
            model = model_from_spec(payload["spec"], payload["state_dict"])
        except (ValueError, TypeError, KeyError, RuntimeError) as err:  # a spec or weights this code cannot rebuild
            raise self.unreadable(get_filepath_str(self._get_load_path(), self._protocol)) from err
        return model.eval()

    def save(self, model: nn.Module) -> None:
        if isinstance(model, NoModel):
            self._write_payload({"spec": None, "state_dict": None})
            return
        spec = getattr(model, "build_spec", None)
        if spec is None:
            raise DatasetError(f"{type(model).__name__} has no build_spec: build models with core.models.build_model")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        self._write_payload({"spec": spec.as_dict(), "state_dict": state})


class TorchTensorDataset(_TorchFileDataset):
    """A tensor, or a dict/list of tensors and plain Python values."""

    kind = "tensor file"

    def load(self) -> Any:
        return self._read_payload()

    def save(self, data: Any) -> None:
        self._write_payload(data)
