"""Turning a stage's parameter section into core objects, with errors that name the parameter key."""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from gpe_pipeline.core.data import SETTINGS_READ_BY, format_range
from gpe_pipeline.core.errors import UserError
from gpe_pipeline.core.models import build_model, model_class


class ParameterError(UserError, ValueError):
    """A parameter value the run cannot use; the message names the key to change."""


def model_from_params(role: str, section: str, params: dict[str, Any], **sizes: Any) -> nn.Module:
    """Build the model `params` (one stage's section) names, with that architecture's options.

    params["model_options"] maps architecture names to their keyword options, so
    switching `architecture` also switches the options in use. sizes: what the
    data fixes (data_shape, latent_dim, num_classes). The initial weights come
    from params["training"]["seed"] alone, not from whatever used the global RNG
    before (Kedro may order independent nodes differently from one run to the next).
    """
    architecture = params.get("architecture")
    options = dict((params.get("model_options") or {}).get(architecture) or {})
    option_role = "encoder" if role == "gaussian_encoder" else role  # a Gaussian encoder takes its body's options
    try:
        accepted = inspect.signature(model_class(option_role, architecture)).parameters
    except ValueError as err:
        raise ParameterError(f"{section}: {err}") from err
    for key in options:
        if key not in accepted or key in sizes or key == "architecture":
            allowed = sorted(k for k in accepted if k not in sizes and k not in ("self", "architecture"))
            raise ParameterError(
                f"{section}.model_options.{architecture}.{key} is not an option of architecture '{architecture}' "
                f"({option_role}): use {allowed}"
            )
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's RNG stream is left as it was
            torch.manual_seed((params.get("training") or {}).get("seed", 0))
            if role == "gaussian_encoder":
                return build_model(role, architecture, **sizes, body_options=options)
            return build_model(role, architecture, **sizes, **options)
    except (ValueError, TypeError) as err:
        raise ParameterError(f"{section}: {err}") from err


def check_decoder_covers_data(
    decoder: nn.Module, data_range: tuple[float, float], data_source: str, section: str, params: dict[str, Any]
) -> None:
    """ParameterError (one line naming the key) when the decoder's outputs cannot reach the data's values.

    A tanh decoder produces values in (-1, 1): right for images in [-1, 1], hopeless for the gmm's unbounded
    coordinates, where it would train to a large reconstruction error without any sign of the cause.
    """
    out_low, out_high = getattr(decoder, "output_range", (-math.inf, math.inf))
    low, high = data_range
    if out_low <= low and high <= out_high:
        return
    architecture = params.get("architecture")
    options = (params.get("model_options") or {}).get(architecture) or {}
    if "output_activation" in inspect.signature(model_class("decoder", architecture)).parameters:
        key = f"{section}.model_options.{architecture}.output_activation"
        current, fix = options.get("output_activation", "tanh"), f"set {key} to none"
    else:
        key = f"{section}.architecture"
        current, fix = architecture, f"set {key} to mlp with model_options.mlp.output_activation none"
    raise ParameterError(
        f"{key} is {current}, whose outputs lie in {format_range((out_low, out_high))}, but {data_source} takes values in "
        f"{format_range(data_range)}: {fix}"
    )


def used_parameters(
    section: str, value: Any, architectures: dict[str, set[str]] | None = None, datasets: set[str] | None = None
) -> Any:
    """The part of one parameter section a run reads: other architectures' options and other datasets' keys left out.

    section: the section's key ("train_encoder", "ingest", ...). architectures: for a dotted path inside the
    section (e.g. "evaluate.classifier"), every architecture some variant of the run uses there besides the one
    the section names; a dict with `architecture` and `model_options` keeps only those architectures' options.
    datasets: for ingest, the datasets the run ingests besides the one it names (an experiment's own dataset).
    """
    architectures = architectures or {}

    def prune(path: str, item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        kept = {key: prune(f"{path}.{key}", child) for key, child in item.items()}
        if isinstance(item.get("model_options"), dict) and "architecture" in item:
            in_use = {item["architecture"], *architectures.get(path, set())}
            kept["model_options"] = {name: options for name, options in item["model_options"].items() if name in in_use}
        return kept

    pruned = prune(section, value)
    if section == "ingest" and isinstance(pruned, dict):
        in_use = {pruned.get("dataset"), *(datasets or set())}
        pruned = {key: item for key, item in pruned.items() if in_use & SETTINGS_READ_BY.get(key, in_use)}
    return pruned


def architectures_by_path(overrides: dict[str, Any], prefix: str = "") -> dict[str, set[str]]:
    """Every `architecture` an overrides dict sets, by dotted path of the dict that holds it (for used_parameters)."""
    found: dict[str, set[str]] = {}
    for key, item in (overrides or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        if key == "architecture" and prefix:
            found.setdefault(prefix, set()).add(item)
        elif isinstance(item, dict):
            for inner, names in architectures_by_path(item, path).items():
                found.setdefault(inner, set()).update(names)
    return found


def joint_min_batch_size(encoder_params: dict[str, Any]) -> int:
    """The smallest batch a VAE-family baseline trains on: 2 when R_MDS (a pairwise term) is on, else 1."""
    return 2 if float(encoder_params.get("mds_weight", 0.0)) > 0 else 1
