"""Encoding a whole dataset once, and the latent centring and scaling of SPEC 1 (eq. 27)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .data import to_model_scale
from .training import resolve_device


@torch.no_grad()
def encode(encoder: nn.Module, data: Tensor, batch_size: int = 1024, device: str = "auto") -> Tensor:
    """T(x) for every row of data, in batches without gradients.

    data: (N, ...), uint8 images or float data in model scale. Returns float32 latents (N, d) on the CPU.
    """
    if batch_size < 1:
        raise ValueError(f"cache_latents.batch_size must be >= 1, got {batch_size}")
    target = resolve_device(device)
    was_training = encoder.training
    original_device = next(encoder.parameters()).device
    encoder.eval().to(target)
    chunks = [encoder(to_model_scale(data[i : i + batch_size].to(target))).float().cpu() for i in range(0, len(data), batch_size)]
    encoder.train(was_training).to(original_device)  # leave the caller's model as it was
    return torch.cat(chunks)


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
