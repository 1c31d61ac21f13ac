"""Variants: the same stages run on shared parameters with a few keys overridden, each in its own Kedro namespace.

A variant's parameters are the shared stage sections (conf/base/parameters_<stage>.yml, with any environment
file and `--params` already applied) deep-merged with the variant's overrides, which may only name keys the
sections have. Each variant's checkpoints go to a folder of its own, so variants never share a file and an
interrupted variant resumes alone. Nothing here imports Kedro: the merge is a plain function that a node, the
parameter checks and the MLflow hook all call.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from gpe_pipeline.params import ParameterError

# The sections a variant's stages read, in the order variant_parameters returns them.
STAGE_SECTIONS = ("train_encoder", "cache_latents", "train_decoder", "train_flow", "evaluate")
# Every group of variants, by its top-level parameter key (= the first part of the namespaces): the variant names.
VARIANT_GROUPS = {"compare": ("gpe", "vae", "beta_vae", "ae", "vae_mds", "ae_mds")}


def nested_get(parameters: Mapping[str, Any], dotted: str) -> Any:
    """parameters["a"]["b"] for "a.b"; None where a key is missing."""
    value: Any = parameters
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def merge_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any] | None, where: str | None) -> dict[str, Any]:
    """A deep copy of base with overrides applied, nested dicts merged key by key.

    where: the overrides' parameter key (e.g. "compare.vae.train_encoder"): an override naming a key base does not
    have is refused, naming it. None: such keys are added (combining partial overrides, see experiments.combine).
    """
    merged = copy.deepcopy(dict(base))
    for key, value in (overrides or {}).items():
        if key not in merged and where is not None:
            raise ParameterError(f"{where}.{key} overrides a key the stage does not have: the keys there are {sorted(merged)}")
        if isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            merged[key] = merge_overrides(merged[key], value, None if where is None else f"{where}.{key}")
        else:
            merged[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return merged


def namespaced_checkpoint(path: str | None, namespace: str) -> str | None:
    """data/06_models/checkpoints/encoder.pt -> data/06_models/checkpoints/<namespace>/encoder.pt."""
    if not path:
        return path
    posix = PurePosixPath(path)
    return str(posix.parent / namespace / posix.name)


def resolve_variant(namespace: str, overrides: Mapping[str, Any] | None, sections: Mapping[str, Any]) -> dict[str, Any]:
    """Every stage section of one variant: shared sections merged with its overrides, checkpoints in its own folder.

    namespace: the variant's Kedro namespace (e.g. "compare.vae"), which is also its parameter key.
    sections: the shared sections by name (at least STAGE_SECTIONS). Returns {section: merged dict}.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(STAGE_SECTIONS))
    if unknown:
        raise ParameterError(
            f"{namespace}.{unknown[0]} is not a stage section a variant can override: use {list(STAGE_SECTIONS)}"
        )
    resolved = {}
    for section in STAGE_SECTIONS:
        merged = merge_overrides(sections[section], overrides.get(section) or {}, f"{namespace}.{section}")
        training = merged.get("training")
        if isinstance(training, dict) and "checkpoint_path" in training:
            training["checkpoint_path"] = namespaced_checkpoint(training["checkpoint_path"], namespace)
        resolved[section] = merged
    return resolved


def variant_parameters(namespace: str, overrides: dict[str, Any] | None, **sections: dict[str, Any]) -> tuple[dict, ...]:
    """Node body: the variant's merged stage sections, in STAGE_SECTIONS order (bind namespace with functools.partial)."""
    resolved = resolve_variant(namespace, overrides, sections)
    return tuple(resolved[section] for section in STAGE_SECTIONS)


def method_label(train_encoder: Mapping[str, Any]) -> str:
    """gpe, vae, ae, vae+mds, ae+mds (and gpe's encoder loss when it is not GME), from a train_encoder section."""
    method = train_encoder.get("method", "gpe")
    if method == "gpe":
        loss = train_encoder.get("loss", "gme")
        return "gpe" if loss == "gme" else f"gpe ({loss})"
    return f"{method}+mds" if train_encoder.get("mds_weight", 0) > 0 else method
