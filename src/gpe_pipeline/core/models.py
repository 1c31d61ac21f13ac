"""Encoder, decoder, velocity and classifier architectures, chosen by name.

`build_model(role, architecture, **kwargs)` is the one constructor: the
architecture name and its keyword arguments are all it takes to rebuild a
model from a saved state dict, so every model keeps them in `model.build_spec`.

Names: `mlp` (vector data and 8x8 digits); `conv32`, `conv64`, `conv256`
(light image networks: strided 5x5 convolutions with batch norm and
LeakyReLU(0.2) down to 4x4, then a linear latent; the decoder mirrors it with
transposed convolutions and ends in tanh); and `paper_mnist`, `paper_cifar10`,
`paper_celeba`, `paper_celebahq`, the networks of the paper's reference
implementation (SPEC 6), whose decoders are 2.6x to 300x heavier than their
encoders, which is what the paper's Tables 1 and 2 measure. The latent velocity
field v(y, t) and the small classifier behind the classifier-feature Frechet
distance are `mlp` only.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

ROLES = ("encoder", "gaussian_encoder", "decoder", "velocity", "classifier")
CONV_IMAGE_SIZES = {"conv32": 32, "conv64": 64, "conv256": 256}
PAPER_IMAGE_SIZES = {"paper_mnist": 32, "paper_cifar10": 32, "paper_celeba": 64, "paper_celebahq": 256}
IMAGE_SIZES = {**CONV_IMAGE_SIZES, **PAPER_IMAGE_SIZES}
ARCHITECTURES = ("mlp", *CONV_IMAGE_SIZES, *PAPER_IMAGE_SIZES)
ROLE_ARCHITECTURES = {
    "encoder": ARCHITECTURES,
    "gaussian_encoder": ARCHITECTURES,
    "decoder": ARCHITECTURES,
    "velocity": ("mlp",),
    "classifier": ("mlp",),
}
REQUIRED_KWARGS = {
    "encoder": ("data_shape", "latent_dim"),
    "gaussian_encoder": ("data_shape", "latent_dim"),
    "decoder": ("data_shape", "latent_dim"),
    "velocity": ("latent_dim",),
    "classifier": ("data_shape", "num_classes"),
}


class _SoftplusFromExpAndLog(torch.autograd.Function):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), with log1p(u) = log(w) - ((w - 1) - u) / w for w = 1 + u
    (exact to rounding: the second term restores what rounding 1 + u lost); derivative sigmoid(x)."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        u = x.abs().neg_().exp_()
        w = u + 1.0
        lost = (w - 1.0).sub_(u).div_(w)  # in place where it can: each temporary of a large batch is a fresh allocation
        return w.log_().sub_(lost).add_(x.clamp(min=0))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)

    @staticmethod
    def jvp(ctx, tangent: Tensor) -> Tensor:  # forward mode: local_distortion's Jacobian-vector products
        (x,) = ctx.saved_tensors
        return tangent * torch.sigmoid(x)


class Softplus(nn.Module):
    """log(1 + e^x) elementwise, as nn.Softplus(); on the CPU from exp and log, since ATen's log1p-based kernel is
    scalar code in AVX-512 builds (4x slower there, a quarter of a small MLP's training step). Shapes unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            return nn.functional.softplus(x)
        return _SoftplusFromExpAndLog.apply(x)


ACTIVATIONS = {"softplus": Softplus, "leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU, "silu": nn.SiLU}
OUTPUT_ACTIVATIONS = {"tanh": nn.Tanh, "none": nn.Identity}
# The values a decoder's last activation can produce (closed bounds), checked against the data's range.
OUTPUT_RANGES = {"tanh": (-1.0, 1.0), "none": (-math.inf, math.inf)}


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
    """Fully connected decoder: (B, latent_dim) -> (B, *data_shape); output_activation none for unbounded data."""

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
        self.output_range = OUTPUT_RANGES[output_activation]
        data_dim = math.prod(data_shape)
        self.net = nn.Sequential(*_mlp([latent_dim, *hidden, data_dim], activation), OUTPUT_ACTIVATIONS[output_activation]())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.data_shape)


def _conv_channels(image_size: int, width: int, max_channels: int) -> list[int]:
    """Channels after each stride-2 stage, halving the side from image_size down to 4."""
    stages = int(math.log2(image_size // 4))
    return [min(width * 2**i, max_channels) for i in range(stages)]


def _check_image_shape(architecture: str, data_shape) -> tuple[int, int]:
    size = IMAGE_SIZES[architecture]
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

    output_range = OUTPUT_RANGES["tanh"]

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


# --- the paper's networks (SPEC 6) ----------------------------------------------------------------------

# Encoder blocks: Conv 5x5 stride 2 -> LeakyReLU(0.2) -> BatchNorm, the second block without batch norm. Then MNIST
# flattens its 4x4 features into a linear latent; the others end at 2x2 and map it to the latent with a 2x2 convolution.
PAPER_ENCODER_CHANNELS = {
    "paper_mnist": (32, 64, 128),
    "paper_cifar10": (64, 128, 256, 512),
    "paper_celeba": (32, 64, 128, 256, 512),
    "paper_celebahq": (32, 64, 128, 256, 512, 1024, 2048),
}


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _batch_norm(channels: int) -> nn.Module:
    # The reference passes 0.8 as BatchNorm's second positional argument, which is eps; it was almost certainly meant
    # as a momentum. PyTorch's defaults (eps 1e-5, momentum 0.1) are used instead.
    return nn.BatchNorm2d(channels)


def _upsample(n_in: int, n_out: int) -> nn.Module:
    """A 4x4 stride-2 transposed convolution: doubles the side."""
    return nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1)


def _conv(n_in: int, n_out: int, kernel: int) -> nn.Module:
    """A stride-1 convolution that keeps the side (odd kernel, 'same' padding)."""
    return nn.Conv2d(n_in, n_out, kernel, padding=kernel // 2)


class PaperEncoder(nn.Module):
    """The reference implementation's encoder: (B, C, S, S) -> (B, latent_dim); S 32 (mnist, cifar10), 64, 256."""

    def __init__(self, data_shape, latent_dim: int, architecture: str = "paper_mnist"):
        super().__init__()
        _check_latent_dim(latent_dim)
        in_channels, size = _check_image_shape(architecture, data_shape)
        channels = PAPER_ENCODER_CHANNELS[architecture]
        layers: list[nn.Module] = []
        for index, (n_in, n_out) in enumerate(zip((in_channels, *channels[:-1]), channels, strict=True)):
            layers += [nn.Conv2d(n_in, n_out, 5, stride=2, padding=2), _leaky()]
            if index != 1:
                layers.append(_batch_norm(n_out))
        self.features = nn.Sequential(*layers)
        side = size >> len(channels)
        if architecture == "paper_mnist":
            self.to_latent = nn.Sequential(nn.Flatten(), nn.Linear(channels[-1] * side * side, latent_dim))
        else:
            self.to_latent = nn.Sequential(nn.Conv2d(channels[-1], latent_dim, side), nn.Flatten())

    def forward(self, x: Tensor) -> Tensor:
        return self.to_latent(self.features(x))


def _paper_mnist_decoder(latent_dim: int, out_channels: int) -> list[nn.Module]:
    """d -> 4x4x128 -> 8x8x64 -> 16x16x32 -> 32x32: transposed convolutions, each refined by a 5x5 convolution."""
    layers: list[nn.Module] = [nn.Unflatten(1, (latent_dim, 1, 1)), nn.ConvTranspose2d(latent_dim, 128, 4), _leaky()]
    layers += [_conv(128, 128, 5), _batch_norm(128), _leaky()]
    for n_in, n_out in ((128, 64), (64, 32)):
        layers += [_upsample(n_in, n_out), _leaky(), _conv(n_out, n_out, 5), _batch_norm(n_out), _leaky()]
    return [*layers, _upsample(32, 128), _leaky(), _conv(128, out_channels, 5)]


def _fully_connected_start(latent_dim: int, hidden: list[int], channels: int, side: int) -> list[nn.Module]:
    """An MLP d -> hidden -> channels * side^2 (LeakyReLU after every layer), reshaped to (channels, side, side)."""
    return [*_mlp([latent_dim, *hidden, channels * side * side], "leaky_relu"), _leaky(), nn.Unflatten(1, (channels, side, side))]


def _paper_cifar10_decoder(latent_dim: int, out_channels: int) -> list[nn.Module]:
    """MLP to 8x8x512 -> 16x16x256 -> 32x32x256 -> an 11x11 convolution (most of the step's 5 TFLOP) -> 5x5 out."""
    layers = _fully_connected_start(latent_dim, [1024, 1024], 512, 8)
    layers += [_upsample(512, 256), _batch_norm(256), _leaky(), _upsample(256, 256), _leaky()]
    return [*layers, _conv(256, 256, 11), _leaky(), _conv(256, out_channels, 5)]


def _paper_celeba_decoder(latent_dim: int, out_channels: int) -> list[nn.Module]:
    """MLP to 16x16x256 (134 M of the 145 M weights) -> 32x32x128 -> 64x64x64 -> two 11x11 convolutions."""
    layers = _fully_connected_start(latent_dim, [2048, 2048, 2048], 256, 16)
    layers += [_upsample(256, 128), _leaky(), _conv(128, 128, 5), _leaky(), _conv(128, 128, 5), _batch_norm(128), _leaky()]
    return [*layers, _upsample(128, 64), _leaky(), _conv(64, 64, 11), _leaky(), _conv(64, out_channels, 11)]


def _paper_celebahq_decoder(latent_dim: int, out_channels: int) -> list[nn.Module]:
    """MLP to 16x16x256 -> four stages [upsample, two 3x3 convolutions] at 512, 256, 128, 64 channels -> 256x256."""
    layers = _fully_connected_start(latent_dim, [2048, 2048, 2048], 256, 16)
    for n_in, n_out in ((256, 512), (512, 256), (256, 128), (128, 64)):
        layers += [_upsample(n_in, n_out), _leaky(), _conv(n_out, n_out, 3), _leaky(), _conv(n_out, n_out, 3)]
        layers += [_batch_norm(n_out), _leaky()]
    return [*layers, _conv(64, out_channels, 3)]


PAPER_DECODERS = {
    "paper_mnist": _paper_mnist_decoder,
    "paper_cifar10": _paper_cifar10_decoder,
    "paper_celeba": _paper_celeba_decoder,
    "paper_celebahq": _paper_celebahq_decoder,
}


class PaperDecoder(nn.Module):
    """The reference implementation's decoder: (B, latent_dim) -> (B, C, S, S) in [-1, 1] (tanh)."""

    output_range = OUTPUT_RANGES["tanh"]

    def __init__(self, data_shape, latent_dim: int, architecture: str = "paper_mnist"):
        super().__init__()
        _check_latent_dim(latent_dim)
        out_channels, _ = _check_image_shape(architecture, data_shape)
        self.net = nn.Sequential(*PAPER_DECODERS[architecture](latent_dim, out_channels), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class NoModel(nn.Module):
    """Stands where a stage has no model to hand on: GPE's joint decoder (its decoder trains later), the feature
    classifier of unlabelled data. Kedro refuses to save None, so catalog entries hold this marker instead."""


# --- the VAE family (SPEC 1 baselines) -----------------------------------------------------------------


class GaussianEncoder(nn.Module):
    """The baselines' encoder: an encoder body to a hidden vector of size hidden_factor * d, then linear heads.

    forward(x) is the mean mu(x) (B, d), the deterministic encoder that cache_latents
    uses like GPE's. distribution(x) gives (mu, logvar), each (B, d); logvar is None
    for the AE family (stochastic=False: z = mu, no log-variance head at all).
    body_options: the body architecture's own options (as for an encoder of that name).
    """

    def __init__(
        self,
        data_shape,
        latent_dim: int,
        architecture: str = "mlp",
        stochastic: bool = True,
        hidden_factor: int = 10,
        body_options: dict[str, Any] | None = None,
    ):
        super().__init__()
        _check_latent_dim(latent_dim)
        hidden = hidden_factor * latent_dim
        self.body = build_model("encoder", architecture, data_shape=data_shape, latent_dim=hidden, **(body_options or {}))
        # A nonlinearity between the body's hidden vector and the heads, so the heads are not one factored linear map.
        self.activation = nn.LeakyReLU(0.2)
        self.mean = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim) if stochastic else None

    def distribution(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        hidden = self.activation(self.body(x))
        return self.mean(hidden), None if self.logvar is None else self.logvar(hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.mean(self.activation(self.body(x)))


class JointAutoencoder(nn.Module):
    """A Gaussian encoder and a decoder trained together: x (B, ...) -> (S(z), mu, logvar).

    z = mu + exp(logvar / 2) * eps with eps ~ N(0, I) for the VAE family, z = mu
    for the AE family (logvar None). A training wrapper only: the encoder and the
    decoder are saved, and used afterwards, on their own.
    """

    def __init__(self, encoder: GaussianEncoder, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        mean, logvar = self.encoder.distribution(x)
        latents = mean if logvar is None else mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.decoder(latents), mean, logvar


class SinusoidalTimeEmbedding(nn.Module):
    """Fixed sin/cos features of t at geometric frequencies 1 .. max_frequency: (B,) -> (B, dim)."""

    def __init__(self, dim: int, max_frequency: float = 1000.0):
        super().__init__()
        if not isinstance(dim, int) or dim < 2 or dim % 2:
            raise ValueError(f"time_embedding_dim must be an even integer >= 2, got {dim!r}")
        # Not learned and not saved: rebuilt from dim, so state dicts hold only trained weights.
        frequencies = torch.exp(torch.linspace(0.0, math.log(max_frequency), dim // 2))
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        angles = t.float()[:, None] * self.frequencies[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)


class VelocityMLP(nn.Module):
    """Latent velocity field v(y, t): y (B, latent_dim), t (B,) in [0, 1] -> (B, latent_dim).

    t enters every hidden layer: its sinusoidal features go through a learned
    projection, and each hidden layer adds its own linear map of that embedding
    to its pre-activation, so the output depends on t at every depth.
    """

    def __init__(self, latent_dim: int, hidden=(256, 256, 256), time_embedding_dim: int = 64, activation: str = "silu"):
        super().__init__()
        _check_latent_dim(latent_dim)
        hidden = list(hidden)
        if not hidden:
            raise ValueError("a velocity mlp needs at least one hidden layer: set hidden to e.g. [256, 256, 256]")
        self.time_features = SinusoidalTimeEmbedding(time_embedding_dim)
        self.time_projection = nn.Sequential(nn.Linear(time_embedding_dim, time_embedding_dim), _activation(activation))
        sizes = [latent_dim, *hidden]
        self.hidden_layers = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))
        self.time_to_hidden = nn.ModuleList(nn.Linear(time_embedding_dim, n_out) for n_out in hidden)
        self.activation = _activation(activation)
        self.output = nn.Linear(hidden[-1], latent_dim)

    def forward(self, y: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, device=y.device).reshape(-1).expand(y.shape[0])  # a scalar t means the same time for every row
        time_embedding = self.time_projection(self.time_features(t))
        h = y
        for layer, time_layer in zip(self.hidden_layers, self.time_to_hidden, strict=True):
            h = self.activation(layer(h) + time_layer(time_embedding))
        return self.output(h)


class FeatureClassifier(nn.Module):
    """Small MLP classifier on flattened inputs: (B, *data_shape) -> logits (B, num_classes).

    features(x) returns the last hidden activations (B, hidden[-1]): the
    features of the classifier-feature Frechet distance.
    """

    def __init__(self, data_shape, num_classes: int, hidden=(256, 128), activation: str = "relu"):
        super().__init__()
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        hidden = list(hidden)
        if not hidden:
            raise ValueError("a classifier needs at least one hidden layer (its features): set hidden to e.g. [256, 128]")
        data_dim = math.prod(data_shape)
        self.body = nn.Sequential(nn.Flatten(), *_mlp([data_dim, *hidden], activation), _activation(activation))
        self.head = nn.Linear(hidden[-1], num_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _to_builtin(value: Any) -> Any:
    """Lists/tuples/ints from YAML (OmegaConf) into plain Python values safe for weights_only loading."""
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    return value


def model_class(role: str, architecture: str) -> type[nn.Module]:
    """The class build_model uses for a role and architecture name (its signature lists the options)."""
    if role not in ROLES:
        raise ValueError(f"unknown model role '{role}': choose one of {list(ROLES)}")
    if architecture not in ROLE_ARCHITECTURES[role]:
        for_role = "" if role in ("encoder", "decoder") else f" for role '{role}'"
        raise ValueError(f"unknown architecture '{architecture}'{for_role}: choose one of {list(ROLE_ARCHITECTURES[role])}")
    if role == "velocity":
        return VelocityMLP
    if role == "classifier":
        return FeatureClassifier
    if role == "gaussian_encoder":
        return GaussianEncoder
    if architecture == "mlp":
        return MLPEncoder if role == "encoder" else MLPDecoder
    if architecture in PAPER_IMAGE_SIZES:
        return PaperEncoder if role == "encoder" else PaperDecoder
    return ConvEncoder if role == "encoder" else ConvDecoder


def build_model(role: str, architecture: str, **kwargs: Any) -> nn.Module:
    """Build a model by role and architecture name.

    kwargs: encoder/decoder: data_shape (the per-example shape, e.g. [1, 8, 8]
    or [500]) and latent_dim; velocity: latent_dim; classifier: data_shape and
    num_classes; plus the architecture's own options (hidden, activation, width ...).
    """
    cls = model_class(role, architecture)
    kwargs = _to_builtin(kwargs)
    required = REQUIRED_KWARGS[role]
    if any(key not in kwargs for key in required):
        raise ValueError(f"build_model needs {' and '.join(required)} for role '{role}'")
    # The image networks serve several sizes and a Gaussian encoder several bodies; the name says which.
    takes_architecture = "architecture" in inspect.signature(cls).parameters
    model = cls(architecture=architecture, **kwargs) if takes_architecture else cls(**kwargs)
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
