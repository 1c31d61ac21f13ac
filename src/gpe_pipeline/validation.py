"""Checks of every parameter a run will use, made before any node runs.

A bad value (unknown dataset or architecture, batch size < 2 for the GME loss,
latent size < 1, a non-positive learning rate ...) fails the run with one line
that names the parameter, before ingest or training touch anything on disk.
The checks are the core's own constructors run on the parameters, so they can
never drift from what the stages accept.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch

from gpe_pipeline.core.data import IMAGE_DTYPES, DatasetSettings, check_fraction, data_shape, data_value_range
from gpe_pipeline.core.distributed import resolve_backend
from gpe_pipeline.core.losses import ENCODER_LOSSES
from gpe_pipeline.core.sampling import check_solver
from gpe_pipeline.core.training import TrainConfig, valid_device
from gpe_pipeline.params import ParameterError, check_decoder_covers_data, joint_min_batch_size, model_from_params
from gpe_pipeline.variants import run_parameters

__all__ = ["ParameterError", "validate_parameters", "validate_run"]

ENCODER_METHODS = ("gpe", "vae", "ae")


def sections_read(pipeline: Any) -> dict[str, set[str]]:
    """The parameter sections read in each namespace, {namespace: {section, ...}} ("" for the shared sections).

    `params:<namespace>.<section>` is a namespace's own section (its stages', or a summary reading a variant's), for
    the longest namespace of the pipeline's nodes that prefixes it; any other `params:<section>...` is a shared
    one. pipeline: a Kedro Pipeline.
    """
    namespaces = sorted(pipeline_namespaces(pipeline), key=len, reverse=True)
    read: dict[str, set[str]] = {}
    for name in {name for node in pipeline.nodes for name in node.inputs if name.startswith("params:")}:
        key = name.removeprefix("params:")
        namespace = next((ns for ns in namespaces if key.startswith(f"{ns}.")), "")
        read.setdefault(namespace, set()).add(key.removeprefix(f"{namespace}.").split(".")[0] if namespace else key.split(".")[0])
    return read


def pipeline_namespaces(pipeline: Any) -> set[str]:
    """The namespaces of a pipeline's nodes (compare.vae, exp_gmm_latents, ...)."""
    return {node.namespace for node in pipeline.nodes if node.namespace}


def validate_run(params: dict[str, Any], pipeline: Any, resolved: dict[str, dict[str, Any]] | None = None) -> None:
    """Check every parameter section a pipeline's nodes read: the shared ones, and each variant's merged ones.

    resolved: the run's merged variant sections (variants.run_parameters, which the run computes once before its
    first node); None computes them here. Unknown variant names are refused.
    """
    if resolved is None:
        resolved = run_parameters(params, pipeline_namespaces(pipeline))
    for namespace, sections in sorted(sections_read(pipeline).items()):
        validate_parameters({**params, **resolved.get(namespace, {})}, sections)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_training(section: str, params: dict[str, Any], min_batch_size: int = 1) -> None:
    training = params.get("training")
    if not isinstance(training, dict):
        raise ParameterError(f"{section}.training is missing: copy it from conf/base/parameters_{section}.yml")
    known = set(TrainConfig.__dataclass_fields__) - {"name", "params_key", "min_batch_size", "target_metric"}
    unknown = sorted(set(training) - known)
    if unknown:
        raise ParameterError(f"unknown key(s) {unknown} in {section}.training: the known keys are {sorted(known)}")
    try:
        config = TrainConfig(
            name=section, params_key=f"{section}.training", min_batch_size=min_batch_size, target_metric="x", **training
        )
    except (ValueError, TypeError) as err:
        raise ParameterError(str(err)) from err
    # NCCL puts one process on each GPU: refuse more processes than GPUs now rather than when the stage starts.
    # This machine's share is checked (with nodes > 1 every machine runs world_size / nodes processes).
    per_machine = config.world_size // config.nodes
    if config.world_size > 1 and resolve_backend(config.backend) == "nccl" and torch.cuda.device_count() < per_machine:
        shared = f" over {config.nodes} machines ({per_machine} each)" if config.nodes > 1 else ""
        raise ParameterError(
            f"{section}.training.world_size is {config.world_size}{shared}, but NCCL needs one GPU per process and "
            f"{torch.cuda.device_count()} are visible: lower it, or set {section}.training.backend to gloo"
        )


