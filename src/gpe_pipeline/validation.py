"""Checks of every parameter a run will use, made before any node runs.

A bad value (unknown dataset or architecture, batch size < 2 for the GME loss,
latent size < 1, a non-positive learning rate ...) fails the run with one line
that names the parameter, before ingest or training touch anything on disk.
The checks are the core's own constructors run on the parameters, so they can
never drift from what the stages accept.
"""

from __future__ import annotations

from typing import Any

from gpe_pipeline.core.data import data_shape
from gpe_pipeline.core.losses import ENCODER_LOSSES
from gpe_pipeline.core.models import build_model
from gpe_pipeline.core.training import TrainConfig


class ParameterError(ValueError):
    """A parameter value the run cannot use; the message names the key to change."""


def _check_training(section: str, params: dict[str, Any], min_batch_size: int = 1) -> None:
    training = params.get("training")
    if not isinstance(training, dict):
        raise ParameterError(f"{section}.training is missing: copy it from conf/base/parameters_{section}.yml")
    known = set(TrainConfig.__dataclass_fields__) - {"name", "params_key", "min_batch_size", "target_metric", "extra_fingerprint"}
    unknown = sorted(set(training) - known)
    if unknown:
        raise ParameterError(f"unknown key(s) {unknown} in {section}.training: the known keys are {sorted(known)}")
    try:
        TrainConfig(name=section, params_key=f"{section}.training", min_batch_size=min_batch_size, target_metric="x", **training)
    except (ValueError, TypeError) as err:
        raise ParameterError(str(err)) from err


def _check_model(section: str, role: str, params: dict[str, Any], shape: list[int], latent_dim: Any) -> None:
    try:
        build_model(role, params.get("architecture"), data_shape=shape, latent_dim=latent_dim, **params.get("model_options", {}))
    except (ValueError, TypeError) as err:
        raise ParameterError(f"{section}: {err}") from err


def validate_parameters(params: dict[str, Any], stages: set[str]) -> None:
    """Raise ParameterError for the first parameter of the given stages that cannot work."""
    ingest = params.get("ingest", {})
    try:
        shape = data_shape(
            ingest.get("dataset"),
            image_size=ingest.get("image_size"),
            gmm_dim=(ingest.get("gmm") or {}).get("dim", 500),
            channels=ingest.get("channels", 3),
        )
    except ValueError as err:
        raise ParameterError(str(err)) from err
    if "ingest" in stages and ingest.get("dataset") == "image_folder" and not ingest.get("path"):
        raise ParameterError("ingest.path must name the image folder when ingest.dataset is image_folder")
    if "train_encoder" in stages:
        encoder = params.get("train_encoder", {})
        latent_dim = encoder.get("latent_dim")
        if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
            raise ParameterError(f"train_encoder.latent_dim must be an integer >= 1, got {latent_dim!r}")
        if encoder.get("loss", "gme") not in ENCODER_LOSSES:
            raise ParameterError(f"unknown train_encoder.loss '{encoder.get('loss')}': choose one of {sorted(ENCODER_LOSSES)}")
        _check_model("train_encoder", "encoder", encoder, shape, latent_dim)
        _check_training("train_encoder", encoder, min_batch_size=2)
    if "cache_latents" in stages:
        batch_size = params.get("cache_latents", {}).get("batch_size", 1024)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"cache_latents.batch_size must be an integer >= 1, got {batch_size!r}")
    if "train_decoder" in stages:
        decoder = params.get("train_decoder", {})
        latent_dim = params.get("train_encoder", {}).get("latent_dim", 1)
        _check_model(
            "train_decoder", "decoder", decoder, shape, latent_dim if isinstance(latent_dim, int) and latent_dim >= 1 else 1
        )
        _check_training("train_decoder", decoder)
