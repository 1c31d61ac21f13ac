"""Encoding a whole dataset once, and the latent centring and scaling of SPEC 1 (eq. 27)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .data import to_model_scale
from .training import resolve_device


@torch.no_grad()
def apply_in_batches(
    model: nn.Module, inputs: Tensor, batch_size: int = 1024, device: str = "auto", prepare=to_model_scale
) -> Tensor:
    """model(prepare(rows)) for every row of inputs, in eval mode and batches without gradients.

    inputs: (N, ...). device: where the model runs ("auto": CUDA when present);
    the model is returned to its own device and mode afterwards. Returns float32 (N, ...) on the CPU.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    target = resolve_device(device)
    was_training = model.training
    original_device = next(model.parameters()).device
    model.eval().to(target)
    chunks = [model(prepare(inputs[i : i + batch_size].to(target))).float().cpu() for i in range(0, len(inputs), batch_size)]
    model.train(was_training).to(original_device)  # leave the caller's model as it was
    return torch.cat(chunks)


def encode(encoder: nn.Module, data: Tensor, batch_size: int = 1024, device: str = "auto") -> Tensor:
    """T(x) for every row of data: uint8 images or float data in model scale (N, ...) -> float32 latents (N, d) on the CPU."""
    return apply_in_batches(encoder, data, batch_size, device)


def decode(decoder: nn.Module, latents: Tensor, batch_size: int = 1024, device: str = "auto") -> Tensor:
    """S(y) for every row of latents (N, d) -> float32 data (N, ...) in [-1, 1] on the CPU."""
    return apply_in_batches(decoder, latents, batch_size, device, prepare=lambda y: y.float())


def latent_scale(latents: Tensor) -> tuple[Tensor, Tensor]:
    """Centring mean m and scale C = sqrt(d / mean |T(x) - m|^2), so C (T(x) - m) has total variance d.

    latents: (N, d). Returns m (d,) and C (a 0-dim tensor), float32.
    """
    if latents.ndim != 2 or len(latents) < 2:
        raise ValueError(f"latent_scale needs latents of shape (N >= 2, d), got {tuple(latents.shape)}")
    latents = latents.double()
    mean = latents.mean(0)
    mean_squared_norm = (latents - mean).square().sum(1).mean()
    if mean_squared_norm <= 0:
        raise ValueError("all latents are identical: the encoder collapsed, so no scale can be computed")
    scale = torch.sqrt(latents.shape[1] / mean_squared_norm)
    return mean.float(), scale.float()


def normalise_latents(latents: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    """y = C (T(x) - m): latents (N, d) -> normalised latents (N, d)."""
    return scale * (latents - mean)


def denormalise_latents(normalised: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    """T(x) = m + y / C, the inverse of normalise_latents."""
    return mean + normalised / scale