def validate_parameters(params: dict[str, Any], sections: set[str]) -> None:
    """Raise ParameterError for the first parameter of the given sections that the stages cannot work with.

    sections: the parameter sections the nodes about to run read (ingest, train_encoder, ...). The models are built on the meta
    device: their constructors check the parameters without allocating or initialising any weight (the paper's
    CelebA-HQ networks hold 225 M of them).
    """
    with torch.device("meta"):
        _validate(params, sections)


def _validate(params: dict[str, Any], sections: set[str]) -> None:
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
    if ingest.get("image_dtype", "float32") not in IMAGE_DTYPES:
        raise ParameterError(f"ingest.image_dtype must be one of {list(IMAGE_DTYPES)}, got {ingest.get('image_dtype')!r}")
    if "ingest" in sections:
        _check_ingest(ingest)
    encoder = params.get("train_encoder", {})
    latent_dim = encoder.get("latent_dim")
    if "train_encoder" in sections:
        if not _integer(latent_dim) or latent_dim < 1:
            raise ParameterError(f"train_encoder.latent_dim must be an integer >= 1, got {latent_dim!r}")
        _check_method(encoder)
        if not isinstance(encoder.get("eval_geometry", False), bool):
            raise ParameterError(f"train_encoder.eval_geometry must be true or false, got {encoder['eval_geometry']!r}")
        if encoder.get("method", "gpe") == "gpe":
            model_from_params("encoder", "train_encoder", encoder, data_shape=shape, latent_dim=latent_dim)
            _check_training("train_encoder", encoder, min_batch_size=2)
        else:  # the joint trainer: the Gaussian encoder, the decoder stage's decoder and its training settings
            model_from_params("gaussian_encoder", "train_encoder", encoder, data_shape=shape, latent_dim=latent_dim)
            decoder_section = params.get("train_decoder", {})
            model_from_params("decoder", "train_decoder", decoder_section, data_shape=shape, latent_dim=latent_dim)
            _check_training("train_decoder", decoder_section, min_batch_size=joint_min_batch_size(encoder))
            if not isinstance(encoder.get("training"), dict):  # only its checkpoint_path is read
                raise ParameterError("train_encoder.training is missing: copy it from conf/base/parameters_train_encoder.yml")
        augment = encoder.get("augment") or {}
        unknown = sorted(set(augment) - {"hflip", "crop_scale"})
        if unknown or not isinstance(augment.get("hflip", False), bool) or not 0 < augment.get("crop_scale", 1.0) <= 1:
            raise ParameterError(f"train_encoder.augment takes hflip (true/false) and crop_scale in (0, 1], got {augment}")
    latent_dim = latent_dim if _integer(latent_dim) and latent_dim >= 1 else 1  # later stages take d from the cached latents
    if "cache_latents" in sections:
        batch_size = params.get("cache_latents", {}).get("batch_size", 1024)
        if not _integer(batch_size) or batch_size < 1:
            raise ParameterError(f"cache_latents.batch_size must be an integer >= 1, got {batch_size!r}")
        _check_device("cache_latents", params.get("cache_latents", {}))
    if "train_decoder" in sections:
        section = params.get("train_decoder", {})
        decoder = model_from_params("decoder", "train_decoder", section, data_shape=shape, latent_dim=latent_dim)
        dataset = ingest.get("dataset")
        check_decoder_covers_data(decoder, data_value_range(dataset), f"dataset '{dataset}'", "train_decoder", section)
        _check_training("train_decoder", section)
        if not isinstance(section.get("fresh_decoder", False), bool):
            raise ParameterError(f"train_decoder.fresh_decoder must be true or false, got {section['fresh_decoder']!r}")
    if "train_flow" in sections:
        flow = params.get("train_flow", {})
        model_from_params("velocity", "train_flow", flow, latent_dim=latent_dim)
        _check_training("train_flow", flow)
    if "evaluate" in sections:
        _check_evaluate(params.get("evaluate", {}), shape)


