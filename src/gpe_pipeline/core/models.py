"""Encoder and decoder architectures, chosen by name.

`build_model(role, architecture, **kwargs)` is the one constructor: the
architecture name and its keyword arguments are all it takes to rebuild a
model from a saved state dict, so every model keeps them in `model.build_spec`.

Names: `mlp` (vector data and 8x8 digits) and `conv32`, `conv64`, `conv256`
(the paper's image networks: strided 5x5 convolutions with batch norm and
LeakyReLU(0.2) down to 4x4, then a linear latent; the decoder mirrors it with
transposed convolutions and ends in tanh).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

ROLES = ("encoder", "decoder")
CONV_IMAGE_SIZES = {"conv32": 32, "conv64": 64, "conv256": 256}
ARCHITECTURES = ("mlp", *CONV_IMAGE_SIZES)
ACTIVATIONS = {"softplus": nn.Softplus, "leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU, "silu": nn.SiLU}
OUTPUT_ACTIVATIONS = {"tanh": nn.Tanh, "none": nn.Identity}


@dataclass(frozen=True)
class ModelSpec:
    """What rebuilds a model: its role, architecture name and keyword arguments."""

    role: str
    architecture: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "architecture": self.architecture, "kwargs": dict(self.kwargs)}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}': choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _check_latent_dim(latent_dim: int) -> None:
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise ValueError(f"latent_dim must be an integer >= 1, got {latent_dim!r}")


def _mlp(sizes: list[int], activation: str) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(_activation(activation))
    return layers


class MLPEncoder(nn.Module):
    """Fully connected encoder: (B, *data_shape) -> (B, latent_dim)."""

    def __init__(self, data_shape, latent_dim: int, hidden=(512, 512, 512), activation: str = "softplus"):
        super().__init__()
        _check_latent_dim(latent_dim)
        data_dim = math.prod(data_shape)
        self.net = nn.Sequential(nn.Flatten(), *_mlp([data_dim, *hidden, latent_dim], activation))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """Fully connected decoder: (B, latent_dim) -> (B, *data_shape)."""

    def __init__(
        self,
        data_shape,
        latent_dim: int,
        hidden=(512, 512, 512),
        activation: str = "softplus",
        output_activation: str = "tanh",
    ):
        super().__init__()
        _check_latent_dim(latent_dim)
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output_activation '{output_activation}': choose one of {sorted(OUTPUT_ACTIVATIONS)}")
        self.data_shape = tuple(data_shape)
        data_dim = math.prod(data_shape)
        self.net = nn.Sequential(*_mlp([latent_dim, *hidden, data_dim], activation), OUTPUT_ACTIVATIONS[output_activation]())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.data_shape)


def _conv_channels(image_size: int, width: int, max_channels: int) -> list[int]:
    """Channels after each stride-2 stage, halving the side from image_size down to 4."""
    stages = int(math.log2(image_size // 4))
    return [min(width * 2**i, max_channels) for i in range(stages)]


def _check_image_shape(architecture: str, data_shape) -> tuple[int, int]:
    size = CONV_IMAGE_SIZES[architecture]
    if len(data_shape) != 3 or data_shape[1] != size or data_shape[2] != size:
        raise ValueError(
            f"architecture '{architecture}' needs images of shape (C, {size}, {size}), the data has shape "
            f"{tuple(data_shape)}: set ingest.image_size to {size} or choose another architecture"
        )
    return data_shape[0], size


class ConvEncoder(nn.Module):
    """Strided 5x5 conv encoder: (B, C, S, S) -> (B, latent_dim), S in {32, 64, 256}."""

    def __init__(self, data_shape, latent_dim: int, architecture: str = "conv32", width: int = 64, max_channels: int = 512):
        super().__init__()
        _check_latent_dim(latent_dim)
        in_channels, _ = _check_image_shape(architecture, data_shape)
        channels = _conv_channels(CONV_IMAGE_SIZES[architecture], width, max_channels)
        layers: list[nn.Module] = []
        previous = in_channels
        for i, out in enumerate(channels):
            layers.append(nn.Conv2d(previous, out, 5, stride=2, padding=2, bias=i == 0))
            if i > 0:  # no batch norm on the input layer (DCGAN convention)
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2))
            previous = out
        self.features = nn.Sequential(*layers)
        self.to_latent = nn.Linear(previous * 4 * 4, latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_latent(self.features(x).flatten(1))


class ConvDecoder(nn.Module):
    """Transposed-conv decoder mirroring ConvEncoder: (B, latent_dim) -> (B, C, S, S) in [-1, 1]."""

    def __init__(self, data_shape, latent_dim: int, architecture: str = "conv32", width: int = 64, max_channels: int = 512):
        super().__init__()
        _check_latent_dim(latent_dim)
        out_channels, _ = _check_image_shape(architecture, data_shape)
        channels = _conv_channels(CONV_IMAGE_SIZES[architecture], width, max_channels)[::-1]
        self.start_channels = channels[0]
        self.from_latent = nn.Sequential(
            nn.Linear(latent_dim, channels[0] * 4 * 4, bias=False),
            nn.Unflatten(1, (channels[0], 4, 4)),
            nn.BatchNorm2d(channels[0]),
            nn.LeakyReLU(0.2),
        )
        layers: list[nn.Module] = []
        for n_in, n_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(n_in, n_out, 5, stride=2, padding=2, output_padding=1, bias=False),
                nn.BatchNorm2d(n_out),
                nn.LeakyReLU(0.2),
            ]
        layers += [nn.ConvTranspose2d(channels[-1], out_channels, 5, stride=2, padding=2, output_padding=1), nn.Tanh()]
        self.features = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.features(self.from_latent(z))


def _to_builtin(value: Any) -> Any:
    """Lists/tuples/ints from YAML (OmegaConf) into plain Python values safe for weights_only loading."""
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    return value


def build_model(role: str, architecture: str, **kwargs: Any) -> nn.Module:
    """Build an encoder or decoder by architecture name.

    kwargs: data_shape (the per-example shape, e.g. [1, 8, 8] or [500]),
    latent_dim, and the architecture's own options (hidden, activation, width ...).
    """
    if role not in ROLES:
        raise ValueError(f"unknown model role '{role}': choose one of {list(ROLES)}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture '{architecture}': choose one of {list(ARCHITECTURES)}")
    kwargs = _to_builtin(kwargs)
    if "data_shape" not in kwargs or "latent_dim" not in kwargs:
        raise ValueError("build_model needs data_shape and latent_dim")
    if architecture == "mlp":
        cls = MLPEncoder if role == "encoder" else MLPDecoder
        model = cls(**kwargs)
    else:
        cls = ConvEncoder if role == "encoder" else ConvDecoder
        model = cls(architecture=architecture, **kwargs)
    model.build_spec = ModelSpec(role, architecture, kwargs)
    return model


def model_from_spec(spec: dict[str, Any], state_dict: dict[str, Tensor] | None = None) -> nn.Module:
    """Rebuild a model from `ModelSpec.as_dict()` and optionally load its weights."""
    model = build_model(spec["role"], spec["architecture"], **spec["kwargs"])
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
