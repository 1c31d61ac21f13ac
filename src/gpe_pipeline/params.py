"""Turning a stage's parameter section into core objects, with errors that name the parameter key."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

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