def _check_ingest(ingest: dict[str, Any]) -> None:
    known = {setting.name for setting in fields(DatasetSettings)}
    unknown = sorted(set(ingest) - known)
    if unknown:
        raise ParameterError(f"unknown key(s) {unknown} in ingest: the known keys are {sorted(known)}")
    if ingest.get("dataset") == "image_folder" and not ingest.get("path"):
        raise ParameterError("ingest.path must name the image folder when ingest.dataset is image_folder")
    for key in ("heldout_fraction", "validation_fraction"):
        try:
            check_fraction(f"ingest.{key}", ingest.get(key, 0.1))
        except ValueError as err:
            raise ParameterError(str(err)) from err
    limit = ingest.get("max_validation")
    if limit is not None and (not _integer(limit) or limit < 1):
        raise ParameterError(f"ingest.max_validation must be null or an integer >= 1, got {limit!r}")


def _check_method(encoder: dict[str, Any]) -> None:
    """train_encoder.method, loss, beta and mds_weight (SPEC 1: GPE, or the VAE family trained jointly)."""
    method = encoder.get("method", "gpe")
    if method not in ENCODER_METHODS:
        raise ParameterError(f"unknown train_encoder.method '{method}': choose one of {list(ENCODER_METHODS)}")
    if encoder.get("loss", "gme") not in ENCODER_LOSSES:
        raise ParameterError(f"unknown train_encoder.loss '{encoder.get('loss')}': choose one of {sorted(ENCODER_LOSSES)}")
    for key in ("beta", "mds_weight"):
        value = encoder.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ParameterError(f"train_encoder.{key} must be a number >= 0, got {value!r}")
    if method == "ae" and encoder.get("beta", 0.0) != 0:
        raise ParameterError(
            f"train_encoder.beta must be 0 for method ae (the AE family has no KL term), got {encoder['beta']!r}: "
            "set it to 0 or use method vae"
        )


def _check_device(section: str, params: dict[str, Any]) -> None:
    if not valid_device(params.get("device", "auto")):
        raise ParameterError(f"{section}.device must be auto, cpu or cuda[:N], got {params['device']!r}")


def _check_evaluate(evaluate: dict[str, Any], shape: list[int]) -> None:
    _check_device("evaluate", evaluate)
    integers = [("max_points", 2), ("geometry_points", 2), ("neighbours", 1), ("distortion_points", 1), ("batch_size", 1)]
    integers += [("kid.subset_size", 2), ("kid.subsets", 1), ("bootstrap.resamples", 1), ("bootstrap.max_features", 0)]
    for key, minimum in integers:
        section, _, name = key.rpartition(".")
        value = (evaluate.get(section) or {}).get(name) if section else evaluate.get(name)
        if not _integer(value) or value < minimum:
            raise ParameterError(f"evaluate.{key} must be an integer >= {minimum}, got {value!r}")
    confidence = (evaluate.get("bootstrap") or {}).get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ParameterError(f"evaluate.bootstrap.confidence must be a number in (0, 1), got {confidence!r}")
    sampling = evaluate.get("sampling", {})
    try:
        check_solver(sampling.get("solver"), sampling.get("steps"), sampling.get("rtol", 1e-5), sampling.get("atol", 1e-5))
    except ValueError as err:
        raise ParameterError(f"evaluate.sampling: {err}") from err
    classifier = evaluate.get("classifier", {})
    model_from_params("classifier", "evaluate.classifier", classifier, data_shape=shape, num_classes=2)
    _check_training("evaluate.classifier", classifier)
