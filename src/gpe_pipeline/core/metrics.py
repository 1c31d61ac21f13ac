"""Held-out measurements of SPEC section 2."""

from __future__ import annotations

import torch
from torch import Tensor

from .losses import log_cost, pairwise_squared_distances


@torch.no_grad()
def gme_heldout(latents: Tensor, data: Tensor, block_size: int = 1024) -> float:
    """L_GME over all N x N pairs of a held-out set, streamed in row blocks.

    latents: (N, d) = T(x); data: (N, ...). Memory is O(block_size * N), so N of
    several thousand fits. Returns a float.
    """
    if len(latents) != len(data) or len(latents) < 2:
        raise ValueError(f"gme_heldout needs N >= 2 matching rows, got {len(latents)} latents and {len(data)} points")
    total = torch.zeros((), dtype=torch.float64, device=latents.device)
    for start in range(0, len(latents), block_size):
        stop = start + block_size
        residual = log_cost(pairwise_squared_distances(latents[start:stop], latents)) - log_cost(
            pairwise_squared_distances(data[start:stop], data)
        )
        total += residual.square().sum(dtype=torch.float64)
    return float(total / len(latents) ** 2)


@torch.no_grad()
def reconstruction_mse(decoder: torch.nn.Module, latents: Tensor, data: Tensor, batch_size: int = 1024) -> float:
    """Held-out mean |x - S(y)|^2 per element, decoding cached latents in batches."""
    total = torch.zeros((), dtype=torch.float64)
    device = next(decoder.parameters()).device
    for start in range(0, len(latents), batch_size):
        reconstruction = decoder(latents[start : start + batch_size].to(device)).float()
        target = data[start : start + batch_size].to(device).float()
        total += (reconstruction - target).square().sum(dtype=torch.float64).cpu()
    return float(total / data.numel())
