"""The loss functions of SPEC section 1, one function per formula.

Every function takes a batch with the batch dimension first; images are
flattened, so `x` may have any trailing shape. Pairwise distances are always
computed in full float32 (autocast and TF32 off for that product, the batch
centred first): under mixed precision `|a|^2 + |b|^2 - 2ab` cancels badly, and
an exact isometry of CIFAR-sized images would score a GME of about 1e-3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _flat32(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).float()


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Autocast off and IEEE float32 matmuls (no TF32, no implicit bf16) inside; the settings are restored after.

    Uses the fp32_precision switches only: torch refuses to read the legacy
    allow_tf32 flags once the new ones were set, so the project never mixes them.
    """
    backends = (torch.backends.cuda.matmul, torch.backends.mkldnn.matmul)
    previous = [backend.fp32_precision for backend in backends]
    try:
        for backend in backends:
            backend.fp32_precision = "ieee"
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            yield
    finally:
        for backend, precision in zip(backends, previous, strict=True):
            backend.fp32_precision = precision


def pairwise_squared_distances(a: Tensor, b: Tensor | None = None) -> Tensor:
    """Squared Euclidean distances |a_i - b_j|^2 in full float32, whatever autocast or TF32 say.

    a: (N, ...), b: (M, ...) or None for b = a. Returns (N, M) float32, clamped at 0.
    Both sets are shifted by the mean of b first: distances do not change, and the
    Gram form's cancellation error scales with the squared norms, which centring shrinks.
    """
    with full_float32():
        a = _flat32(a)
        if b is None:
            a = b = a - a.mean(0, keepdim=True)
        else:
            b = _flat32(b)
            centre = b.mean(0, keepdim=True)
            a, b = a - centre, b - centre
        sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1).unsqueeze(0) - 2.0 * (a @ b.T)
    return sq.clamp_min(0.0)


def log_cost(squared_distance: Tensor) -> Tensor:
    """The GME cost c(a, b) = log(1 + |a - b|^2), given |a - b|^2."""
    return torch.log1p(squared_distance)


def safe_sqrt(squared_distance: Tensor) -> Tensor:
    """|a - b| from |a - b|^2, with gradient 0 (not inf * 0 = nan) at coincident points such as the diagonal."""
    positive = squared_distance > 0
    return torch.where(positive, squared_distance.clamp_min(1e-30).sqrt(), torch.zeros_like(squared_distance))


# Each pairwise loss is the mean over all B x B pairs of a residual squared. A residual takes the squared distances
# of latent pairs and of data pairs, and the latent and data dimensions d and D.


def gme_residual(latent_sq: Tensor, data_sq: Tensor, latent_dim: int, data_dim: int) -> Tensor:
    """c(T x_i, T x_j) - c(x_i, x_j) with c = log(1 + |.|^2) (SPEC 1, eq. 4/5)."""
    return log_cost(latent_sq) - log_cost(data_sq)


def mds1_residual(latent_sq: Tensor, data_sq: Tensor, latent_dim: int, data_dim: int) -> Tensor:
    """|T x_i - T x_j|^2 - |x_i - x_j|^2 (vanilla MDS stress)."""
    return latent_sq - data_sq


def mds2_residual(latent_sq: Tensor, data_sq: Tensor, latent_dim: int, data_dim: int) -> Tensor:
    """|T x_i - T x_j|^2 / d - |x_i - x_j|^2 / D (dimension-scaled MDS)."""
    return latent_sq / latent_dim - data_sq / data_dim


def mds_regulariser_residual(latent_sq: Tensor, data_sq: Tensor, latent_dim: int, data_dim: int) -> Tensor:
    """|mu_i - mu_j| / sqrt(d) - |x_i - x_j| / sqrt(D) (R_MDS, the VAE+MDS / AE+MDS regulariser)."""
    return safe_sqrt(latent_sq) / latent_dim**0.5 - safe_sqrt(data_sq) / data_dim**0.5


def pairwise_rows_loss(residual, latent_rows: Tensor, data_rows: Tensor, latents: Tensor, data: Tensor) -> Tensor:
    """Sum of the squared residuals of some rows against a whole batch.

    The building block of every pairwise loss and of its distributed form: rank r
    sums its own rows against the gathered global batch; the global mean is the
    sum over ranks divided by B^2. latent_rows: (b, d), data_rows: (b, ...),
    latents: (B, d), data: (B, ...). Returns a float32 scalar (not divided by anything).
    """
    latent_sq = pairwise_squared_distances(latent_rows, latents)
    data_sq = pairwise_squared_distances(data_rows, data)
    return residual(latent_sq, data_sq, latents[0].numel(), data[0].numel()).square().sum()


def _pairwise_mean(residual, latents: Tensor, data: Tensor) -> Tensor:
    _check_pairs(latents, data)
    return pairwise_rows_loss(residual, latents, data, latents, data) / latents.shape[0] ** 2


def _check_pairs(latents: Tensor, data: Tensor) -> None:
    if latents.shape[0] != data.shape[0]:
        raise ValueError(f"latents and data must have the same batch size, got {latents.shape[0]} and {data.shape[0]}")
    if latents.shape[0] < 2:
        raise ValueError("a pairwise loss needs a batch of at least 2 points (batch_size >= 2)")


def gme_loss(latents: Tensor, data: Tensor) -> Tensor:
    """Gromov-Monge embedding loss, mean over all B x B pairs (SPEC 1, eq. 4/5).

    latents: (B, d) = T(x); data: (B, ...) = x. Returns a float32 scalar.
    """
    return _pairwise_mean(gme_residual, latents, data)


def mds1_loss(latents: Tensor, data: Tensor) -> Tensor:
    """Vanilla MDS stress: mean over pairs of (|Tx_i - Tx_j|^2 - |x_i - x_j|^2)^2."""
    return _pairwise_mean(mds1_residual, latents, data)


def mds2_loss(latents: Tensor, data: Tensor) -> Tensor:
    """Dimension-scaled MDS: mean over pairs of (|Tx_i - Tx_j|^2 / d - |x_i - x_j|^2 / D)^2."""
    return _pairwise_mean(mds2_residual, latents, data)


def mds_regulariser(means: Tensor, data: Tensor) -> Tensor:
    """R_MDS = mean over pairs of (|mu_i - mu_j| / sqrt(d) - |x_i - x_j| / sqrt(D))^2 (SPEC 1, VAE+MDS and AE+MDS).

    means: (B, d), the encoder's means; data: (B, ...). Returns a float32 scalar.
    """
    return _pairwise_mean(mds_regulariser_residual, means, data)


ENCODER_LOSSES = {"gme": gme_loss, "mds1": mds1_loss, "mds2": mds2_loss}
PAIRWISE_RESIDUALS = {
    "gme": gme_residual,
    "mds1": mds1_residual,
    "mds2": mds2_residual,
    "r_mds": mds_regulariser_residual,
}


def kl_divergence(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) of each example: -1/2 sum_k (1 + logvar_k - mu_k^2 - exp(logvar_k)).

    mean, logvar: (B, d). Returns (B,) in float32.
    """
    mean, logvar = mean.float(), logvar.float()
    return -0.5 * (1.0 + logvar - mean.square() - logvar.exp()).sum(1)


def vae_family_loss(
    reconstruction: Tensor,
    data: Tensor,
    mean: Tensor,
    logvar: Tensor | None,
    beta: float,
    mds_weight: float,
    mds_term: Tensor | None = None,
) -> dict[str, Tensor]:
    """The jointly trained baselines' loss with SPEC 1's scaling (the reference implementation's loss / (B * D)).

    L = mean |x - S(z)|^2 + beta * mean_b KL_b / d + lambda_MDS * R_MDS. logvar None: the AE family (no KL term).
    mds_term: R_MDS when the caller computed it (under DDP, over the gathered batch); else computed here.
    Returns {"loss", "reconstruction", "kl", "mds"}, float32 scalars.
    """
    terms = {"reconstruction": reconstruction_loss(reconstruction, data)}
    zero = torch.zeros((), device=terms["reconstruction"].device)
    terms["kl"] = kl_divergence(mean, logvar).mean() / mean.shape[1] if logvar is not None else zero
    if mds_term is None:
        mds_term = mds_regulariser(mean, data) if mds_weight > 0 else zero
    terms["mds"] = mds_term
    terms["loss"] = terms["reconstruction"] + beta * terms["kl"] + mds_weight * terms["mds"]
    return terms


def reconstruction_loss(reconstruction: Tensor, target: Tensor) -> Tensor:
    """Per-element mean squared error mean |x - S(T x)|^2, in float32."""
    if reconstruction.shape != target.shape:
        raise ValueError(f"reconstruction shape {tuple(reconstruction.shape)} != target shape {tuple(target.shape)}")
    return (reconstruction.float() - target.float()).square().mean()


def flow_interpolation(noise: Tensor, target: Tensor, t: Tensor) -> Tensor:
    """Straight conditional path y_t = (1 - t) z + t y (SPEC 1, latent flow).

    noise z: (B, d), target y: (B, d), t: (B,) in [0, 1]. Returns (B, d) in float32.
    """
    t = t.float().reshape(-1, *([1] * (target.ndim - 1)))  # (B,) -> (B, 1, ...) so t scales each row
    return (1.0 - t) * noise.float() + t * target.float()


def flow_target_velocity(noise: Tensor, target: Tensor) -> Tensor:
    """Target velocity u = y - z of the straight path (constant along it). (B, d) -> (B, d), float32."""
    return target.float() - noise.float()


def cfm_loss(velocity_model: nn.Module, target: Tensor, noise: Tensor | None = None, t: Tensor | None = None) -> Tensor:
    """Conditional flow matching loss, per-element mean |v(y_t, t) - (y - z)|^2 (straight path, sigma = 0).

    velocity_model: v(y, t) with y (B, d), t (B,) -> (B, d). target y: (B, d)
    normalised latents. noise z ~ N(0, I) and t ~ U[0, 1] are drawn when not
    given. Returns a float32 scalar.
    """
    target = target.float()
    if noise is None:
        noise = torch.randn_like(target)
    if t is None:
        t = torch.rand(target.shape[0], device=target.device)
    if noise.shape != target.shape or t.shape != (target.shape[0],):
        raise ValueError(
            f"cfm_loss needs noise of the target's shape {tuple(target.shape)} and t of shape ({target.shape[0]},), "
            f"got {tuple(noise.shape)} and {tuple(t.shape)}"
        )
    velocity = velocity_model(flow_interpolation(noise, target, t), t.float())
    return (velocity.float() - flow_target_velocity(noise, target)).square().mean()


def classifier_loss(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of a classifier's logits (the classifier-feature Frechet distance's network).

    images: (B, ...), labels: (B,) integer classes. Returns a float32 scalar.
    """
    return F.cross_entropy(model(images).float(), labels.long())
